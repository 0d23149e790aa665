"""FPGM, HRank, CHIP and BatchNorm scale keep what a literal reading of their papers keeps, on hand-made layers."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.spatial.distance import cdist
from torch import nn

from baselines.bn_scale import bn_scale_scores
from baselines.chip import channel_independence, chip_scores, masked_nuclear_norms
from baselines.fpgm import fpgm_scores
from baselines.hrank import hrank_scores, map_ranks
from thinet.criteria import (
    CriterionContext, available_criteria, check_criterion, check_layers, layer_refusal, run_criterion,
)
from thinet.types import LayerPair, PruningError

NEW = ("fpgm", "hrank", "chip", "bn_scale")


def _images(n: int = 4, channels: int = 2, size: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def _bn_vgg() -> nn.Module:
    """conv -> BN -> ReLU -> pool -> conv -> BN -> ReLU -> conv -> GAP -> fc, non-trivial BN statistics."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(inplace=True),
        nn.Conv2d(12, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5),
    )
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
    return model


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(2)
    return [(torch.randn(3, 3, 8, 8, generator=gen), torch.randint(0, 5, (3,), generator=gen)) for _ in range(2)]


# --------------------------------------------------------------------------------------------- registry


def test_the_four_criteria_are_registered_with_their_checks() -> None:
    assert set(NEW) <= set(available_criteria())
    model = _bn_vgg()
    x = torch.zeros(2, 3, 8, 8)
    for name in NEW:  # every one can score a conv with BN and ReLU
        assert layer_refusal(name, model, LayerPair("4", "7"), x) is None


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("pair", [LayerPair("0", "4"), LayerPair("4", "7")])
def test_check_criterion_passes(name: str, pair: LayerPair) -> None:
    model = _bn_vgg()
    batches = _batches()
    check_criterion(name, lambda r, seed: CriterionContext(model, pair, batches, keep_ratio=r, seed=seed),
                    keep_ratios=(0.5, 0.3, 0.01))


# ------------------------------------------------------------------------------------------------- FPGM


def test_fpgm_sums_euclidean_distances_by_hand_and_differs_from_weight_sum() -> None:
    # Four 2-D filters: (10, 0), (10, 1), (10, -2), (0, 0).
    points = [(10.0, 0.0), (10.0, 1.0), (10.0, -2.0), (0.0, 0.0)]
    conv = nn.Conv2d(1, 4, (1, 2), bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(points).view(4, 1, 1, 2))
        conv.bias.copy_(torch.tensor([100.0, -50.0, 0.0, 7.0]))  # never looked at
    hand = [
        1 + 2 + 10,  # (10,0): to (10,1), (10,-2), (0,0)
        1 + 3 + math.sqrt(101),  # (10,1)
        2 + 3 + math.sqrt(104),  # (10,-2)
        10 + math.sqrt(101) + math.sqrt(104),  # (0,0): the farthest from the others
    ]
    assert fpgm_scores(conv.weight).tolist() == pytest.approx(hand, rel=1e-12)
    model = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(4, 2, 1))
    ctx = CriterionContext(model, LayerPair("0", "2"), [_images(channels=1)], keep_ratio=0.5)
    assert run_criterion("fpgm", ctx).keep.tolist() == [2, 3]  # the two largest sums
    assert run_criterion("weight_sum", ctx).keep.tolist() == [1, 2]  # l1 norms 10, 11, 12, 0: another set


def test_fpgm_matches_the_authors_cdist_with_rate_norm_one() -> None:
    # get_filter_similar with rate_norm = 1: cdist(weight.view(D, -1), 'euclidean'), summed over an
    # axis, np.argsort(sum)[removed:] kept.
    torch.manual_seed(4)
    conv = nn.Conv2d(8, 16, 3)
    flat = conv.weight.detach().view(16, -1).numpy()
    theirs = cdist(flat, flat, "euclidean").sum(axis=0)
    torch.testing.assert_close(fpgm_scores(conv.weight), torch.from_numpy(theirs).double(), rtol=1e-12, atol=0)
    model = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(16, 4, 1))
    ctx = CriterionContext(model, LayerPair("0", "2"), [_images(channels=8)], keep_ratio=0.75)
    assert run_criterion("fpgm", ctx).keep.tolist() == sorted(theirs.argsort()[4:].tolist())


