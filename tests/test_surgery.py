"""Surgery: pruned model == original model with removed inputs zeroed and kept inputs scaled."""
from __future__ import annotations

import copy

import pytest
import timm
import torch
import torchvision
from torch import nn
from torchvision.models.vgg import VGG, cfgs as VGG_CFGS, make_layers

from thinet.strategies import find_prunable_pairs
from thinet.surgery import build_graph, check_pair, prune_pair
from thinet.types import LayerPair, PruningError, Selection


def random_selection(channels: int, keep: int, seed: int) -> Selection:
    gen = torch.Generator().manual_seed(seed)
    kept = torch.randperm(channels, generator=gen)[:keep]
    scale = 0.5 + torch.rand(keep, generator=gen) * 1.5
    return Selection.from_keep(kept, channels, scale=scale)


def reference_output(model: nn.Module, x: torch.Tensor, cuts: list[tuple[str, Selection]]) -> torch.Tensor:
    """Original model with a pre-hook on each consumer: input channel c times scale[c], removed ones times 0."""
    modules = dict(model.named_modules())
    hooks = []
    for consumer, sel in cuts:
        factor = torch.zeros(sel.num_channels, dtype=x.dtype)
        factor[sel.keep] = sel.scale.to(x.dtype)

        def pre_hook(_module, inputs, factor=factor):
            (inp,) = inputs
            if inp.dim() == 2:  # a Linear after flatten: each channel owns S contiguous columns
                return (inp * factor.repeat_interleave(inp.shape[1] // factor.numel()),)
            return (inp * factor.view(1, -1, *([1] * (inp.dim() - 2))),)

        hooks.append(modules[consumer].register_forward_pre_hook(pre_hook))
    try:
        with torch.no_grad():
            return model(x)
    finally:
        for hook in hooks:
            hook.remove()


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor) -> None:
    tolerance = 1e-9 * float(expected.abs().max()) + 1e-12
    err = float((actual - expected).abs().max())
    assert err <= tolerance, f"max abs error {err:.3g} > {tolerance:.3g}"


def randomize_batchnorm(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(torch.randn(m.num_features, generator=gen))
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))


def prune_and_compare(model: nn.Module, x: torch.Tensor, pairs: list[LayerPair], keep_fraction: float = 0.5) -> nn.Module:
    model = model.double().eval()
    x = x.double()
    original = copy.deepcopy(model)
    modules = dict(model.named_modules())
    cuts = []
    graph = build_graph(model, x)
    for seed, pair in enumerate(pairs):
        producer = modules[pair.producer]
        channels = producer.out_channels if isinstance(producer, nn.Conv2d) else producer.out_features
        sel = random_selection(channels, max(1, int(channels * keep_fraction)), seed)
        prune_pair(model, pair, sel, example_inputs=x, graph=graph)
        cuts.append((pair.consumer, sel))
        kept = sel.keep.numel()
        assert (producer.out_channels if isinstance(producer, nn.Conv2d) else producer.out_features) == kept
        assert producer.weight.shape[0] == kept
    with torch.no_grad():
        actual = model(x)
    assert_close_to_scale(actual, reference_output(original, x, cuts))
    return model


class SmallHeadVGG(VGG):
    """torchvision's VGG (same forward and module names) with 64-wide FC layers, so float64 copies stay small."""

    def __init__(self, batch_norm: bool) -> None:
        nn.Module.__init__(self)
        self.features = make_layers(VGG_CFGS["A"], batch_norm=batch_norm)  # VGG-11's convs
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(nn.Linear(512 * 49, 64), nn.ReLU(), nn.Dropout(), nn.Linear(64, 64),
                                        nn.ReLU(), nn.Dropout(), nn.Linear(64, 10))


def test_vgg_without_bn_conv_to_conv_and_flattened_fc6():
    torch.manual_seed(0)
    model = SmallHeadVGG(batch_norm=False)
    pairs = [LayerPair("features.0", "features.3"), LayerPair("features.16", "features.18"),
             LayerPair("features.18", "classifier.0"), LayerPair("classifier.0", "classifier.3")]
    pruned = prune_and_compare(model, torch.randn(2, 3, 32, 32), pairs)
    assert pruned.classifier[0].in_features == 256 * 49
    assert pruned.features[3].in_channels == 32


