"""Channel Pruning (He, Zhang, Sun, ICCV 2017, "Channel Pruning for Accelerating Very Deep Neural Networks").

Registered as `cp`. On the consumer (layer i+1) at ThiNet's sampled positions (the same selection images,
the same seed, the same positions: `thinet.sampling.collect_patches`), with X the consumer's input windows
(m × C × taps) and Y its output minus its bias for *all* its D filters (m × D):

1. **Channel selection, LASSO** (the paper's first step; the authors' `lib/decompose.py:dictionary`). The per-channel
   contributions Z_c = X_c·W_cᵀ, stacked over samples and filters to an M × C matrix (M = m·D), and
   y = Y stacked the same way (y = Σ_c Z_c); minimise 1/(2M)‖y − ȳ − (Z − Z̄)β‖² + λ‖β‖₁ (sklearn's
   `Lasso` with its intercept, which the authors call). We solve it ourselves in float64 by cyclic
   coordinate descent on the Gram form, G = (Z − Z̄)ᵀ(Z − Z̄)/M and b = (Z − Z̄)ᵀ(y − ȳ)/M = G·1, never
   forming Z (`contribution_gram`; `lasso_cd`). λ is bisected (`lasso_select`) between 0 and
   λ_max = max_j |b_j| (every β_j zero) until exactly n_keep = `ctx.n_keep` coefficients are non-zero.
   Where the LASSO path skips n_keep (two channels enter at the same λ: no λ gives n_keep within
   `BISECTION_STEPS` halvings, down to an interval of `BISECTION_RTOL`·λ_max), the n_keep largest |β| at
   the nearest λ with more non-zero are kept (ties: the lower index). Should no tested λ give more than
   n_keep (fewer distinct live channels than n_keep: duplicated or all-zero contributions), the non-zero
   ones are kept and the rest filled by contribution energy G_jj, then index.
2. **Reconstruction, least squares** (the paper's second step; the authors' `fc_kernel`): the consumer's whole weight on
   the kept channels refit on all samples, Y on the kept patches (m × n_keep·taps), by
   `torch.linalg.lstsq` (driver gelsd: a rank-deficient system, such as a kept channel that is always
   zero, gets the minimum-norm answer). Returned as `Selection.consumer_weight` (D × n_keep × kh × kw,
   or D × n_keep·S for a Linear reading S columns per channel) with `scale` all ones; the surgery writes
   it in (`thinet.surgery.write_consumer_refit`). An intercept is fitted only where the consumer has a
   bias, and *added* to the old bias (`consumer_bias`); a consumer without bias (a conv before a
   BatchNorm) is refit without intercept. With fewer samples than unknowns (n_keep·taps, + 1 with a bias;
   a Linear consumer has one distinct input per image, so its samples are the images) the system is
   underdetermined and gelsd gives its minimum-norm solution, as the authors' sklearn `LinearRegression`
   does: it reproduces the sampled outputs exactly and may generalise poorly (the CI smoke config's 80
   samples; the benchmark's 1,000 suffice for n_keep·9 ≤ 999).

Differences from the authors' code, on purpose:
  * The LASSO runs on all sampled positions; the authors subsample min(400, N/20) of them for speed.
  * Coordinate descent in a fixed cyclic order (deterministic: the same seed keeps the same channels);
    they use sklearn's `selection='random'` with an unseeded generator.
  * Bisection to exactly n_keep non-zero (the engine keeps exactly int(C·r) channels); they accept
    n_keep … 1.1·n_keep non-zero and keep that many, starting the upper bound at the previous layer's λ
    (doubled until fewer than n_keep are non-zero) rather than at λ_max.
  * Their stopping rule is sklearn's (tol = 1e-4, max_iter = 1000); ours is
    `LASSO_GAP_RTOL` and `LASSO_MAX_SWEEPS` below, with a small rounding slack on the threshold
    (`ZERO_SLACK`) so that an exactly duplicated channel does not enter by rounding.
  * Their refit replaces the bias by the intercept of a fit to (output − bias), which drops the original
    bias; we add the intercept to it (the fit is to output − bias, so that is the reconstruction).
  * Y is the current (partly pruned) model's own output, as for ThiNet; their whole-model code takes Y
    from features extracted from the unpruned model (correcting accumulated error), X from the pruned one.
  * Keeping every channel (r = 1) returns the layer unchanged: with Y from the same model the refit
    would only reproduce the weight on the samples.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from thinet.criteria import CriterionContext, register_criterion
from thinet.types import PruningError, Selection

# Coordinate descent stops when the duality gap is at most this times ‖y − ȳ‖²/M (sklearn: 1e-4).
LASSO_GAP_RTOL = 1e-8
# Cap on coordinate-descent sweeps (full or active-set) per λ (sklearn's max_iter: 1000).
LASSO_MAX_SWEEPS = 1000
# Bisection gives up (the path skips n_keep) once its λ interval is this narrow, relative to λ_max ...
BISECTION_RTOL = 1e-10
# ... or after this many halvings.
BISECTION_STEPS = 60
# |ρ_j| ≤ λ + ZERO_SLACK·λ_max leaves β_j at zero: a channel whose contribution duplicates a chosen one
# sits exactly at |ρ_j| = λ, and rounding alone must not let it in.
ZERO_SLACK = 1e-12
# Elements of one temporary when the Gram matrix is formed filter by filter.
_CHUNK_ELEMENTS = 1 << 24


def contribution_gram(patches: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(G, b, ‖y − ȳ‖²/M) of the LASSO on the per-channel contributions, in float64, without forming Z.

    `patches` is m × C × taps, `weight` the consumer's D × C·taps (or D × C × kh × kw). Row (i, d) of Z
    is Z[(i,d), c] = Σ_k W[d,c,k]·X[i,c,k], M = m·D, y = Σ_c Z_c. G = (Z − Z̄)ᵀ(Z − Z̄)/M (columns
    centred for the intercept), b = (Z − Z̄)ᵀ(y − ȳ)/M = G·1.

    >>> x, w = torch.randn(50, 3, 4, dtype=torch.float64), torch.randn(5, 3, 4, dtype=torch.float64)
    >>> g, b, yy = contribution_gram(x, w)
    >>> z = torch.einsum("mct,dct->mdc", x, w).reshape(-1, 3)
    >>> zc = z - z.mean(0)
    >>> torch.allclose(g, zc.T @ zc / 250), torch.allclose(b, zc.T @ (zc.sum(1)) / 250)
    (True, True)
    """
    from thinet.sampling import MAX_COV_ELEMENTS, gram_from_cov

    x = patches.detach().to("cpu", torch.float64)
    m, channels, taps = x.shape
    w = weight.detach().to("cpu", torch.float64).reshape(weight.shape[0], channels, taps)
    filters, width = w.shape[0], channels * taps
    rows = m * filters
    # Through the patch covariance (width² memory) or filter by filter, whichever costs fewer operations.
    by_cov = width * width * (m + filters)
    by_filters = rows * (width + channels * channels)
    if width * width <= MAX_COV_ELEMENTS and by_cov <= by_filters:
        flat = x.reshape(m, width)
        raw = gram_from_cov(w.reshape(filters, width), flat.T @ flat, channels, taps)
    else:
        raw = torch.zeros(channels, channels, dtype=torch.float64)
        step = max(1, _CHUNK_ELEMENTS // max(1, m * width))
        for d0 in range(0, filters, step):
            z = torch.einsum("mct,dct->mdc", x, w[d0:d0 + step]).reshape(-1, channels)
            raw += z.T @ z
    sums = (x.sum(0) * w.sum(0)).sum(1)  # Σ over the M rows of Z_c
    gram = (raw - torch.outer(sums, sums) / rows) / rows
    gram = (gram + gram.T) / 2
    corr = gram.sum(1)
    return gram, corr, float(corr.sum())


def _duality_gap(gram: np.ndarray, corr: np.ndarray, yy: float, beta: np.ndarray, lam: float) -> float:
    """sklearn's Lasso duality gap, divided by M, in the Gram form."""
    q = gram @ beta
    fitted = float(corr @ beta)
    r2 = max(yy - 2.0 * fitted + float(beta @ q), 0.0)  # ‖r‖²/M
    dual_norm = float(np.abs(corr - q).max()) if corr.size else 0.0  # ‖Zᵀr‖∞/M
    const = lam / dual_norm if dual_norm > lam else 1.0
    return 0.5 * r2 * (1.0 + const * const) + lam * float(np.abs(beta).sum()) - const * (yy - fitted)


def lasso_cd(gram, corr, yy: float, lam: float, *, start=None, tol: float = LASSO_GAP_RTOL,
             max_sweeps: int = LASSO_MAX_SWEEPS, slack: float = 0.0) -> tuple[np.ndarray, dict]:
    """Minimise ½βᵀGβ − bᵀβ + λ‖β‖₁ (= 1/(2M)‖y_c − Z_cβ‖² + λ‖β‖₁ up to a constant) by cyclic
    coordinate descent, from `start` (zeros by default); returns (β, {"sweeps", "gap", "converged"}).

    A full sweep over every channel alternates with sweeps over the non-zero ones only (until their largest
    step, G_jj·Δβ_j², is below 1% of the tolerance); it stops when the duality gap after a full sweep is at
    most `tol`·`yy`, or after `max_sweeps` sweeps. β_j stays zero while |ρ_j| ≤ λ + `slack`; a channel
    with G_jj = 0 stays zero.

    >>> beta, info = lasso_cd(np.eye(2), np.array([3.0, 0.5]), 9.25, 1.0)
    >>> beta.tolist(), info["converged"]
    ([2.0, 0.0], True)
    """
    g = np.ascontiguousarray(gram, dtype=np.float64)
    b = np.asarray(corr, dtype=np.float64)
    diag = np.diag(g).tolist()
    bl = b.tolist()
    beta = np.zeros(b.size) if start is None else np.array(start, dtype=np.float64)
    if not yy > 0:  # y is constant: every β_j = 0 fits it
        return np.zeros(b.size), {"sweeps": 0, "gap": 0.0, "converged": True}
    live = [j for j in range(b.size) if diag[j] > 0]
    beta[[j for j in range(b.size) if diag[j] <= 0]] = 0.0
    threshold = lam + slack
    target = tol * yy

    def sweep(coords: list[int], q: np.ndarray) -> float:
        biggest = 0.0
        for j in coords:
            dj, old = diag[j], beta[j]
            rho = bl[j] - q[j] + dj * old
            new = (rho - lam) / dj if rho > threshold else (rho + lam) / dj if rho < -threshold else 0.0
            if new != old:
                delta = new - old
                q += delta * g[j]
                beta[j] = new
                biggest = max(biggest, dj * delta * delta)
        return biggest

    sweeps, gap = 0, float("inf")
    while sweeps < max_sweeps:
        q = g @ beta  # recomputed at each full sweep, so rounding does not drift
        sweep(live, q)
        sweeps += 1
        gap = _duality_gap(g, b, yy, beta, lam)
        if gap <= target:
            break
        active = [j for j in live if beta[j] != 0.0]
        while active and sweeps < max_sweeps:
            sweeps += 1
            if sweep(active, q) <= 0.01 * target:
                break
    return beta, {"sweeps": sweeps, "gap": gap, "converged": gap <= target}


def _largest(beta: np.ndarray, energy: np.ndarray, n_keep: int) -> list[int]:
    """The n_keep channels of largest |β|, then largest energy, then lowest index."""
    order = sorted(range(beta.size), key=lambda j: (-abs(beta[j]), -energy[j], j))
    return sorted(order[:n_keep])


def lasso_select(gram, corr, yy: float, n_keep: int, *, tol: float = LASSO_GAP_RTOL,
                 max_sweeps: int = LASSO_MAX_SWEEPS) -> tuple[torch.Tensor, dict]:
    """The n_keep channels the LASSO keeps: λ bisected in (0, λ_max] until exactly n_keep β_j are non-zero.

    Returns (sorted LongTensor, {"lam", "hit", "steps", "sweeps", "beta"}): `hit` is False when the path
    skips n_keep and the n_keep largest |β| at the nearest λ with more non-zero were taken (or, with no
    such λ, the non-zero ones filled by energy G_jj).

    >>> keep, info = lasso_select(np.eye(4), np.array([4.0, 3.0, 2.0, 1.0]), 30.0, 2)
    >>> keep.tolist(), info["hit"]
    ([0, 1], True)
    """
    g = np.asarray(gram, dtype=np.float64)
    b = np.asarray(corr, dtype=np.float64)
    channels = b.size
    energy = np.diag(g)
    if n_keep >= channels:
        return torch.arange(channels), {"lam": 0.0, "hit": True, "steps": 0, "sweeps": 0, "beta": None}
    lam_max = float(np.abs(b).max()) if channels else 0.0
    slack = ZERO_SLACK * lam_max
    lo, hi = 0.0, lam_max
    beta = np.zeros(channels)
    more = fewer = None  # (λ, β) nearest above n_keep non-zero (largest λ), and below it (smallest λ)
    steps = sweeps = 0
    while lam_max > 0 and steps < BISECTION_STEPS and hi - lo > BISECTION_RTOL * lam_max:
        lam = 0.5 * (lo + hi)
        beta, info = lasso_cd(g, b, yy, lam, start=beta, tol=tol, max_sweeps=max_sweeps, slack=slack)
        steps, sweeps = steps + 1, sweeps + info["sweeps"]
        count = int(np.count_nonzero(beta))
        if count == n_keep:
            keep = np.flatnonzero(beta).tolist()
            return torch.tensor(keep, dtype=torch.long), {"lam": lam, "hit": True, "steps": steps,
                                                          "sweeps": sweeps, "beta": beta}
        if count > n_keep:
            lo, more = lam, (lam, beta.copy())
        else:
            hi, fewer = lam, (lam, beta.copy())
    lam, chosen = more if more is not None else fewer if fewer is not None else (lam_max, np.zeros(channels))
    keep = _largest(chosen, energy, n_keep)
    return torch.tensor(keep, dtype=torch.long), {"lam": lam, "hit": False, "steps": steps, "sweeps": sweeps,
                                                  "beta": chosen}


def refit_consumer(patches: torch.Tensor, outputs: torch.Tensor, keep: torch.Tensor, *,
                   intercept: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares of `outputs` (m × D) on the kept channels' patches (m × n_keep·taps), in float64:
    (weight D × n_keep·taps, intercept D; zeros without `intercept`). The intercept is fitted by centring.

    >>> x = torch.randn(40, 3, 2, dtype=torch.float64)
    >>> w = torch.randn(4, 3 * 2, dtype=torch.float64)
    >>> y = x.reshape(40, -1) @ w.T + 0.5
    >>> new, shift = refit_consumer(x, y, torch.tensor([0, 1, 2]), intercept=True)
    >>> torch.allclose(new, w), torch.allclose(shift, torch.full((4,), 0.5, dtype=torch.float64))
    (True, True)
    """
    x = patches.detach().to("cpu", torch.float64)
    y = outputs.detach().to("cpu", torch.float64)
    a = x[:, keep].reshape(x.shape[0], -1)
    if intercept:
        a_mean, y_mean = a.mean(0), y.mean(0)
        solution = torch.linalg.lstsq(a - a_mean, y - y_mean, driver="gelsd").solution
        shift = y_mean - a_mean @ solution
    else:
        solution = torch.linalg.lstsq(a, y, driver="gelsd").solution
        shift = torch.zeros(y.shape[1], dtype=torch.float64)
    return solution.T.contiguous(), shift


@register_criterion("cp")
def channel_pruning(ctx: CriterionContext) -> Selection:
    """LASSO channel selection on the consumer's sampled contributions, then least-squares refit of its
    kept weight (He et al. 2017); see the module docstring."""
    from thinet.sampling import collect_patches

    if ctx.unit is not None:
        raise PruningError(f"criterion 'cp' on layer {ctx.pair.producer!r}: it refits the consumer's weight, which "
                           f"only a plain producer/consumer pair takes, not the channel unit {ctx.unit.describe()}")
    channels, n_keep = ctx.num_channels, ctx.n_keep
    if n_keep >= channels:
        return Selection.from_keep(torch.arange(channels), channels)
    consumer = ctx.consumer
    patches, outputs = collect_patches(ctx.model, ctx.pair, ctx.batches, samples_per_image=ctx.samples_per_image,
                                       seed=ctx.seed, device=ctx.device)
    linear = isinstance(consumer, nn.Linear)
    if linear:  # the L draws of an image share its one input: keep one row per image
        patches, outputs = patches[::ctx.samples_per_image], outputs[::ctx.samples_per_image]
    has_bias = getattr(consumer, "bias", None) is not None
    gram, corr, yy = contribution_gram(patches, consumer.weight)
    keep, _ = lasso_select(gram.numpy(), corr.numpy(), yy, n_keep)
    weight, shift = refit_consumer(patches, outputs, keep, intercept=has_bias)
    shape = (weight.shape[0], n_keep * patches.shape[2]) if linear else \
        (weight.shape[0], n_keep, *consumer.weight.shape[2:])
    if not bool(torch.isfinite(weight).all()) or not bool(torch.isfinite(shift).all()):
        raise PruningError(f"criterion 'cp' on layer {ctx.pair.producer!r}: the least-squares refit of consumer "
                           f"{ctx.pair.consumer!r} is not finite (non-finite activations?)")
    selection = Selection.from_keep(keep, channels)
    selection.consumer_weight = weight.reshape(shape).to(consumer.weight.dtype)
    if has_bias:
        selection.consumer_bias = (consumer.bias.detach().to("cpu", torch.float64) + shift).to(consumer.bias.dtype)
    return selection