# ------------------------------------------------------------------------------------------------ HRank


def _rank_maps() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rank1 = torch.outer(torch.tensor([1.0, 2.0, 0.5, 1.0]), torch.tensor([1.0, 1.0, 3.0, 2.0]))
    rank2 = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [1, 1, 1, 1]])
    full = torch.eye(4) + 1.0
    return rank1, rank2, full


def _rank_model() -> nn.Module:
    # A 1x1 conv routing the input maps: channel 0 <- rank-1 map, 1 <- rank-2 map, 2 <- full-rank map,
    # 3 <- 2 x the rank-2 map (ties with channel 1), 4 <- nothing (rank 0). Then BN (identity statistics),
    # ReLU (all maps are non-negative), a 2x2 max-pool that would change the ranks, and a consumer.
    conv = nn.Conv2d(3, 5, 1)
    routing = torch.zeros(5, 3)
    routing[0, 0], routing[1, 1], routing[2, 2], routing[3, 1] = 1.0, 1.0, 1.0, 2.0
    with torch.no_grad():
        conv.weight.copy_(routing.view(5, 3, 1, 1))
        conv.bias.zero_()
    return nn.Sequential(conv, nn.BatchNorm2d(5).eval(), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(5, 2, 1))


def test_hrank_mean_rank_of_hand_made_maps_and_the_tie_rule() -> None:
    rank1, rank2, full = _rank_maps()
    first = torch.stack([rank1, rank2, full]).unsqueeze(0)
    second = torch.stack([torch.zeros(4, 4), rank2, full]).unsqueeze(0)  # channel 0 dead on image 2
    model = _rank_model()
    batches = [first, second]
    ctx = CriterionContext(model, LayerPair("0", "4"), batches, keep_ratio=0.4)
    assert hrank_scores(ctx).tolist() == [0.5, 2.0, 4.0, 2.0, 0.0]
    # literal: torch.linalg.matrix_rank of every post-ReLU map (before the pooling), mean over images
    with torch.no_grad():
        literal = torch.stack([torch.linalg.matrix_rank(torch.relu(model[1](model[0](x)))[0]) for x in batches])
    assert literal.double().mean(dim=0).tolist() == [0.5, 2.0, 4.0, 2.0, 0.0]
    # the pooled maps (the consumer's input) are 2x2 with other ranks: reading them would score otherwise
    pooled = next(iter(ctx.channel_activations()))
    assert map_ranks(pooled)[0].tolist() == [1, 1, 2, 1, 0]
    # channels 1 and 3 tie at mean rank 2: the lower index is kept
    assert run_criterion("hrank", ctx).keep.tolist() == [1, 2]
    assert run_criterion("hrank", CriterionContext(model, LayerPair("0", "4"), batches, keep_ratio=0.6)) \
        .keep.tolist() == [1, 2, 3]


def test_hrank_all_full_rank_keeps_the_first_channels() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 2, 1))
    with torch.no_grad():
        model[0].bias.fill_(5.0)  # positive everywhere: every map is a full-rank 6x6 matrix
    ctx = CriterionContext(model, LayerPair("0", "2"), [_images()], keep_ratio=0.5)
    assert hrank_scores(ctx).tolist() == [6.0] * 6
    assert run_criterion("hrank", ctx).keep.tolist() == [0, 1, 2]


def test_hrank_ranks_in_the_model_dtype_with_the_default_tolerance() -> None:
    # A rank-one input scaled per channel by a float32 1x1 conv: rank 1 up to float32 rounding.
    gen = torch.Generator().manual_seed(0)
    x = torch.outer(torch.rand(6, generator=gen) + 0.5, torch.rand(6, generator=gen) + 0.5).view(1, 1, 6, 6)
    conv = nn.Conv2d(1, 4, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.rand(4, 1, 1, 1, generator=gen) + 0.5)
    model = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(4, 2, 1))
    out = torch.relu(conv(x)).detach()
    assert torch.linalg.matrix_rank(out.double())[0].tolist() != [1] * 4  # float64 would count the rounding
    ctx = CriterionContext(model, LayerPair("0", "2"), [x], keep_ratio=0.5)
    assert hrank_scores(ctx).tolist() == [1.0] * 4


