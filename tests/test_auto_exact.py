"""Issue 24, "silently wrong networks": each case as a small hand-built model, which `--strategy auto`
now either prunes exactly (the pruned model equals the masked reference, checked by prune_chain's
verification of every cut) or refuses naming the layer and the operation.
"""
from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import nn

from thinet.pipeline import prune_chain
from thinet.runtime import count_flops
from thinet.strategies import plan_units
from thinet.surgery import CutNotExact, build_graph, find_unit, verify_cut
from thinet.types import LayerPair, PruneStep, PruningError, Selection

SIZE = (3, 12, 12)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *SIZE, generator=torch.Generator().manual_seed(seed))


class Pair(nn.Module):
    """conv1 -> BN -> ReLU -> `op` -> conv2 -> mean -> fc: conv1's channels reach conv2 through `op`."""

    def __init__(self, op, channels: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.bn = nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels)
        self.conv2, self.fc = nn.Conv2d(channels, 6, 3, padding=1), nn.Linear(6, 4)
        self.op = op

    def forward(self, x):
        y = self.op(torch.relu(self.bn(self.conv1(x))))
        return self.fc(self.conv2(y).mean((2, 3)))


# Module-level functions, so that the step checkpoints can pickle the models holding them.
def _softmax_over_channels(y):
    return y.softmax(1)


def _reverse(y):
    return y[:, torch.arange(y.shape[1] - 1, -1, -1)]


def _index_select(y):
    return y.index_select(1, torch.arange(y.shape[1]).roll(1))


def _gather(y):
    return y.gather(1, torch.arange(y.shape[1]).roll(1).view(1, -1, 1, 1).expand_as(y))


def _detached_gate(y):
    return y * y.mean((2, 3), keepdim=True).detach()


def _per_channel(y):
    return (y.flatten(2).softmax(-1).view_as(y) + 1.0) * y


MIXING = {
    "softmax over channels": (_softmax_over_channels, "SoftmaxBackward0"),
    "x[:, perm]": (_reverse, "IndexBackward0"),
    "index_select": (_index_select, "IndexSelectBackward0"),
    "gather": (_gather, "GatherBackward0"),
    "detached gate": (_detached_gate, "MulBackward0.*cannot see"),
}


def _chain(model: nn.Module, steps, tmp_path, *, criterion: str = "thinet", samples_per_image: int = 8,
           **kw) -> nn.Module:
    return prune_chain(model, steps, criterion=criterion, selection_batches=[_images()], finetune=None,
                       train_loader=None, workdir=tmp_path / "chain", seed=0, device="cpu",
                       example_inputs=torch.zeros(2, *SIZE), samples_per_image=samples_per_image, progress=False,
                       **kw)


@pytest.mark.parametrize("case", list(MIXING))
def test_channel_mixing_operations_are_refused_naming_the_op_and_the_layer(case, tmp_path):
    op, op_name = MIXING[case]
    model = Pair(op).eval()
    plan = plan_units(model, torch.zeros(2, *SIZE))
    kind, reason = plan.skipped["conv1"]
    assert kind in ("mixing", "detached")
    assert "'conv1'" in reason and re.search(op_name, reason), reason
    # The rest of the model is still planned and pruned exactly (the chain verifies every cut).
    assert [u.producer for u in plan.units] == ["conv2"]
    _chain(model, plan.steps(0.5), tmp_path)
    assert model.conv2.out_channels == 3 and model.conv1.out_channels == 8


def test_per_channel_operations_are_admitted_and_cut_exactly(tmp_path):
    # softmax over the spatial positions, a scalar shift and a per-channel square keep channels apart.
    model = Pair(_per_channel).eval()
    plan = plan_units(model, torch.zeros(2, *SIZE))
    assert [u.producer for u in plan.units] == ["conv1", "conv2"]
    _chain(model, plan.steps(0.5), tmp_path)
    assert model.conv1.out_channels == 4


