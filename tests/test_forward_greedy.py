"""`thinet_forward` (TPAMI 2019's forward greedy) from the Gram matrix against a literal version on X̂."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from thinet.criteria import CriterionContext, run_criterion
from thinet.selection import (
    forward_select_from_gram,
    greedy_add,
    select_channels_forward,
    select_from_gram,
)
from thinet.types import LayerPair, num_kept


def forward_literal(x_hat: torch.Tensor, keep_ratio: float) -> tuple[list[int], torch.Tensor]:
    """Word for word, in float64 on X̂: project the residual of ŷ on every candidate, add the one that
    explains most, refit ŵ for all chosen channels by least squares, update the residual."""
    x = x_hat.double()
    y = x.sum(dim=1)
    norms = (x * x).sum(dim=0)
    chosen: list[int] = []
    residual = y.clone()
    for _ in range(num_kept(x.shape[1], keep_ratio)):
        gain = torch.where(norms > 0, (x.T @ residual) ** 2 / norms, torch.zeros_like(norms))
        gain[chosen] = -float("inf")
        chosen.append(int(torch.argmax(gain)))
        w = torch.linalg.lstsq(x[:, chosen], y.unsqueeze(1), driver="gelsy").solution
        residual = y - (x[:, chosen] @ w).squeeze(1)
    keep = sorted(chosen)
    w = torch.linalg.lstsq(x[:, keep], y.unsqueeze(1), driver="gelsy").solution.squeeze(1)
    return chosen, w


def _samples(m: int, c: int, seed: int) -> torch.Tensor:
    # Correlated channels of uneven scale, like a layer's sampled contributions.
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m, max(1, c // 4), generator=gen) @ torch.randn(max(1, c // 4), c, generator=gen)
    return ((x + 0.5 * torch.randn(m, c, generator=gen)) * (torch.rand(c, generator=gen) + 0.2)).float()


@pytest.mark.parametrize("m, c, r", [(40, 8, 0.5), (200, 16, 0.3), (300, 32, 0.7), (64, 64, 0.5), (500, 24, 0.1)])
def test_gram_version_agrees_with_the_literal_one(m: int, c: int, r: float) -> None:
    x_hat = _samples(m, c, seed=m + c)
    chosen, w = forward_literal(x_hat, r)
    gram = x_hat.double().T @ x_hat.double()
    assert greedy_add(gram, num_kept(c, r)).tolist() == chosen
    torch.testing.assert_close(forward_select_from_gram(gram, r).scale.double(), w, rtol=1e-5, atol=1e-6)
    # From the float32 samples (the criterion's path) the Gram matrix is float32: same channels.
    assert select_channels_forward(x_hat, r, layer="demo").keep.tolist() == sorted(chosen)


def test_it_is_not_algorithm1_in_disguise() -> None:
    # On these samples the two greedy directions keep different channels, so the test above tells them apart.
    x_hat = _samples(300, 32, seed=332)
    gram = x_hat.double().T @ x_hat.double()
    assert forward_select_from_gram(gram, 0.7).keep.tolist() != select_from_gram(gram, 0.7).keep.tolist()


def test_duplicates_zero_columns_and_rank_deficiency_are_deterministic() -> None:
    base = _samples(50, 4, seed=1).double()
    x_hat = torch.cat([base, base, torch.zeros(50, 2)], dim=1)  # channels 4..7 copy 0..3; 8, 9 are zero
    gram = x_hat.T @ x_hat
    order = greedy_add(gram, 8).tolist()
    # The four independent channels come first, then (nothing left to explain) ties in index order;
    # of each duplicate pair the lower index wins.
    assert sorted(order[:4]) == [0, 1, 2, 3]
    assert order[4:] == [4, 5, 6, 7]
    assert greedy_add(gram[[*range(4, 8), *range(4), 8, 9]][:, [*range(4, 8), *range(4), 8, 9]], 4).tolist() \
        == order[:4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # singular G_SS: least squares adds its ridge
        sel = forward_select_from_gram(gram, 0.8)
    assert sel.keep.tolist() == list(range(8)) and bool(torch.isfinite(sel.scale).all())


def test_criterion_runs_on_the_collected_samples() -> None:
    from thinet.sampling import collect_samples

    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1)).eval()
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(3, 2, 6, 6, generator=gen), torch.tensor([0, 1, 2])) for _ in range(2)]
    pair = LayerPair("0", "2")
    ctx = CriterionContext(model, pair, batches, keep_ratio=0.5, seed=7, samples_per_image=4)
    x_hat = collect_samples(model, pair, batches, samples_per_image=4, seed=7)
    chosen, w = forward_literal(x_hat, 0.5)
    sel = run_criterion("thinet_forward", ctx)
    assert sel.keep.tolist() == sorted(chosen)
    torch.testing.assert_close(sel.scale.double(), w, rtol=1e-4, atol=1e-5)
