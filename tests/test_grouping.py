"""gcos (thinet.grouping): the partition it recovers, the conversion's exactness, counting, ONNX export."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from thinet.grouping import (
    ChannelShuffle,
    Grouping,
    GroupingContext,
    available_groupings,
    collect_filter_grams,
    convert_layer,
    convert_model,
    gcos_partition,
    partition_error,
    plan_grouping,
    run_grouping,
)
from thinet.runtime import model_counts
from thinet.types import PruningError


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blocked_layer(groups: int, channels: int = 8, filters: int = 8) -> tuple[nn.Module, torch.Tensor]:
    """conv(3 -> C) -> ReLU -> conv(C -> D) whose filter d reads only the channels c with c ≡ d (mod g):
    g independent blocks that a contiguous split cuts across."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, filters, 3, padding=1))
    with torch.no_grad():
        block_d = torch.arange(filters) % groups
        block_c = torch.arange(channels) % groups
        net[2].weight.mul_((block_d.view(-1, 1) == block_c.view(1, -1)).float().view(filters, channels, 1, 1))
    return net.eval(), torch.randn(12, 3, 10, 10, generator=_seeded(1))


@pytest.mark.parametrize("groups", [2, 4])
def test_gcos_recovers_the_independent_blocks_a_contiguous_split_cuts(groups):
    net, images = blocked_layer(groups)
    ctx = GroupingContext(net, "2", groups, [images], seed=0, samples_per_image=6)
    found = run_grouping("gcos", ctx)
    want = {frozenset(range(j, 8, groups)) for j in range(groups)}
    assert {frozenset(i.tolist()) for i in found.inputs} == want
    assert {frozenset(f.tolist()) for f in found.filters} == want
    # each filter group reads exactly its block: nothing to reconstruct, so Eq. 7's scales are 1
    assert all(torch.allclose(s, torch.ones_like(s), atol=1e-4) for s in found.scales)
    grams = ctx.filter_grams()
    assert partition_error(grams, found) == pytest.approx(0.0, abs=1e-9 * float(grams.sum()))
    assert partition_error(grams, run_grouping("contiguous", ctx)) > 0.1 * float(grams.diagonal(dim1=1, dim2=2).sum())


def test_gcos_is_never_worse_than_contiguous_on_its_objective():
    x = torch.randn(300, 12, 16, generator=_seeded(3), dtype=torch.float64)  # m × D × C, no structure
    grams = torch.einsum("mdc,mde->dce", x, x)
    for groups in (2, 4):
        gcos = gcos_partition(grams, groups)
        assert partition_error(grams, gcos) <= partition_error(grams, Grouping.contiguous(16, 12, groups))


def test_filter_grams_are_the_sampled_contributions():
    net, images = blocked_layer(2)
    grams = collect_filter_grams(net, "2", [images[:2]], samples_per_image=3, seed=5)
    # the same positions drawn again, x̂ formed by brute force from the unfolded input
    gen = _seeded(5)
    rows, cols = torch.randint(10, (2, 3), generator=gen), torch.randint(10, (2, 3), generator=gen)
    with torch.no_grad():
        inputs = nn.functional.pad(net[1](net[0](images[:2])), (1, 1, 1, 1)).double()
    want = torch.zeros_like(grams)
    for n in range(2):
        for l in range(3):
            window = inputs[n, :, rows[n, l]:rows[n, l] + 3, cols[n, l]:cols[n, l] + 3]  # C×3×3
            x_hat = (net[2].weight.double() * window).sum((2, 3))  # D×C
            want += torch.einsum("dc,de->dce", x_hat, x_hat)
    assert torch.allclose(grams, want, rtol=1e-6, atol=1e-8)


def masked(model: nn.Module, layer: str, grouping: Grouping) -> nn.Module:
    """The dense model with the layer's connections outside the groups zeroed, the kept ones scaled."""
    reference = copy.deepcopy(model)
    conv = reference.get_submodule(layer)
    factor = grouping.mask().float()
    if grouping.scales is not None:
        for inputs, filters, scale in zip(grouping.inputs, grouping.filters, grouping.scales):
            factor[filters.unsqueeze(1), inputs.unsqueeze(0)] = scale.float()
    with torch.no_grad():
        conv.weight.mul_(factor.view(*factor.shape, 1, 1))
    return reference


def net_with_bn() -> nn.Module:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(12 * 4 * 4, 5))
    for bn in (net[1], net[4]):
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
    return net.eval()


def test_every_conversion_equals_the_masked_dense_model():
    net, x = net_with_bn(), torch.randn(16, 3, 8, 8, generator=_seeded(4))
    plan = plan_grouping(net, 2, x[:1])
    assert [s.layer for s in plan.layers] == ["3", "7"] and plan.skipped == {"0": "reads the image (3 input channels)"}
    assert plan.layers[0].input_fold.norms == ("1",)  # conv 0 stays dense: 3's input order folds into it
    assert plan.layers[1].input_fold is None and plan.layers[1].output_fold.consumer == "10"
    # gcos on 3; on 7 a random (so surely not contiguous) grouping, whose input order needs the shuffle
    for index, (step, name) in enumerate(zip(plan.layers, ("gcos", "random"))):
        grouping = run_grouping(name, GroupingContext(net, step.layer, 2, [x], seed=index, samples_per_image=4))
        reference = masked(net, step.layer, grouping)
        convert_layer(net, step, grouping)
        with torch.no_grad():
            assert torch.allclose(net(x), reference(x), rtol=1e-4, atol=1e-5)
    # 3's input permutation folded into conv 0 and its BatchNorm; 7's producer is grouped: an explicit shuffle
    assert isinstance(net[3], nn.Conv2d) and net[3].groups == 2
    assert isinstance(net[7].shuffle, ChannelShuffle) and net[7].conv.groups == 2