def test_the_verification_undoes_a_cut_the_analysis_wrongly_admitted(tmp_path, monkeypatch):
    import thinet.surgery._ops as ops

    # Simulate a gap in the analysis: softmax admitted as if it acted on each channel apart.
    monkeypatch.setitem(ops._PER_CHANNEL, "softmax", lambda _grad_fn: None)
    model = Pair(_softmax_over_channels).eval()
    plan = plan_units(model, torch.zeros(2, *SIZE))
    assert [u.producer for u in plan.units] == ["conv1", "conv2"]
    with pytest.raises(CutNotExact, match=r"(?s)step 0: the cut of conv1 -> conv2.*not exact.*at layer 'conv2'"
                                          r".*undone"):
        _chain(model, plan.steps(0.5), tmp_path)
    assert model.conv1.out_channels == 8 and model.conv2.in_channels == 8  # restored in place
    with torch.no_grad():
        assert model(_images(2)).shape == (2, 4)
    pruned = _chain(Pair(_softmax_over_channels).eval(), plan.steps(0.5), tmp_path / "off", verify_cuts=False)
    assert pruned.conv1.out_channels == 4  # without the check the wrong network goes through


def test_a_pruned_model_that_cannot_run_is_undone_naming_the_layer():
    model = Pair(nn.Identity()).eval()
    reference = copy.deepcopy(model)
    with torch.no_grad():
        model.conv2.weight = nn.Parameter(model.conv2.weight[:, :5])  # a broken cut: conv2 reads 5 of 8
    sel = Selection.from_keep(torch.arange(4), 8)
    with pytest.raises(CutNotExact, match=r"forward pass fails in layer 'conv2'"):
        verify_cut(model, reference, LayerPair("conv1", "conv2"), sel, [_images(2)])
    assert model.conv2.weight.shape[1] == 8