def test_hrank_and_chip_refuse_a_layer_without_relu_module() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 1), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(4, 3, 1))
    x = _images()
    for name in ("hrank", "chip"):
        assert "no ReLU module" in layer_refusal(name, model, LayerPair("0", "3"), x)
        with pytest.raises(PruningError, match=rf"criterion '{name}' cannot score layer '0'"):
            check_layers(name, model, [LayerPair("0", "3")], x)
        ctx = CriterionContext(model, LayerPair("0", "3"), [x], keep_ratio=0.5)
        with pytest.raises(PruningError, match=r"layer '0' has no ReLU module on its output"):
            run_criterion(name, ctx)


def test_hrank_refuses_a_linear_producer() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    x = torch.randn(3, 2, 2, 2)
    assert "not an H x W feature map" in layer_refusal("hrank", model, LayerPair("1", "3"), x)
    with pytest.raises(PruningError, match=r"layer '1' outputs shape \(3, 6\), not N x 6 x H x W"):
        run_criterion("hrank", CriterionContext(model, LayerPair("1", "3"), [x], keep_ratio=0.5))


# ------------------------------------------------------------------------------------------------- CHIP


def _literal_masked_norms(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' reduced_1_row_norm, in float64: one SVD per image and zeroed row."""
    a = maps.double()
    full = torch.linalg.matrix_norm(a, ord="nuc")
    masked = torch.empty(a.shape[0], a.shape[1], dtype=torch.float64)
    for n in range(a.shape[0]):
        for c in range(a.shape[1]):
            m = a[n].clone()
            m[c] = 0.0
            masked[n, c] = torch.linalg.matrix_norm(m, ord="nuc")
    return full, masked


def _chip_cases() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    cases = [
        torch.relu(torch.randn(3, 6, 20, generator=gen)),  # C < HW: C x C Gram
        torch.relu(torch.randn(3, 20, 6, generator=gen)),  # C > HW: HW x HW Gram, rank-one downdate
        torch.relu(torch.randn(2, 7, 7, generator=gen)),  # square
        # exactly rank-deficient (small integer factors: exact in float32), both sides
        (torch.randint(0, 4, (2, 10, 3), generator=gen) @ torch.randint(0, 4, (2, 3, 12), generator=gen)).float(),
        (torch.randint(0, 4, (2, 12, 2), generator=gen) @ torch.randint(0, 4, (2, 2, 9), generator=gen)).float(),
        # rank-deficient up to float32 rounding, and a zero row (a dead channel)
        torch.rand(2, 16, 5, generator=gen) @ torch.rand(2, 5, 25, generator=gen),
        torch.rand(2, 4, 1, generator=gen) @ torch.rand(2, 1, 3, generator=gen),
    ]
    for case in cases:
        case[:, 0] = 0.0
    return cases


@pytest.mark.parametrize("case", range(7))
def test_chip_fast_nuclear_norms_equal_the_literal_svd(case: int) -> None:
    maps = _chip_cases()[case]
    full, masked = masked_nuclear_norms(maps)
    lit_full, lit_masked = _literal_masked_norms(maps)
    torch.testing.assert_close(full, lit_full, rtol=1e-6, atol=0)
    torch.testing.assert_close(masked, lit_masked, rtol=1e-6, atol=0)
    # CI of the zero row is exactly 0 on the fast path
    assert channel_independence(maps)[:, 0].abs().max() <= 1e-6 * lit_full.max()


def test_chip_scores_are_the_literal_mean_ci_on_the_pre_pooling_maps() -> None:
    torch.manual_seed(6)
    conv = nn.Conv2d(2, 6, 3, padding=1)
    bn = nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(6) * 0.1)
        bn.running_var.copy_(torch.rand(6) + 0.5)
        bn.weight.copy_(torch.randn(6))
        conv.bias[4] = -100.0  # a dead channel: CI 0
    model = nn.Sequential(conv, bn, nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 3, 3)).train()
    batches = [_images(n=3, size=6, seed=1), _images(n=2, size=6, seed=2)]
    ctx = CriterionContext(model, LayerPair("0", "4"), batches, keep_ratio=0.5)
    with torch.no_grad():
        model.eval()
        maps = torch.cat([torch.relu(bn(conv(x))) for x in batches]).flatten(2)  # 5 x 6 x 36, before the pool
        model.train()
    # literal: per image, ‖A‖_* − ‖A, row c zeroed‖_* by SVD; mean over the 5 images
    full, masked = _literal_masked_norms(maps)
    literal = (full.unsqueeze(1) - masked).mean(dim=0)
    scores = chip_scores(ctx)
    torch.testing.assert_close(scores, literal, rtol=1e-6, atol=1e-6 * float(full.max()))
    assert abs(float(scores[4])) <= 1e-9 * float(full.max())
    keep = run_criterion("chip", ctx).keep.tolist()
    assert keep == sorted(torch.topk(literal, 3).indices.tolist())
    assert model.training  # left as it was