def test_an_output_order_that_cannot_fold_is_undone_by_a_shuffle():
    class TwoHeads(nn.Module):  # conv b feeds two consumers: its filter order cannot fold into one
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
            self.c, self.d = nn.Conv2d(8, 4, 1), nn.Conv2d(8, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.b(torch.relu(self.a(x))))
            return self.c(y) + self.d(y)

    torch.manual_seed(3)
    net, x = TwoHeads().eval(), torch.randn(2, 3, 6, 6)
    plan = plan_grouping(net, 2, x)
    step = next(s for s in plan.layers if s.layer == "b")
    assert step.output_fold is None and step.input_fold.producer == "a"
    grouping = run_grouping("random_nols", GroupingContext(net, "b", 2, seed=7))
    reference = masked(net, "b", grouping)
    convert_layer(net, step, grouping)
    assert isinstance(net.b.unshuffle, ChannelShuffle) and not hasattr(net.b, "shuffle")
    with torch.no_grad():
        assert torch.allclose(net(x), reference(x), rtol=1e-4, atol=1e-5)


def test_counts_of_grouped_convs_and_onnx_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    net, x = net_with_bn(), torch.randn(2, 3, 8, 8, generator=_seeded(5))
    dense = model_counts(net, (3, 8, 8))
    convert_model(net, 2, "random_nols", seed=1, example_inputs=x[:1])
    counts = model_counts(net, (3, 8, 8))
    # conv 3 (8→8, 3×3) and conv 7 (8→12, 3×3) keep half their weights; the shuffle adds nothing
    assert dense["params"] - counts["params"] == (8 * 8 * 9 + 8 * 12 * 9) // 2
    assert dense["flops"] - counts["flops"] == 2 * (8 * 8 * 9 * 8 * 8 + 8 * 12 * 9 * 4 * 4) // 2
    path = tmp_path / "grouped.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    (out,) = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(out), net(x), atol=1e-4)


def test_contiguous_needs_no_shuffle_and_random_follows_its_seed():
    net = net_with_bn()
    convert_model(copy.deepcopy(net), 2, "contiguous_nols", example_inputs=torch.zeros(1, 3, 8, 8))
    plain = convert_model(copy.deepcopy(net), 2, "contiguous_nols", example_inputs=torch.zeros(1, 3, 8, 8))
    assert not any(isinstance(m, ChannelShuffle) for m in plain.modules())
    ctx = GroupingContext(net, "7", 2, seed=3)
    first, again = run_grouping("random_nols", ctx), run_grouping("random_nols", ctx)
    other = run_grouping("random_nols", GroupingContext(net, "7", 2, seed=4))
    assert [t.tolist() for t in first.inputs] == [t.tolist() for t in again.inputs]
    assert [t.tolist() for t in first.inputs] != [t.tolist() for t in other.inputs]


def test_bad_requests_name_the_culprit_before_anything_changes():
    net = net_with_bn()
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(PruningError, match=r"layer '0': reads the image.*layer '7': C=8 inputs and D=12 filters"):
        plan_grouping(net, 8, torch.zeros(1, 3, 8, 8), strict=True)
    with pytest.raises(PruningError, match="unknown grouping 'gcoss'.*contiguous, contiguous_nols, gcos"):
        convert_model(net, 2, "gcoss", example_inputs=torch.zeros(1, 3, 8, 8))
    with pytest.raises(PruningError, match="grouping 'gcos'.*selection images"):
        convert_model(net, 2, "gcos", example_inputs=torch.zeros(1, 3, 8, 8))
    with pytest.raises(PruningError, match="2 images x 1 samples per image = 2 samples.*8 input channels"):
        convert_model(net, 2, "gcos", batches=torch.randn(2, 3, 8, 8), samples_per_image=1,
                      example_inputs=torch.zeros(1, 3, 8, 8))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert available_groupings() == ["contiguous", "contiguous_nols", "gcos", "gcos_nols", "random", "random_nols"]


def test_every_grouping_is_rescaled_by_least_squares_unless_nols():
    # A comparison of groupings compares partitions: the baselines get Eq. 7 per group as gcos does.
    net, images = blocked_layer(2)
    ctx = GroupingContext(net, "2", 2, [images], seed=0, samples_per_image=6)
    for name in ("gcos", "contiguous", "random"):
        scaled, plain = run_grouping(name, ctx), run_grouping(f"{name}_nols", ctx)
        assert scaled.scales is not None and plain.scales is None
        assert [i.tolist() for i in scaled.inputs] == [i.tolist() for i in plain.inputs]
    # contiguous cuts across the blocks: its scales are not ones
    scales = torch.cat(run_grouping("contiguous", ctx).scales)
    assert not torch.allclose(scales, torch.ones_like(scales), atol=1e-2)