class LRNJoin(nn.Module):
    """conv1 -> LRN (normalises across neighbouring channels) -> two consumers added together."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.lrn = nn.Conv2d(3, 8, 3, padding=1), nn.LocalResponseNorm(3)
        self.conv2, self.conv3, self.fc = nn.Conv2d(8, 6, 3, padding=1), nn.Conv2d(8, 6, 1), nn.Linear(6, 4)

    def forward(self, x):
        y = self.lrn(torch.relu(self.conv1(x)))
        return self.fc((self.conv2(y) + self.conv3(y)).mean((2, 3)))


def test_lrn_before_two_consumers_is_refused_with_shared_channels(tmp_path):
    model = LRNJoin().eval()
    plan = plan_units(model, torch.zeros(2, *SIZE), shared_channels=True)
    kind, reason = plan.skipped["conv1"]
    assert kind == "mixing" and "'conv1'" in reason and "in 'lrn'" in reason
    assert [u.producer for u in plan.units] == ["conv2"]  # the stream conv2 + conv3 -> fc is shared and exact
    _chain(model, plan.steps(0.5), tmp_path)
    assert model.conv2.out_channels == model.conv3.out_channels == 3


def test_weight_standardised_consumers_are_refused_by_name():
    from timm.layers import ScaledStdConv2d, StdConv2d

    for kind in (StdConv2d, ScaledStdConv2d):
        model = Pair(nn.Identity()).eval()
        model.conv2 = kind(8, 6, 3, padding=1)
        plan = plan_units(model, torch.zeros(2, *SIZE))
        unit_kind, reason = plan.skipped["conv1"]
        assert unit_kind == "type" and "'conv2'" in reason and kind.__name__ in reason and "standardis" in reason


class ScaledStream(nn.Module):
    """Weight-standardised producers (NF-ResNet style) adding into one stream read by two consumers."""

    def __init__(self) -> None:
        from timm.layers import ScaledStdConv2d

        super().__init__()
        torch.manual_seed(0)
        self.stem = ScaledStdConv2d(3, 8, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), ScaledStdConv2d(8, 8, 3, padding=1))
        self.fc = nn.Linear(8, 4)
        with torch.no_grad():
            self.stem.gain.uniform_(0.5, 2.0)  # a gain that is not all ones: cutting it wrongly shows
            self.branch[2].gain.uniform_(0.5, 2.0)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.branch(x)
        return self.fc(x.mean((2, 3)))


def test_scaled_std_conv_producers_take_their_gain_along(tmp_path):
    model = ScaledStream().eval()
    plan = plan_units(model, torch.zeros(2, *SIZE), shared_channels=True)
    stream = next(u for u in plan.units if u.producer == "stem")
    assert set(stream.producers) == {"stem", "branch.2"} and set(stream.consumers) == {"branch.0", "fc"}
    _chain(model, plan.steps(0.5), tmp_path)  # verified exact
    assert model.stem.gain.shape[0] == model.stem.out_channels == 4
    assert model.branch[2].gain.shape[0] == 4
    assert count_flops(model, SIZE) > 0  # "weight should contain 3 elements not 6" before


class Stream(nn.Module):
    """A plain stage of 3×3 convolutions joined by additions: one stream, `blocks` + 1 consumers."""

    def __init__(self, blocks: int = 12, channels: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                                  nn.Conv2d(channels, channels, 3, padding=1))
                                    for _ in range(blocks))
        self.fc = nn.Linear(channels, 4)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return self.fc(x.mean((2, 3)))


def _stream_error(refit: bool, tmp_path, monkeypatch) -> float:
    from thinet.surgery import ChannelUnit

    model = Stream().eval()
    reference = copy.deepcopy(model)
    unit = find_unit(build_graph(model, torch.zeros(2, *SIZE)), "stem", shared=True)
    assert len(unit.consumers) == 13 and len(unit.producers) == 13
    if not refit:  # the former behaviour: every consumer fitted from samples taken before the cut
        monkeypatch.setattr(ChannelUnit, "drifts", property(lambda self: False))
    _chain(model, [PruneStep(unit.pair, 0.5, coupled=True)], tmp_path / str(refit), samples_per_image=4)
    monkeypatch.undo()
    test = _images(16, seed=5)
    with torch.no_grad():
        want = reference(test)
        return float((model(test) - want).norm() / want.norm())


def test_a_long_shared_stream_is_refitted_after_the_cut(tmp_path, monkeypatch):
    before = _stream_error(False, tmp_path, monkeypatch)
    after = _stream_error(True, tmp_path, monkeypatch)
    assert after < 0.5 * before, (before, after)  # 0.41 -> 0.15 when measured


class TwoConsumers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 6, 3, padding=1)
        self.conv3, self.fc = nn.Conv2d(8, 6, 1), nn.Linear(6, 4)

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        return self.fc((self.conv2(y) * 3.0 + self.conv3(y)).mean((2, 3)))


def test_thinet_forward_refits_every_consumer_of_a_shared_unit(tmp_path):
    from thinet.criteria import CriterionContext, run_criterion
    from thinet.sampling import collect_samples
    from thinet.selection import least_squares_scale

    model = TwoConsumers().eval()
    unit = find_unit(build_graph(model, torch.zeros(2, *SIZE)), "conv1", shared=True)
    assert set(unit.consumers) == {"conv2", "conv3"}
    ctx = CriterionContext(model, unit.pair, [_images()], 0.5, seed=0, samples_per_image=8, unit=unit)
    sel = run_criterion("thinet_forward", ctx)
    assert set(sel.consumer_scales) == {"conv2", "conv3"}
    for index, name in enumerate(unit.consumers):  # each by its own Eq. 7, on its own samples
        from thinet.runtime import derive_seed

        seed = 0 if index == 0 else derive_seed(0, "consumer", index)
        x_hat = collect_samples(model, LayerPair("conv1", name), [_images()], samples_per_image=8, seed=seed)
        own = least_squares_scale(x_hat.T @ x_hat, sel.keep)
        assert torch.allclose(sel.consumer_scales[name], own, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(sel.consumer_scales["conv2"], sel.consumer_scales["conv3"])
    _chain(model, [PruneStep(unit.pair, 0.5, coupled=True)], tmp_path, criterion="thinet_forward")


def test_verification_is_on_by_default_in_the_command_line_and_can_be_turned_off():
    import argparse

    from thinet.cli import prune as cli_prune

    parser = argparse.ArgumentParser()
    cli_prune.add_arguments(parser)
    args = parser.parse_args(["--out", "x.pt"])
    assert args.no_verify_cuts is False
    assert parser.parse_args(["--out", "x.pt", "--no-verify-cuts"]).no_verify_cuts is True


def test_a_pair_check_refuses_a_mixing_operation_too():
    from thinet.surgery import check_pair

    with pytest.raises(PruningError, match=r"conv1.*GatherBackward0"):
        check_pair(Pair(MIXING["gather"][0]).eval(), LayerPair("conv1", "conv2"), torch.zeros(2, *SIZE))