def test_vgg_with_batchnorm():
    torch.manual_seed(1)
    model = SmallHeadVGG(batch_norm=True)
    randomize_batchnorm(model, 1)
    pruned = prune_and_compare(model, torch.randn(2, 3, 32, 32),
                               [LayerPair("features.0", "features.4"), LayerPair("features.4", "features.8")], 0.3)
    bn = pruned.features[1]
    assert bn.num_features == bn.weight.numel() == bn.running_mean.numel() == bn.running_var.numel() == 19


def test_resnet_bottleneck_first_two_convs():
    torch.manual_seed(2)
    model = torchvision.models.resnet50(weights=None)
    randomize_batchnorm(model, 2)
    pairs = [LayerPair("layer1.0.conv1", "layer1.0.conv2"), LayerPair("layer1.0.conv2", "layer1.0.conv3"),
             LayerPair("layer2.1.conv1", "layer2.1.conv2")]
    pruned = prune_and_compare(model, torch.randn(1, 3, 32, 32), pairs, 0.7)
    assert pruned.layer1[0].conv3.out_channels == 256  # block output untouched


def test_timm_cnn_via_auto_pairs():
    torch.manual_seed(3)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    randomize_batchnorm(model, 3)
    x = torch.randn(1, 3, 32, 32)
    pairs = find_prunable_pairs(model, x)
    names = [(p.producer, p.consumer) for p in pairs]
    assert ("conv1.0", "conv1.3") in names and ("layer1.0.conv1", "layer1.0.conv2") in names
    assert all(not p.producer.endswith("conv2") for p in pairs if p.producer.startswith("layer"))
    prune_and_compare(model, x, pairs, 0.5)


def test_zeroing_filters_before_batchnorm_is_not_removal():
    torch.manual_seed(4)
    model = SmallHeadVGG(batch_norm=True).double().eval()
    randomize_batchnorm(model, 4)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    sel = random_selection(64, 32, seed=4)
    consumer = LayerPair("features.0", "features.4").consumer
    expected = reference_output(model, x, [(consumer, sel)])
    expected_features = reference_output(model.features[:5], x, [("4", sel)])  # up to the consumer
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        zeroed.features[0].weight[sel.removed] = 0
        zeroed.features[0].bias[sel.removed] = 0
        zeroed.features[4].weight[:, sel.keep] *= sel.scale.double().view(1, -1, 1, 1)
        zeroed_out, zeroed_features = zeroed(x), zeroed.features[:5](x)
    # BatchNorm's shift keeps the zeroed channels alive: far above float64 noise (1e-9 relative).
    assert float((zeroed_features - expected_features).abs().max()) > 1e-2 * float(expected_features.abs().max())
    assert float((zeroed_out - expected).abs().max()) > 1e-5 * float(expected.abs().max())
    prune_pair(model, LayerPair("features.0", consumer), sel, example_inputs=x)
    with torch.no_grad():
        assert_close_to_scale(model(x), expected)


def test_pruned_model_is_plain_and_survives_save_load(tmp_path):
    torch.manual_seed(5)
    model = SmallHeadVGG(batch_norm=True).eval()
    x = torch.randn(1, 3, 32, 32)
    prune_pair(model, LayerPair("features.0", "features.4"), random_selection(64, 16, 5), example_inputs=x)
    for module in model.modules():
        assert not module._forward_pre_hooks and not module._forward_hooks
    assert all(not name.endswith("_mask") and not name.endswith("_orig") for name, _ in model.named_parameters())
    assert model.features[0].weight.abs().flatten(1).sum(1).min() > 0  # no zeroed filters left behind
    path = tmp_path / "pruned.pt"
    torch.save(model, path)
    loaded = torch.load(path, weights_only=False)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def test_onnx_export_matches_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(6)
    model = TinyNet().eval()
    x = torch.randn(1, 3, 8, 8)
    graph = build_graph(model, x)
    prune_pair(model, LayerPair("conv1", "conv2"), random_selection(8, 3, 6), example_inputs=x, graph=graph)
    prune_pair(model, LayerPair("conv2", "fc"), random_selection(6, 2, 7), example_inputs=x, graph=graph)
    assert model.fc.in_features == 2 * 16
    path = tmp_path / "pruned.onnx"
    try:
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=True)
    except Exception:  # the dynamo exporter needs onnxscript; the TorchScript one does not
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert float((torch.from_numpy(onnx_out) - model(x)).abs().max()) < 1e-4


