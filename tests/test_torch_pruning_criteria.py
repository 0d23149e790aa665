"""Torch-Pruning's importances as criteria `tp_<name>` (baselines/torch_pruning.py)."""
from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines import torch_pruning as tpc
from thinet.criteria import (
    CriterionContext, available_criteria, check_criterion, get_criterion, layer_refusal, on_demand_criteria,
    run_criterion,
)
from thinet.criteria._registry import registered
from thinet.types import LayerPair, PruningError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEFAULTS = {"tp_magnitude", "tp_lamp", "tp_bn_scale", "tp_taylor", "tp_hessian"}
ON_DEMAND = {"tp_fpgm", "tp_random", "tp_obdc", "tp_activation"}


def vgg_like(bn: bool = True, bias: bool = True) -> nn.Module:
    """conv-BN-ReLU x2, a conv, then a Linear reading 4 columns per channel after a flatten."""
    torch.manual_seed(0)
    norm = (lambda c: nn.BatchNorm2d(c)) if bn else (lambda c: nn.Identity())
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=bias), norm(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1, bias=bias), norm(12), nn.ReLU(),
        nn.Conv2d(12, 6, 3, padding=1, bias=bias), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(24, 5),
    )
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():  # BatchNorms with distinct channels
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(2)
    return [(torch.randn(3, 3, 8, 8, generator=gen), torch.randint(0, 5, (3,), generator=gen)) for _ in range(2)]


CONV_PAIR = LayerPair("4", "7")      # conv -> BN -> ReLU -> conv
LINEAR_PAIR = LayerPair("7", "11")   # conv -> ReLU -> pool -> flatten -> Linear (4 columns per channel)


def factory(model: nn.Module, pair: LayerPair, data=None):
    data = batches() if data is None else data
    return lambda r, seed: CriterionContext(model, pair, data, keep_ratio=r, seed=seed)


def test_default_names_are_registered_and_the_others_on_demand() -> None:
    assert {n for n in available_criteria() if n.startswith("tp_")} == DEFAULTS
    assert ON_DEMAND <= set(on_demand_criteria())
    assert set(tpc.known_names()) == DEFAULTS | ON_DEMAND
    for name in ON_DEMAND:
        assert get_criterion(name).__name__ == f"criterion_{name}"
    assert ON_DEMAND <= set(available_criteria())  # registered once asked for


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_default_criteria_conform(name: str) -> None:
    model = vgg_like()
    for pair in (CONV_PAIR, LINEAR_PAIR):
        if layer_refusal(name, model, pair, torch.zeros(2, 3, 8, 8)) is None:
            check_criterion(name, factory(model, pair), keep_ratios=(0.5, 0.01))


def test_on_demand_criteria_conform() -> None:
    model = vgg_like(bias=False)  # OBDC in Torch-Pruning 1.6.1 scores bias-free layers only
    for name in sorted(ON_DEMAND):
        check_criterion(name, factory(model, CONV_PAIR), keep_ratios=(0.5,))
    random_keeps = {tuple(run_criterion("tp_random", factory(model, CONV_PAIR)(0.5, s)).keep.tolist())
                    for s in range(4)}
    assert len(random_keeps) > 1  # the seed is used


def test_unknown_tp_name_lists_the_known_ones() -> None:
    with pytest.raises(PruningError, match=r"unknown Torch-Pruning criterion 'tp_nope'") as err:
        get_criterion("tp_nope")
    for name in DEFAULTS | ON_DEMAND:
        assert name in str(err.value)
    assert "tp_nope" not in registered()


def test_bn_scale_refuses_a_producer_without_batchnorm_naming_it() -> None:
    model = vgg_like(bn=False)
    reason = layer_refusal("tp_bn_scale", model, CONV_PAIR, torch.zeros(2, 3, 8, 8))
    assert reason is not None and "no BatchNorm" in reason
    assert layer_refusal("tp_bn_scale", vgg_like(), CONV_PAIR, torch.zeros(2, 3, 8, 8)) is None
    with pytest.raises(PruningError, match=r"criterion 'tp_bn_scale' cannot score layer '4': no BatchNorm"):
        run_criterion("tp_bn_scale", factory(model, CONV_PAIR)(0.5, 0))


def test_obdc_refuses_a_producer_with_a_bias_naming_it() -> None:
    assert "bias" in layer_refusal("tp_obdc", vgg_like(), CONV_PAIR, torch.zeros(2, 3, 8, 8))
    with pytest.raises(PruningError, match=r"criterion 'tp_obdc' cannot score layer '4': it has a bias"):
        run_criterion("tp_obdc", factory(vgg_like(), CONV_PAIR)(0.5, 0))


def test_gradient_criteria_need_labels() -> None:
    images = [x for x, _ in batches()]
    with pytest.raises(PruningError, match=r"'tp_taylor' on layer '4' needs labelled"):
        run_criterion("tp_taylor", factory(vgg_like(), CONV_PAIR, images)(0.5, 0))


