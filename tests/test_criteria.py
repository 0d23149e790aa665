"""Each criterion keeps the channels its definition says it keeps, on hand-made layers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.apoz import apoz_scores
from baselines.taylor import taylor_scores
from thinet.criteria import CriterionContext, run_criterion
from thinet.types import LayerPair, PruningError


def _images(n: int = 6, size: int = 6, channels: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def _labelled(n: int = 6, classes: int = 3, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed + 100)
    x = _images(n, seed=seed)
    y = torch.randint(0, classes, (n,), generator=gen)
    return [(x[: n // 2], y[: n // 2]), (x[n // 2:], y[n // 2:])]


def test_weight_sum_keeps_largest_l1_filters() -> None:
    conv = nn.Conv2d(2, 5, 1, bias=False)
    # l1 norms 1, 5, 3, 4, 2; signs must not matter
    conv.weight.data = torch.tensor([[1.0, 0.0], [-2.0, 3.0], [1.5, -1.5], [-4.0, 0.0], [1.0, 1.0]]).view(5, 2, 1, 1)
    model = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(5, 3, 1))
    ctx = CriterionContext(model, LayerPair("0", "2"), [_images()], keep_ratio=0.4)
    assert run_criterion("weight_sum", ctx).keep.tolist() == [1, 3]


def test_weight_sum_breaks_ties_by_channel_index() -> None:
    conv = nn.Conv2d(1, 4, 1, bias=False)
    conv.weight.data = torch.tensor([1.0, 2.0, 2.0, 2.0]).view(4, 1, 1, 1)
    model = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(4, 3, 1))
    ctx = CriterionContext(model, LayerPair("0", "2"), [_images(channels=1)], keep_ratio=0.5)
    assert run_criterion("weight_sum", ctx).keep.tolist() == [1, 2]


def test_apoz_prunes_channels_dead_by_construction() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 6, 3, padding=1)
    with torch.no_grad():
        conv.bias[[1, 4]] = -100.0  # these two never pass the ReLU
        conv.bias[[0, 5]] = -0.5  # sparse, but not dead
        conv.bias[[2, 3]] = 100.0  # never zero
    model = nn.Sequential(conv, nn.BatchNorm2d(6).eval(), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 3, 3))
    model[1].weight.data.fill_(1.0)
    ctx = CriterionContext(model, LayerPair("0", "4"), [_images(), _images(seed=1)], keep_ratio=0.67)
    scores = apoz_scores(ctx)
    assert scores[[1, 4]].tolist() == [1.0, 1.0]
    assert scores[[2, 3]].tolist() == [0.0, 0.0]
    assert 0.0 < scores[0] < 1.0 and 0.0 < scores[5] < 1.0
    assert run_criterion("apoz", ctx).removed.tolist() == [1, 4]


def test_apoz_counts_zeros_before_the_pooling() -> None:
    # Channel 0 = x, channel 1 = -x on one 2x2 image [[1, -1], [-1, -1]]: after the ReLU channel 0 has
    # 3 zeros of 4, channel 1 one; after the 2x2 max-pool neither has any (the consumer's input).
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.zero_()
    model = nn.Sequential(conv, nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Conv2d(2, 3, 1))
    x = torch.tensor([[1.0, -1.0], [-1.0, -1.0]]).view(1, 1, 2, 2)
    ctx = CriterionContext(model, LayerPair("0", "3"), [x], keep_ratio=0.5)
    assert [float((a == 0).float().mean()) for a in next(iter(ctx.channel_activations()))[0]] == [0.0, 0.0]
    assert apoz_scores(ctx).tolist() == [0.75, 0.25]
    assert run_criterion("apoz", ctx).keep.tolist() == [1]


def test_apoz_follows_the_producer_through_its_batchnorm_in_a_bottleneck() -> None:
    from torchvision.models.resnet import Bottleneck

    block = Bottleneck(8, 2).eval()  # conv1 -> bn1 -> relu (one ReLU module shared by three calls)
    x = _images(n=2, size=5, channels=8)
    ctx = CriterionContext(block, LayerPair("conv1", "conv2"), [x], keep_ratio=0.5)
    with torch.no_grad():
        expected = (torch.relu(block.bn1(block.conv1(x))) == 0).double().mean(dim=(0, 2, 3))
    torch.testing.assert_close(apoz_scores(ctx), expected)


def test_apoz_names_a_layer_without_a_relu_module() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 1), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(4, 3, 1))
    ctx = CriterionContext(model, LayerPair("0", "3"), [_images()], keep_ratio=0.5)
    with pytest.raises(PruningError, match=r"layer '0' has no ReLU module on its output: after '0' runs '1' \(MaxPool2d\)"):
        run_criterion("apoz", ctx)
    functional = CriterionContext(GapNet(), LayerPair("conv", "fc"), [_images()], keep_ratio=0.4)
    with pytest.raises(PruningError, match="layer 'conv' has no ReLU module on its output"):
        run_criterion("apoz", functional)


class GapNet(nn.Module):
    """conv -> ReLU -> global average pool -> Linear: dL/da has a closed form."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(2, 5, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


