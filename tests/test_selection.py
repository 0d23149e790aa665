"""ThiNet channel selection: Gram-based greedy == literal Algorithm 1, least squares, bad input."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from thinet.selection import (algorithm1_literal, greedy_remove, least_squares_scale, select_channels,
                              select_from_gram)
from thinet.types import PruningError, num_kept


def _random_x_hat(m: int, c: int, seed: int, correlated: bool, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if not correlated:
        return torch.randn(m, c, generator=gen, dtype=dtype)
    rank = max(1, c // 4)
    basis = torch.randn(m, rank, generator=gen, dtype=dtype)
    mix = torch.randn(rank, c, generator=gen, dtype=dtype)
    scales = torch.rand(c, generator=gen, dtype=dtype) * 2 + 0.1
    return (basis @ mix + 0.3 * torch.randn(m, c, generator=gen, dtype=dtype)) * scales


@pytest.mark.parametrize("c,m,r,correlated,seed", [
    (8, 8, 0.5, False, 0),
    (10, 40, 0.7, True, 1),
    (16, 100, 0.3, False, 2),
    (32, 200, 0.5, True, 3),
    (33, 150, 0.1, True, 4),
    (24, 60, 0.9, False, 5),
])
def test_fast_selection_matches_literal_algorithm1(c, m, r, correlated, seed):
    x_hat = _random_x_hat(m, c, seed, correlated)
    literal = algorithm1_literal(x_hat, r)
    sel = select_channels(x_hat, r, least_squares=False, layer="conv")
    assert torch.equal(sel.removed, literal)
    assert sel.keep.numel() == num_kept(c, r)
    assert torch.equal(torch.sort(torch.cat([sel.keep, sel.removed])).values, torch.arange(c))


def test_float32_input_matches_literal():
    x_hat = _random_x_hat(300, 20, 7, True, dtype=torch.float32)
    assert torch.equal(select_channels(x_hat, 0.5).removed, algorithm1_literal(x_hat, 0.5))


def test_exact_duplicate_channels_break_ties_by_lowest_index():
    base = _random_x_hat(50, 6, 8, False)
    x_hat = torch.cat([base, base[:, :3]], dim=1)  # channels 6,7,8 duplicate 0,1,2
    literal = algorithm1_literal(x_hat, 0.5)
    assert torch.equal(select_channels(x_hat, 0.5, least_squares=False).removed, literal)


def test_greedy_order_is_literal_order_on_hand_example():
    # Eq. 6 values: first pick the smallest norm (channel 1); then channel 2 cancels channel 1.
    x_hat = torch.tensor([[1.0, 0.5, -0.5, 3.0], [1.0, 0.5, -0.5, -3.0], [1.0, 0.5, -0.5, 3.0],
                          [1.0, 0.5, -0.5, 3.0]], dtype=torch.float64)
    order = greedy_remove(x_hat.T @ x_hat, 2)
    assert order.tolist() == [1, 2]


def test_least_squares_matches_lstsq_on_kept_columns():
    x_hat = _random_x_hat(120, 12, 9, True)
    sel = select_channels(x_hat, 0.5, layer="conv2")
    y_hat = x_hat.sum(1, keepdim=True)
    expected = torch.linalg.lstsq(x_hat[:, sel.keep], y_hat).solution.flatten()
    assert sel.scale.dtype == torch.float32
    assert torch.allclose(sel.scale.double(), expected, rtol=1e-5, atol=1e-6)
    # Rescaling must not make the reconstruction worse than plain pruning.
    err_scaled = ((y_hat.flatten() - x_hat[:, sel.keep] @ sel.scale.double()) ** 2).sum()
    err_plain = ((y_hat.flatten() - x_hat[:, sel.keep].sum(1)) ** 2).sum()
    assert err_scaled < err_plain


def test_without_least_squares_scale_is_ones():
    sel = select_channels(_random_x_hat(50, 10, 10, False), 0.4, least_squares=False)
    assert torch.equal(sel.scale, torch.ones(4))


def test_keep_all_gives_unit_scale():
    sel = select_channels(_random_x_hat(30, 5, 11, False), 1.0)
    assert sel.removed.numel() == 0 and torch.equal(sel.scale, torch.ones(5))


def test_singular_system_warns_with_layer_and_stays_finite():
    base = _random_x_hat(40, 4, 12, False)
    x_hat = torch.cat([base, base[:, :2]], dim=1)  # kept columns will be collinear
    gram = x_hat.T @ x_hat
    with pytest.warns(RuntimeWarning, match="features.7"):
        scale = least_squares_scale(gram, torch.tensor([0, 4, 1]), layer="features.7")
    assert torch.isfinite(scale).all()
    recon = x_hat[:, [0, 4, 1]] @ scale.double()
    best = torch.linalg.lstsq(x_hat[:, [0, 4, 1]], x_hat.sum(1, keepdim=True)).solution.flatten()
    best_err = ((x_hat.sum(1) - x_hat[:, [0, 4, 1]] @ best) ** 2).sum()
    assert ((x_hat.sum(1) - recon) ** 2).sum() <= best_err * (1 + 1e-6) + 1e-6


def test_well_conditioned_system_does_not_warn():
    x_hat = _random_x_hat(80, 8, 13, False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select_channels(x_hat, 0.5)


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5, math.nan, "half"])
def test_bad_keep_ratio_names_layer_and_value(ratio):
    with pytest.raises(PruningError, match=r"conv3_1.*keep_ratio"):
        select_channels(torch.randn(20, 4), ratio, layer="conv3_1")
    with pytest.raises(PruningError, match="conv3_1"):
        select_from_gram(torch.eye(4), ratio, layer="conv3_1")


def test_bad_x_hat_shapes_and_values():
    with pytest.raises(PruningError, match=r"layer 'fc6'.*2-D"):
        select_channels(torch.randn(10, 4, 2), 0.5, layer="fc6")
    with pytest.raises(PruningError, match=r"'fc6'.*3 samples for 5 channels"):
        select_channels(torch.randn(3, 5), 0.5, layer="fc6")
    bad = torch.randn(10, 4)
    bad[2, 1] = math.inf
    with pytest.raises(PruningError, match=r"'fc6'.*NaN or inf"):
        select_channels(bad, 0.5, layer="fc6")
    bad[2, 1] = math.nan
    with pytest.raises(PruningError, match=r"'fc6'.*NaN or inf"):
        select_channels(bad, 0.5, layer="fc6")


def test_bad_gram():
    gram = torch.eye(4)
    gram[0, 3] = math.nan
    with pytest.raises(PruningError, match=r"'conv5'.*NaN or inf"):
        select_from_gram(gram, 0.5, layer="conv5")
    with pytest.raises(PruningError, match=r"'conv5'.*square"):
        select_from_gram(torch.ones(3, 4), 0.5, layer="conv5")


def test_select_from_gram_equals_select_channels():
    x_hat = _random_x_hat(90, 14, 14, True)
    a = select_channels(x_hat, 0.5)
    b = select_from_gram(x_hat.T @ x_hat, 0.5)
    assert torch.equal(a.keep, b.keep) and torch.allclose(a.scale, b.scale)


def test_selection_bench_command_runs_and_agrees(capsys):
    from thinet.cli import main
    assert main(["bench", "selection", "--samples", "300", "--channels", "12", "--repeats", "1",
                 "--device", "cpu", "--literal-float64"]) == 0
    out = capsys.readouterr().out
    assert "same_channels: True" in out and "ratio_select_over_gram:" in out
    assert "dtype: torch.float32" in out and "ratio_literal_float32_over_select:" in out
    assert "ratio_literal_float64_over_select:" in out and "thinet_forward_s:" in out


def test_selection_bench_times_the_literal_algorithm_in_the_samples_dtype(monkeypatch):
    import thinet.bench._selection as bench

    dtypes = []
    real = bench.algorithm1_literal
    monkeypatch.setattr(bench, "algorithm1_literal", lambda x, r, **kw: dtypes.append(kw.get("dtype")) or real(x, r, **kw))
    result = bench.run_selection_bench(m=200, channels=8, repeats=1)
    assert dtypes == [torch.float32] and result["same_channels_float32"]


def test_bench_rejects_bad_sizes(capsys):
    from thinet.cli import main
    assert main(["bench", "selection", "--samples", "0", "--no-literal"]) == 2
    assert "--samples" in capsys.readouterr().err
