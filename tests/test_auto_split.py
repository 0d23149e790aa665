"""Issue 24, splits and chunks: a producer whose channels reach consumers through `torch.split` / `torch.chunk`
along the channels is pruned when the split's sizes can follow the cut (a chunk of equal segments re-divides by
itself; a split's sizes are rewritten in the one module attribute that holds them, as MixNet's `MixedConv2d.splits`),
each segment keeping the same share; every other split is refused naming the op and the layer. Every cut is
verified against the masked reference by prune_chain (a wrong network fails the chain).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from thinet.pipeline import prune_chain
from thinet.runtime import count_flops
from thinet.strategies import plan_units
from thinet.surgery import build_graph, find_unit
from thinet.surgery._graph import out_pruning_fn, pruning_group

SIZE = (3, 8, 8)
EXAMPLE = torch.zeros(2, *SIZE)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _prune(model: nn.Module, steps, tmp_path) -> nn.Module:
    batches = [torch.randn(8, *SIZE, generator=torch.Generator().manual_seed(1))]
    return prune_chain(model, steps, criterion="thinet", selection_batches=batches, finetune=None,
                       train_loader=None, workdir=tmp_path / "chain", seed=0, device="cpu", example_inputs=EXAMPLE,
                       samples_per_image=16, progress=False)


class MixedDw(nn.Module):
    """MixNet's mixed-kernel depthwise conv: one segment per kernel size, the sizes in `self.splits`."""

    def __init__(self, channels: int, kernels: list[int]) -> None:
        super().__init__()
        self.splits = [channels // len(kernels)] * len(kernels)
        self.convs = nn.ModuleList(nn.Conv2d(s, s, k, padding=k // 2, groups=s) for s, k in zip(self.splits, kernels))

    def forward(self, x):
        return torch.cat([conv(part) for conv, part in zip(self.convs, torch.split(x, self.splits, 1))], 1)


class MixedPw(nn.Module):
    """MixNet's grouped pointwise conv: each segment to its own 1x1 conv, outputs concatenated."""

    def __init__(self, cin: int, cout: int, parts: int) -> None:
        super().__init__()
        self.splits = [cin // parts] * parts
        self.convs = nn.ModuleList(nn.Conv2d(s, cout // parts, 1) for s in self.splits)

    def forward(self, x):
        return torch.cat([conv(part) for conv, part in zip(self.convs, torch.split(x, self.splits, 1))], 1)


class MixBlock(nn.Module):
    """pw -> BN -> ReLU -> mixed depthwise (split 3 ways) -> BN -> ReLU -> pwl (plain, or split 2 ways)."""

    def __init__(self, pwl_parts: int = 1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.pw = nn.Conv2d(3, 12, 1)
        self.bn = nn.BatchNorm2d(12)
        self.dw = MixedDw(12, [3, 5, 7])
        self.bn2 = nn.BatchNorm2d(12)
        self.pwl = nn.Conv2d(12, 8, 1) if pwl_parts == 1 else MixedPw(12, 8, pwl_parts)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = torch.relu(self.bn(self.pw(x)))
        x = torch.relu(self.bn2(self.dw(x)))
        return self.fc(self.pwl(x).mean((2, 3)))


def test_torch_pruning_split_mapping_is_replaced_by_the_segment_each_consumer_reads():
    # Torch-Pruning pairs split outputs with segments in the order it meets consumers: dw.convs.2 got channels 0..3.
    model = MixBlock().eval()
    graph = build_graph(model, EXAMPLE)
    group = pruning_group(graph, model.pw, out_pruning_fn(model.pw), list(range(12)))
    roots = {item.dep.target._name: sorted(item.root_idxs) for item in group if item.dep.target._name}
    assert roots["dw.convs.0"] == [0, 1, 2, 3] and roots["dw.convs.2"] == [8, 9, 10, 11]
    pwl = next(item for item in group if item.dep.target._name == "pwl")
    assert sorted(zip(pwl.idxs, pwl.root_idxs)) == [(c, c) for c in range(12)]


def test_mixed_kernel_depthwise_split_is_pruned_and_its_sizes_rewritten(tmp_path):
    model = MixBlock().eval()
    plan = plan_units(model, EXAMPLE)
    unit = plan.units[0]
    assert unit.producer == "pw" and unit.consumers == ("pwl",) and unit.groups == 3
    assert set(unit.carried) == {"dw.convs.0", "dw.convs.1", "dw.convs.2"}
    assert unit.splits == ("split in 'dw' (sizes in .splits)",) and not unit.plain
    flops = count_flops(model, SIZE)
    _prune(model, plan.steps(0.5), tmp_path)  # verified exact by prune_chain
    assert model.dw.splits == [2, 2, 2] and [c.out_channels for c in model.dw.convs] == [2, 2, 2]
    assert model.pw.out_channels == 6 and model.pwl.in_channels == 6 and count_flops(model, SIZE) < flops
    model(torch.randn(1, *SIZE))


def test_consumers_behind_a_split_read_their_own_segment(tmp_path):
    model = MixBlock(pwl_parts=2).eval()
    unit = plan_units(model, EXAMPLE).units[0]  # two consumers, each its own 6 channels: not shared channels
    assert unit.consumers == ("pwl.convs.0", "pwl.convs.1") or unit.consumers == ("pwl.convs.1", "pwl.convs.0")
    assert unit.span("pwl.convs.0") == (0, 6) and unit.span("pwl.convs.1") == (6, 6) and unit.groups == 6
    _prune(model, plan_units(model, EXAMPLE).steps(0.5), tmp_path)
    assert model.pwl.splits == [3, 3] and [c.in_channels for c in model.pwl.convs] == [3, 3]
    assert model.dw.splits == [2, 2, 2]


class Chunked(nn.Module):
    """A chunk into two halves, each to its own conv: chunk re-divides whatever it gets."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(4, 6, 3, padding=1)
        self.b = nn.Conv2d(4, 6, 1)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        x1, x2 = torch.relu(self.conv(x)).chunk(2, 1)
        return self.fc((self.a(x1) + self.b(x2)).mean((2, 3)))


def test_a_chunk_is_pruned_with_equal_halves(tmp_path):
    model = Chunked().eval()
    unit = find_unit(build_graph(model, EXAMPLE), "conv")
    assert unit.splits == ("chunk in the model's forward",) and unit.groups == 2
    assert unit.span("a") == (0, 4) and unit.span("b") == (4, 4)
    _prune(model, [s for s in plan_units(model, EXAMPLE).steps(0.5) if s.pair.producer == "conv"], tmp_path)
    assert model.conv.out_channels == 4 and model.a.in_channels == 2 and model.b.in_channels == 2


class LiteralSplit(nn.Module):
    """split by sizes that no attribute holds (a literal, or computed from the input)."""

    def __init__(self, computed: bool) -> None:
        super().__init__()
        self.computed = computed
        self.conv = nn.Conv2d(3, 8, 1)
        self.a, self.b = nn.Conv2d(4, 2, 1), nn.Conv2d(4, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        half = y.shape[1] // 2
        x1, x2 = torch.split(y, [half, half] if self.computed else [4, 4], 1)
        return (self.a(x1) + self.b(x2)).mean((2, 3))


class UnequalSplit(nn.Module):
    """Segments of 4 and 8 channels (held in an attribute): each segment cannot keep the same share."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes = [4, 8]
        self.conv = nn.Conv2d(3, 12, 1)
        self.a, self.b = nn.Conv2d(4, 2, 1), nn.Conv2d(8, 2, 1)

    def forward(self, x):
        x1, x2 = torch.split(self.conv(x), self.sizes, 1)
        return (self.a(x1) + self.b(x2)).mean((2, 3))


class HalfChunk(nn.Module):
    """cat of two producers, then chunk(2): the cut of one producer would make chunk re-divide wrongly."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(8)
        self.a, self.b = nn.Conv2d(4, 2, 1), nn.Conv2d(4, 2, 1)

    def forward(self, x):
        x1, x2 = torch.relu(self.bn(torch.cat([self.c1(x), self.c2(x)], 1))).chunk(2, 1)
        return (self.a(x1) + self.b(x2)).mean((2, 3))


class Swapped(nn.Module):
    """Both segments concatenated the other way round (a permutation of the channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.splits = [4, 4]
        self.conv, self.head = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1)

    def forward(self, x):
        first, second = torch.split(self.conv(x), self.splits, 1)
        return self.head(torch.cat([second, first], 1)).mean((2, 3))


@pytest.mark.parametrize("model, producer, words", [
    (LiteralSplit(computed=False), "conv", ["split SplitWithSizesBackward0 in the model's own forward",
                                            "no attribute of the model's own forward holds those sizes"]),
    (LiteralSplit(computed=True), "conv", ["splits them by [4, 4]", "no attribute"]),
    (UnequalSplit(), "conv", ["unequal or scattered shares [4, 8]"]),
    (HalfChunk(), "c1", ["re-divides its 8 channels into 2 equal segments, but the cut reaches only 1 of them"]),
    (Swapped(), "conv", ["reads segments [0, 1] of one split"]),
], ids=["literal", "computed", "unequal", "half-chunk", "swapped"])
def test_splits_whose_sizes_cannot_follow_the_cut_are_refused_by_name(model, producer, words):
    plan = plan_units(model.eval(), EXAMPLE)
    assert producer in plan.skipped and not any(u.producer == producer for u in plan.units)
    kind, reason = plan.skipped[producer]
    assert kind == "split", reason
    for word in words:
        assert word in reason, reason


class GatedMix(nn.Module):
    """MixNet's a1.1 block: two pointwise convs concatenated, an SE gate over the whole, a split pointwise-linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.pw = MixedPw(4, 12, 2)  # producers pw.convs.0 / .1, each 6 of the 12 channels
        self.bn = nn.BatchNorm2d(12)
        self.reduce, self.expand = nn.Conv2d(12, 3, 1), nn.Conv2d(3, 12, 1)
        self.pwl = MixedPw(12, 4, 2)
        self.stem = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = torch.relu(self.bn(self.pw(self.stem(x))))
        x = x * torch.sigmoid(self.expand(torch.relu(self.reduce(x.mean((2, 3), keepdim=True)))))
        return self.fc(self.pwl(x).mean((2, 3)))


def test_a_producer_behind_a_shared_se_gate_cuts_its_share_of_the_gate(tmp_path):
    model = GatedMix().eval()
    plan = plan_units(model, EXAMPLE)
    units = {u.producer: u for u in plan.units}
    unit = units["pw.convs.0"]
    assert unit.gated and unit.consumers == ("pwl.convs.0",) and {"reduce", "expand"} <= set(unit.carried)
    assert unit.window("reduce") == (0, 12)
    steps = [s for s in plan.steps(0.5) if s.pair.producer.startswith("pw.convs")]
    _prune(model, steps, tmp_path)  # both halves cut, each verified exact against the masked reference
    assert model.reduce.in_channels == 6 and model.expand.out_channels == 6 and model.pwl.splits == [3, 3]