# -------------------------------------------------------------------------------------------- BN scale


def test_bn_scale_keeps_largest_absolute_gamma() -> None:
    gamma = torch.tensor([0.1, -3.0, 2.0, -0.5, 1.0, 0.0])
    model = nn.Sequential(nn.Conv2d(2, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 2, 3))
    model[1].weight.data.copy_(gamma)
    model[1].bias.data.copy_(torch.tensor([9.0, -9.0, 0.0, 5.0, 0.0, 7.0]))  # β is not looked at
    assert bn_scale_scores(model[1]).tolist() == gamma.abs().double().tolist()
    ctx = CriterionContext(model, LayerPair("0", "3"), [_images()], keep_ratio=0.5)
    assert run_criterion("bn_scale", ctx).keep.tolist() == [1, 2, 4]  # |γ| 3, 2, 1
    assert sorted(torch.topk(gamma, 3).indices.tolist()) == [0, 2, 4]  # signed γ would keep another set


def test_bn_scale_reads_the_batchnorm_run_on_the_producer_output() -> None:
    from torchvision.models.resnet import Bottleneck

    torch.manual_seed(2)
    block = Bottleneck(16, 4).eval()
    for bn in (block.bn1, block.bn2, block.bn3):
        bn.weight.data.copy_(torch.randn(bn.num_features))
    ctx = CriterionContext(block, LayerPair("conv2", "conv3"), [_images(n=2, channels=16)], keep_ratio=0.5)
    expected = sorted(torch.topk(block.bn2.weight.detach().abs(), 2).indices.tolist())
    assert run_criterion("bn_scale", ctx).keep.tolist() == expected
    assert expected != sorted(torch.topk(block.bn1.weight.detach().abs(), 2).indices.tolist())


def test_bn_scale_names_a_layer_without_batchnorm() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3))
    x = _images()
    pair = LayerPair("0", "2")
    reason = layer_refusal("bn_scale", model, pair, x)
    assert reason is not None and "no BatchNorm on its output" in reason and "'1'" in reason
    with pytest.raises(PruningError, match=r"criterion 'bn_scale' cannot score layer '0': no BatchNorm"):
        check_layers("bn_scale", model, [pair], x)
    with pytest.raises(PruningError, match=r"criterion 'bn_scale' cannot score layer '0': no BatchNorm"):
        run_criterion("bn_scale", CriterionContext(model, pair, [x], keep_ratio=0.5))


def test_bn_scale_names_a_layer_with_a_non_affine_batchnorm() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4, affine=False), nn.ReLU(), nn.Conv2d(4, 3, 3))
    x = _images()
    pair = LayerPair("0", "3")
    assert "affine=False" in layer_refusal("bn_scale", model, pair, x)
    with pytest.raises(PruningError, match=r"criterion 'bn_scale' cannot score layer '0': .*affine=False"):
        run_criterion("bn_scale", CriterionContext(model, pair, [x], keep_ratio=0.5))
