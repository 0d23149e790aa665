"""ThiNet inside Torch-Pruning: `thinet.interop.ThiNetImportance` and the snippets of docs/torch-pruning.md."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch_pruning as tp
import torchvision
from torch import nn

from thinet.criteria import CriterionContext, run_criterion
from thinet.interop import ThiNetImportance
from thinet.models import out_channels_of
from thinet.surgery import build_graph, pruning_group
from thinet.surgery import out_pruning_fn
from thinet.types import LayerPair, PruningError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DOC = Path(__file__).resolve().parents[1] / "docs" / "torch-pruning.md"


def vgg_like() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
        nn.Conv2d(12, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(24, 5),
    ).eval()


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(2)
    return [(torch.randn(3, 3, 8, 8, generator=gen), torch.randint(0, 5, (3,), generator=gen)) for _ in range(2)]


def tp_group(model: nn.Module, layer: str):
    """Torch-Pruning's own group of all the layer's output channels."""
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(2, 3, 8, 8))
    module = model.get_submodule(layer)
    return graph.get_pruning_group(module, out_pruning_fn(module), list(range(out_channels_of(module))))


@pytest.mark.parametrize("pair", [LayerPair("4", "7"), LayerPair("7", "11")], ids=["conv", "linear"])
def test_top_scores_are_thinets_channels_at_every_keep_ratio(pair: LayerPair) -> None:
    model, data, seed = vgg_like(), batches(), 3
    importance = ThiNetImportance(data, samples_per_image=5, seed=seed)
    scores = importance(tp_group(model, pair.producer))
    channels = scores.numel()
    assert scores.dtype == torch.float32 and sorted(scores.tolist()) == list(range(1, channels + 1))
    suite = pruning_group(build_graph(model, data[0][0]), model.get_submodule(pair.producer),
                          out_pruning_fn(model.get_submodule(pair.producer)), list(range(channels)))
    assert torch.equal(importance(suite), scores)  # a group from the suite's graph scores the same
    for n_keep in range(1, channels + 1):
        ctx = CriterionContext(model, pair, data, keep_ratio=n_keep / channels, seed=seed, samples_per_image=5)
        keep = run_criterion("thinet", ctx).keep
        assert keep.numel() == n_keep
        assert sorted(torch.topk(scores, n_keep).indices.tolist()) == keep.tolist(), n_keep


def test_scores_follow_the_groups_indices() -> None:
    model, data = vgg_like(), batches()
    graph = build_graph(model, data[0][0])
    importance = ThiNetImportance(data, samples_per_image=5)
    full = importance(pruning_group(graph, model[4], out_pruning_fn(model[4]), list(range(12))))
    part = importance(pruning_group(graph, model[4], out_pruning_fn(model[4]), [2, 6, 9]))
    assert torch.equal(part, full[[2, 6, 9]])


class Branchy(nn.Module):
    """conv0's channels feed two convs whose outputs are added."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0, self.conv_a, self.conv_b = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 3), nn.Conv2d(8, 4, 3)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv0(x))
        return self.fc((self.conv_a(y) + self.conv_b(y)).mean((2, 3)))


def test_a_group_feeding_several_consumers_is_refused_naming_the_layer() -> None:
    model, data = Branchy().eval(), batches()
    importance = ThiNetImportance(data, samples_per_image=5)
    with pytest.raises(PruningError, match=r"layer 'conv0'.*(conv_b|conv_a)"):
        importance(tp_group(model, "conv0"))
    with pytest.raises(PruningError, match=r"layer 'fc'.*no conv/linear consumer.*ignored_layers"):
        importance(tp_group(model, "fc"))
    # In MetaPruner: the refusal stops the step; ignoring the layer prunes the rest.
    pruner = tp.pruner.MetaPruner(model, data[0][0], importance=importance, pruning_ratio=0.5,
                                  ignored_layers=[model.fc])
    with pytest.raises(PruningError, match=r"layer '(conv0|conv_a|conv_b)'"):
        pruner.step()


def test_model_comes_from_the_group_or_the_constructor() -> None:
    model, data = vgg_like(), batches()
    group = tp_group(model, "4")
    expected = ThiNetImportance(data, samples_per_image=5)(group)
    group._DG = None
    with pytest.raises(PruningError, match=r"pass model="):
        ThiNetImportance(data, samples_per_image=5)(group)
    assert torch.equal(ThiNetImportance(data, samples_per_image=5, model=model)(group), expected)
    with pytest.raises(PruningError, match=r"at least as many samples as channels"):
        ThiNetImportance(data[:1], samples_per_image=1, model=model)(group)


def _snippet(marker: str) -> str:
    text = DOC.read_text()
    section = text[text.index(f"<!-- {marker}:start -->"):text.index(f"<!-- {marker}:end -->")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_docs_metapruner_snippet_prunes_thinets_channels(capsys) -> None:
    namespace: dict = {}
    exec(compile(_snippet("metapruner"), str(DOC), "exec"), namespace)
    assert capsys.readouterr().out.split() == ["32", "(1,", "1000)"]
    model, selection, example = namespace["model"], namespace["selection"], namespace["example"]
    torch.manual_seed(0)
    reference = torchvision.models.vgg11(weights=None).eval()  # the same weights, unpruned
    assert type(model) is torchvision.models.VGG
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in reference.parameters())
    for module in model.modules():  # a plain module: nothing left behind
        assert not (module._forward_hooks or module._forward_pre_hooks or module._backward_hooks)
    assert all(p.grad is None for p in model.parameters())
    # Every conv kept exactly the filters criterion thinet keeps on the unpruned model, seed 0.
    convs = [f"features.{i}" for i in (0, 3, 6, 8, 11, 13, 16, 18)]
    previous = torch.arange(3)
    for producer, consumer in zip(convs, convs[1:] + ["classifier.0"]):
        ctx = CriterionContext(reference, LayerPair(producer, consumer), selection, keep_ratio=0.5, seed=0,
                               samples_per_image=64)
        keep = run_criterion("thinet", ctx).keep
        expected = reference.get_submodule(producer).weight.detach()[keep][:, previous]
        assert torch.equal(model.get_submodule(producer).weight.detach(), expected), producer
        previous = keep
    assert model(example).shape == (1, 1000)


def test_the_docs_refit_snippet_prunes_layer_by_layer_with_w_hat(capsys) -> None:
    namespace: dict = {}
    exec(compile(_snippet("refit"), str(DOC), "exec"), namespace)
    assert capsys.readouterr().out.split() == ["32", "(1,", "1000)"]
    model = namespace["model"]
    assert [model.features[i].out_channels for i in (0, 3, 6, 8, 11, 13, 16, 18)] == [32, 64, 128, 128, 256, 256,
                                                                                        256, 256]
    assert model.classifier[0].in_features == 256 * 49