class Coupled(nn.Module):
    """conv_a feeds a concat, conv_b two consumers, conv_g a depthwise conv, conv_e a residual add; conv_c is clean."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a, self.conv_b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
        self.conv_c, self.conv_d = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 4, 1)
        self.conv_g, self.dw, self.conv_h = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Conv2d(4, 4, 1)
        self.conv_e, self.conv_f = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        a, b = self.conv_a(x), self.conv_b(x)
        c = self.conv_c(torch.cat([a, b], 1))
        d = self.conv_d(b)
        g = self.conv_h(self.dw(self.conv_g(x)))
        e = self.conv_e(torch.relu(c))
        return self.conv_f(e) + e + d + g


@pytest.mark.parametrize("pair, culprit", [
    (LayerPair("conv_a", "conv_c"), "(?i)concat"),
    (LayerPair("conv_b", "conv_d"), "conv_c"),
    (LayerPair("conv_g", "conv_h"), "dw"),
    (LayerPair("conv_e", "conv_f"), "Add"),
    (LayerPair("conv_c", "dw"), "groups=4"),
    (LayerPair("conv_x", "conv_f"), "does not exist.*conv_"),
    (LayerPair("conv_a", "conv_f"), "does not consume"),
])
def test_check_pair_names_the_coupling(pair, culprit):
    model = Coupled()
    x = torch.randn(1, 3, 5, 5)
    check_pair(model, LayerPair("conv_c", "conv_e"), x)  # the one clean pair passes
    with pytest.raises(PruningError, match=culprit) as info:
        check_pair(model, pair, x)
    assert pair.producer in str(info.value) or pair.consumer in str(info.value)


@pytest.mark.parametrize("selection, message", [
    (Selection(torch.tensor([0, 9]), torch.arange(1, 8), torch.ones(2)), "out of range"),
    (Selection(torch.tensor([3, 0]), torch.tensor([1, 2, 4, 5, 6, 7]), torch.ones(2)), "sorted"),
    (Selection(torch.tensor([], dtype=torch.long), torch.arange(8), torch.ones(0)), "keeps no channel"),
    (Selection(torch.tensor([0, 1]), torch.arange(2, 8), torch.ones(3)), "scale has shape"),
    (Selection(torch.tensor([0, 1]), torch.arange(2, 8), torch.tensor([1.0, float("nan")])), "non-finite"),
    (Selection(torch.tensor([0, 1]), torch.arange(1, 8), torch.ones(2)), "disjoint"),
])
def test_bad_selection_leaves_model_untouched(selection, message):
    model = TinyNet().eval()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(PruningError, match=message) as info:
        prune_pair(model, LayerPair("conv1", "conv2"), selection, example_inputs=torch.randn(1, 3, 8, 8))
    assert "conv1" in str(info.value)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and before.keys() == after.keys()


def test_coupled_pair_leaves_model_untouched():
    model = torchvision.models.resnet18(weights=None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PruningError, match="layer1.0.conv2"):
        prune_pair(model, LayerPair("layer1.0.conv2", "layer1.1.conv1"), random_selection(64, 32, 0),
                   example_inputs=torch.randn(1, 3, 32, 32))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training  # tracing must not leave the model in eval mode


def test_frozen_model_can_be_traced_and_stays_frozen():
    model = torchvision.models.resnet18(weights=None).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    prune_pair(model, LayerPair("layer1.0.conv1", "layer1.0.conv2"), random_selection(64, 10, 8),
               example_inputs=torch.randn(1, 3, 32, 32))
    assert model.layer1[0].conv1.out_channels == 10
    assert not any(p.requires_grad for p in model.parameters())