def test_magnitude_is_the_group_norm_by_hand() -> None:
    """Torch-Pruning's default (p=2, group_reduction="mean", normalizer="mean", bias=False): per channel the mean
    over the group's layers of the squared weights: producer filter, BN γ (not β), consumer input columns."""
    model = vgg_like()
    ctx = factory(model, CONV_PAIR)(0.5, 0)
    producer, bn, consumer = model[4].weight.detach(), model[5].weight.detach(), model[7].weight.detach()
    by_hand = (producer.pow(2).flatten(1).sum(1) + bn.pow(2) + consumer.pow(2).transpose(0, 1).flatten(1).sum(1)) / 3
    assert torch.allclose(tpc.tp_scores("tp_magnitude", ctx), (by_hand / by_hand.mean()).double(), rtol=1e-5)
    # A Linear consumer after a flatten: its 4 columns of each channel count for that channel.
    ctx = factory(model, LINEAR_PAIR)(0.5, 0)
    conv, linear = model[7].weight.detach(), model[11].weight.detach()
    by_hand = (conv.pow(2).flatten(1).sum(1) + linear.pow(2).sum(0).view(6, 4).sum(1)) / 2
    assert torch.allclose(tpc.tp_scores("tp_magnitude", ctx), (by_hand / by_hand.mean()).double(), rtol=1e-5)


def test_lamp_keeps_the_channels_magnitude_keeps() -> None:
    model = vgg_like()
    for pair in (LayerPair("0", "4"), CONV_PAIR, LINEAR_PAIR):
        ctx = factory(model, pair)(0.5, 0)
        lamp, magnitude = tpc.tp_scores("tp_lamp", ctx), tpc.tp_scores("tp_magnitude", ctx)
        assert torch.equal(torch.argsort(lamp), torch.argsort(magnitude))  # monotone within the layer
        for n in range(1, ctx.num_channels + 1):
            make = factory(model, pair)
            r = n / ctx.num_channels
            lamp, magnitude = (run_criterion(name, make(r, 0)).keep for name in ("tp_lamp", "tp_magnitude"))
            assert torch.equal(lamp, magnitude), n


def _gradients(model: nn.Module, data, per_image: bool) -> dict[str, torch.Tensor]:
    """∂L/∂θ of the summed cross-entropy (or the mean over images of (∂L_n/∂θ)²) on a copy, by hand."""
    model = copy.deepcopy(model).eval()
    out: dict[str, torch.Tensor] = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    count = 0
    for x, y in data:
        for i in range(x.shape[0]) if per_image else [slice(None)]:
            model.zero_grad()
            F.cross_entropy(model(x[i:i + 1] if per_image else x), y[i:i + 1] if per_image else y,
                            reduction="sum").backward()
            for n, p in model.named_parameters():
                out[n] += p.grad.pow(2) if per_image else p.grad
            count += 1
    return {n: g / count for n, g in out.items()} if per_image else out


def test_taylor_is_the_weight_times_gradient_sum_by_hand() -> None:
    """GroupTaylorImportance: mean over producer filter and consumer columns of Σ|w·∂L/∂w| (1.6.1's BatchNorm
    branch never fires), divided by its mean; L summed over every selection image."""
    model, data = vgg_like(), batches()
    grads = _gradients(model, data, per_image=False)
    w_p, w_c = model[4].weight.detach(), model[7].weight.detach()
    by_hand = ((w_p * grads["4.weight"]).abs().flatten(1).sum(1)
               + (w_c * grads["7.weight"]).abs().transpose(0, 1).flatten(1).sum(1)) / 2
    ctx = factory(model, CONV_PAIR, data)(0.5, 0)
    scores = tpc.tp_scores("tp_taylor", ctx)
    assert torch.allclose(scores, (by_hand / by_hand.mean()).double(), rtol=1e-4)
    assert run_criterion("tp_taylor", ctx).keep.tolist() == sorted(torch.topk(by_hand, 6).indices.tolist())


def test_hessian_averages_every_images_squared_gradient() -> None:
    """GroupHessianImportance on h = mean_n (∂L_n/∂θ)² (not only the last image's, as 1.6.1's accumulate_grad)."""
    model, data = vgg_like(), batches()
    h = _gradients(model, data, per_image=True)
    w_p, gamma, w_c = model[4].weight.detach(), model[5].weight.detach(), model[7].weight.detach()
    by_hand = ((w_p.pow(2) * h["4.weight"]).flatten(1).sum(1) + gamma.pow(2) * h["5.weight"]
               + (w_c.pow(2) * h["7.weight"]).transpose(0, 1).flatten(1).sum(1)) / 3
    scores = tpc.tp_scores("tp_hessian", factory(model, CONV_PAIR, data)(0.5, 0))
    assert torch.allclose(scores, (by_hand / by_hand.mean()).double(), rtol=1e-4)


def test_the_model_is_left_as_found() -> None:
    """Gradients present before are put back, frozen parameters stay frozen, no hook or attribute is left."""
    model = vgg_like(bias=False)
    for p in model.parameters():
        p.requires_grad_(False)
    marker = torch.full_like(model[0].weight, 7.0)
    model[0].weight.grad = marker
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ("tp_taylor", "tp_hessian", "tp_obdc", "tp_activation"):
        run_criterion(name, factory(model, CONV_PAIR)(0.5, 0))
    assert model[0].weight.grad is marker
    assert all(p.grad is None for n, p in model.named_parameters() if n != "0.weight")
    assert not any(p.requires_grad for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    for m in model.modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or hasattr(m, "_importance"))


def test_listing_criteria_does_not_import_torch_pruning() -> None:
    code = ("import sys; from thinet.criteria import available_criteria, on_demand_criteria; "
            "names = available_criteria(); on_demand_criteria(); "
            "print('tp_magnitude' in names, 'torch_pruning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"True False\s*", out), out