def test_taylor_equals_hand_computation() -> None:
    model = GapNet()
    batches = _labelled()
    ctx = CriterionContext(model, LayerPair("conv", "fc"), batches, keep_ratio=0.4)
    with torch.no_grad():
        x = torch.cat([b[0] for b in batches])
        y = torch.cat([b[1] for b in batches])
        a = torch.relu(model.conv(x)).mean(dim=(2, 3))  # the fc's input, N x 5
        # d(cross-entropy)/d logits = softmax - onehot; back through fc: times W
        grad = (torch.softmax(model.fc(a), dim=1) - F.one_hot(y, 3).float()) @ model.fc.weight
        hand = (a * grad).abs().mean(dim=0)  # one position per example: |a·dL/da| per example, then mean
        hand = hand / hand.norm()
    got = taylor_scores(ctx)
    torch.testing.assert_close(got.float(), hand, rtol=1e-5, atol=1e-6)
    assert run_criterion("taylor", ctx).keep.tolist() == sorted(torch.topk(hand, 2).indices.tolist())


def test_taylor_takes_the_absolute_value_per_example_before_averaging() -> None:
    # conv (identity) -> flatten -> fc: dL/da = fc.weight^T (softmax - onehot), one position per example.
    # Channel 0's products are large with opposite signs over the two examples, channel 1's moderate and
    # of one sign: |mean over examples| (the old order) keeps channel 1, mean of |.| (Eq. 8) keeps channel 0.
    conv = nn.Conv2d(2, 2, 1)
    fc = nn.Linear(2, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        conv.bias.zero_()
        fc.weight.copy_(torch.tensor([[1.0, 3.0], [-1.0, -3.0]]))
        fc.bias.zero_()
    model = nn.Sequential(conv, nn.Flatten(), fc)
    x = torch.tensor([[4.0, 0.5], [4.0, -1.5]]).view(2, 2, 1, 1)
    y = torch.tensor([1, 0])
    with torch.no_grad():
        a = x.flatten(1)
        products = a * ((torch.softmax(fc(a), dim=1) - F.one_hot(y, 2).float()) @ fc.weight)
    per_example_abs = products.abs().mean(dim=0)
    abs_of_mean = products.mean(dim=0).abs()
    assert int(per_example_abs.argmax()) == 0 and int(abs_of_mean.argmax()) == 1  # the case tells them apart
    ctx = CriterionContext(model, LayerPair("0", "2"), [(x, y)], keep_ratio=0.5)
    torch.testing.assert_close(taylor_scores(ctx), (per_example_abs / per_example_abs.norm()).double())
    assert run_criterion("taylor", ctx).keep.tolist() == [0]


def test_taylor_does_not_depend_on_batching_and_leaves_no_gradients() -> None:
    model = GapNet().train()
    batches = _labelled(n=6)
    whole = [(torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))]
    split = taylor_scores(CriterionContext(model, LayerPair("conv", "fc"), batches, keep_ratio=0.4))
    joined = taylor_scores(CriterionContext(model, LayerPair("conv", "fc"), whole, keep_ratio=0.4))
    torch.testing.assert_close(split, joined)
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def test_taylor_needs_labels() -> None:
    ctx = CriterionContext(GapNet(), LayerPair("conv", "fc"), [_images()], keep_ratio=0.4)
    with pytest.raises(PruningError, match="taylor on layer 'conv' needs labelled"):
        run_criterion("taylor", ctx)


def test_random_repeats_within_a_seed_and_differs_between_seeds() -> None:
    model = nn.Sequential(nn.Conv2d(2, 32, 1), nn.ReLU(), nn.Conv2d(32, 3, 1))

    def keep(seed: int) -> list[int]:
        ctx = CriterionContext(model, LayerPair("0", "2"), [_images()], keep_ratio=0.5, seed=seed)
        return run_criterion("random", ctx).keep.tolist()

    assert keep(0) == keep(0)
    assert len({tuple(keep(s)) for s in range(4)}) == 4
    # uniform: over many seeds every channel is kept about half the time
    counts = torch.zeros(32)
    for s in range(200):
        counts[keep(s)] += 1
    assert counts.min() > 60 and counts.max() < 140


@pytest.mark.parametrize("name, least_squares", [("thinet", True), ("thinet_nols", False)])
def test_thinet_picks_algorithm1_channels_on_the_collected_samples(name: str, least_squares: bool) -> None:
    from thinet.sampling import collect_samples
    from thinet.selection import algorithm1_literal, select_channels

    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1)).eval()
    batches = _labelled()
    pair = LayerPair("0", "2")
    ctx = CriterionContext(model, pair, batches, keep_ratio=0.5, seed=7, samples_per_image=4)
    x_hat = collect_samples(model, pair, batches, samples_per_image=4, seed=7)
    assert x_hat.shape == (6 * 4, 8)  # m = images x samples_per_image rows of C channels
    sel = run_criterion(name, ctx)
    assert sel.removed.tolist() == sorted(algorithm1_literal(x_hat, 0.5).tolist())
    expected = select_channels(x_hat, 0.5, least_squares=least_squares, layer="0")
    torch.testing.assert_close(sel.scale, expected.scale.float())
    if not least_squares:
        assert sel.scale.tolist() == [1.0] * 4
    else:
        assert not torch.allclose(sel.scale, torch.ones(4))
