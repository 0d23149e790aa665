"""ThiNet's channel selection (paper §3.2.2, Algorithm 1) and its least-squares
rescaling (§3.2.3, Eq. 7).

The samples form an m×C matrix X̂ (row = one sample, column = the contribution
x̂_c of input channel c of layer i+1, Eq. 2); ŷ = X̂·1 (Eq. 3). Algorithm 1 greedily
grows the removed set T, each time adding the channel that minimises Eq. 6,
Σ_i(Σ_{j∈T} x̂_ij)². Everything it needs lives in the Gram matrix G = X̂ᵀX̂:
the value of T ∪ {i} is v_T + 2·(Σ_{j∈T} G_ij) + G_ii, so after one matrix
product each greedy step costs O(C).

    >>> import torch
    >>> x_hat = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    >>> sel = select_channels(x_hat, 0.5, layer="features.0")
    >>> sel.keep.numel(), sel.removed.numel(), sel.scale.shape
    (4, 4, torch.Size([4]))

**Forward greedy** (`thinet_forward`; TPAMI 2019 and the authors' released code) grows the
*kept* set S instead: start from S = ∅ and the residual r = ŷ; repeatedly add the channel whose
least-squares projection explains most of r, gain_j = (x̂_jᵀr)² / ‖x̂_j‖²; refit ŵ_S by least
squares (r = ŷ − X̂_S ŵ_S, the part of ŷ orthogonal to span X̂_S); stop at int(C·r) kept. It also
runs on G alone. Let q_1..q_k be the orthonormal basis Gram–Schmidt builds from the chosen
columns and P the C×k matrix P_ji = x̂_jᵀq_i. Then

- the least-squares residual after k picks is r_k = ŷ − Σ_i q_i (q_iᵀŷ), so the correlations
  c = X̂ᵀr_k obey c ← c − P_:,k (q_kᵀŷ), starting from c = X̂ᵀŷ = G·1;
- q_kᵀŷ = Σ_c x̂_cᵀq_k = Σ_c P_ck, since ŷ = Σ_c x̂_c;
- adding column s: q_k = (x̂_s − Σ_i q_i P_si)/d with d² = G_ss − Σ_i P_si², hence
  P_:,k = (G_:,s − P·P_s,:ᵀ)/d (P is G_:,S L⁻ᵀ for the Cholesky factor L of G_SS).

Each step is one O(C·k) update of P and c, never touching X̂; the final ŵ is
`least_squares_scale`'s solve of G_SS·w = (G·1)_S. A chosen column already in the span of
the earlier ones (d² ≤ 1e-12·G_ss) adds no basis vector: it cannot change r. Gains within the
tie tolerance of the best are a tie, broken by the lowest index (so exact duplicates, zero
columns and the candidates left once r = 0 are taken in index order).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import torch

from thinet.types import PruningError, Selection, check_keep_ratio, num_kept

# Two candidate values closer than this (relative to the objective's scale) are
# a tie, broken by the lowest index, so that the Gram-based and the literal
# versions agree even when channels are exact duplicates and only rounding
# tells them apart.
_TIE_RTOL = 1e-10
# A pick whose remaining norm is below this fraction of its own is in the span of the earlier picks.
_SPAN_RTOL = 1e-12
# Cholesky factors whose diagonal spread exceeds this (condition number ≈ its
# square > 1e12) make the normal equations unreliable in float64.
_MAX_DIAG_RATIO = 1e6
_RIDGE_REL = 1e-8


def _check_x_hat(x_hat: torch.Tensor, layer: str) -> None:
    if not isinstance(x_hat, torch.Tensor) or x_hat.dim() != 2:
        shape = tuple(x_hat.shape) if isinstance(x_hat, torch.Tensor) else type(x_hat).__name__
        raise PruningError(f"layer {layer!r}: x_hat must be a 2-D m×C tensor, got {shape}")
    m, c = x_hat.shape
    if c == 0:
        raise PruningError(f"layer {layer!r}: x_hat has no channels (shape {tuple(x_hat.shape)})")
    if m < c:
        raise PruningError(f"layer {layer!r}: x_hat has {m} samples for {c} channels; need at least as many samples as channels")
    if not x_hat.is_floating_point():
        raise PruningError(f"layer {layer!r}: x_hat must be floating point, got {x_hat.dtype}")


def _check_finite_columns(square_norms: torch.Tensor, layer: str) -> None:
    # diag(G)_c = Σ_i x̂_ic² is non-finite exactly when column c holds a NaN or inf
    # (or overflows), so checking it is free next to a separate pass over x_hat.
    bad = torch.nonzero(~torch.isfinite(square_norms)).flatten()
    if bad.numel():
        raise PruningError(f"layer {layer!r}: x_hat contains NaN or inf (or overflows) in channel(s) "
                           f"{bad[:5].tolist()}")


def _check_gram(gram: torch.Tensor, layer: str) -> None:
    if not isinstance(gram, torch.Tensor) or gram.dim() != 2 or gram.shape[0] != gram.shape[1] or gram.shape[0] == 0:
        shape = tuple(gram.shape) if isinstance(gram, torch.Tensor) else type(gram).__name__
        raise PruningError(f"layer {layer!r}: gram must be a square non-empty C×C tensor, got {shape}")
    if not bool(torch.isfinite(gram).all()):
        raise PruningError(f"layer {layer!r}: gram contains NaN or inf")


def _first_minimum(values: torch.Tensor, scale: float) -> int:
    """Index of the lowest-index entry within the tie tolerance of the minimum."""
    lowest = values.min()
    tol = _TIE_RTOL * max(scale, abs(float(lowest)), 1e-300)
    return int(torch.nonzero(values <= lowest + tol)[0, 0])


def greedy_remove(gram: torch.Tensor, n_remove: int, groups: int = 1) -> torch.Tensor:
    """Algorithm 1 on the Gram matrix: the removed channels in the order removed.

    With `groups` > 1 the channels form that many contiguous equal blocks and each
    block gives up `n_remove / groups` channels: a block that has given its share
    is no longer a candidate (see `select_coupled`).

    >>> g = torch.tensor([[4., 0., 0.], [0., 1., 0.], [0., 0., 9.]])
    >>> greedy_remove(g, 2).tolist()
    [1, 0]
    >>> greedy_remove(torch.diag(torch.tensor([1., 2., 3., 4.])), 2, groups=2).tolist()
    [0, 2]
    """
    c = gram.shape[0]
    if not 0 <= n_remove <= c:
        raise PruningError(f"greedy_remove: n_remove must be in [0, {c}], got {n_remove}")
    if groups < 1 or c % groups or n_remove % groups:
        raise PruningError(f"greedy_remove: {c} channels and {n_remove} removals do not split into {groups} "
                           "equal groups")
    block = torch.arange(c) // (c // groups)
    quota = torch.zeros(groups, dtype=torch.long)
    g = gram.detach().to(device="cpu", dtype=torch.float64)
    diag = g.diagonal().clone()
    scale = float(diag.abs().max()) if c else 0.0
    cross = torch.zeros(c, dtype=torch.float64)  # Σ_{j∈T} G_ij for every i
    value_t = 0.0  # Eq. 6 for the current T
    taken = torch.zeros(c, dtype=torch.bool)
    order: list[int] = []
    for _ in range(n_remove):
        values = value_t + 2.0 * cross + diag
        values[taken] = math.inf
        if groups > 1:
            values[quota[block] >= n_remove // groups] = math.inf
        best = _first_minimum(values, max(scale, abs(value_t)))
        value_t = float(values[best])
        cross += g[:, best]
        taken[best] = True
        quota[block[best]] += 1
        order.append(best)
    return torch.tensor(order, dtype=torch.long)


def least_squares_scale(gram: torch.Tensor, keep: torch.Tensor, layer: str = "?") -> torch.Tensor:
    """ŵ of Eq. 7 for the kept channels from G: solves G_SS·w = (G·1)_S.

    Since ŷ = X̂·1, X̂_Sᵀŷ = (G·1)_S. A singular or ill-conditioned G_SS gets a tiny
    ridge pulling w towards 1 (no rescaling) rather than 0, so an unidentifiable
    channel keeps its weights instead of being silenced; a warning names the layer.

    >>> g = torch.tensor([[2., 1.], [1., 2.]], dtype=torch.float64)
    >>> least_squares_scale(g, torch.tensor([0])).tolist()
    [1.5]
    """
    _check_gram(gram, layer)
    g = gram.detach().to(device="cpu", dtype=torch.float64)
    keep = torch.as_tensor(keep, dtype=torch.long).flatten()
    g_ss = g[keep][:, keep]
    rhs = g.sum(1)[keep]
    chol, info = torch.linalg.cholesky_ex(g_ss)
    diag = chol.diagonal()
    well_posed = int(info) == 0 and float(diag.min()) > 0 and float(diag.max() / diag.min()) < _MAX_DIAG_RATIO
    if well_posed:
        w = torch.cholesky_solve(rhs.unsqueeze(1), chol).squeeze(1)
    else:
        warnings.warn(f"layer {layer!r}: least-squares system for {keep.numel()} kept channels is singular or "
                      f"ill-conditioned; adding a tiny ridge towards scale 1", RuntimeWarning, stacklevel=2)
        w = _ridge_solve(g_ss, rhs, layer)
    return w.to(torch.float32)


def least_squares_to_target(x_hat: torch.Tensor, target: torch.Tensor, layer: str = "?") -> torch.Tensor:
    """ŵ minimising ‖X̂·w − y‖² for samples X̂ (m×C') of the kept channels and a target y (m).

    Eq. 7 when y = ŷ of the unpruned layer but X̂ was sampled after an earlier cut changed the
    kept inputs (`thinet.sampling.collect_paired_samples`); with X̂ the unchanged kept columns and
    y their full sum it is `least_squares_scale`. Solved through that function on the Gram matrix of
    [X̂, y − X̂·1], whose last column carries the target (same ridge towards 1 when ill-posed).

    >>> x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    >>> least_squares_to_target(x, x @ torch.tensor([1.0, 2.0, 0.5])).tolist()  # doctest: +ELLIPSIS
    [1.0..., 2.0..., 0.5...]
    """
    if x_hat.dim() != 2 or target.shape != (x_hat.shape[0],):
        raise PruningError(f"layer {layer!r}: need m×C samples and m targets, got {tuple(x_hat.shape)} and "
                           f"{tuple(target.shape)}")
    x = x_hat.detach().to(device="cpu", dtype=torch.float64)
    z = torch.cat([x, (target.detach().to(device="cpu", dtype=torch.float64) - x.sum(1)).unsqueeze(1)], 1)
    return least_squares_scale(z.T @ z, torch.arange(x.shape[1]), layer)


def _ridge_solve(g_ss: torch.Tensor, rhs: torch.Tensor, layer: str) -> torch.Tensor:
    n = g_ss.shape[0]
    base = float(g_ss.diagonal().sum()) / n
    ridge = _RIDGE_REL * (base if base > 0 else 1.0)
    ones = torch.ones(n, dtype=torch.float64)
    eye = torch.eye(n, dtype=torch.float64)
    for _ in range(12):  # grow the ridge until the factorisation succeeds
        chol, info = torch.linalg.cholesky_ex(g_ss + ridge * eye)
        if int(info) == 0:
            return torch.cholesky_solve((rhs + ridge * ones).unsqueeze(1), chol).squeeze(1)
        ridge *= 10.0
    raise PruningError(f"layer {layer!r}: least-squares system could not be solved even with ridge {ridge:g}")


def select_from_gram(gram: torch.Tensor, keep_ratio: float, least_squares: bool = True, layer: str = "?") -> Selection:
    """ThiNet's choice from a precomputed Gram matrix G = X̂ᵀX̂ (e.g. `collect_gram`).

    >>> g = torch.tensor([[4., 0., 0.], [0., 1., 0.], [0., 0., 9.]])
    >>> select_from_gram(g, 0.34, least_squares=False).keep.tolist()
    [2]
    """
    ratio = check_keep_ratio(keep_ratio, f"layer {layer!r}")
    _check_gram(gram, layer)
    c = gram.shape[0]
    n_remove = c - num_kept(c, ratio)
    removed = greedy_remove(gram, n_remove)
    mask = torch.ones(c, dtype=torch.bool)
    mask[removed] = False
    keep = torch.nonzero(mask).flatten()
    if least_squares and n_remove > 0:
        scale = least_squares_scale(gram, keep, layer)
    else:
        # Nothing removed: w = 1 solves G·w = G·1 exactly, no need to solve.
        scale = torch.ones(keep.numel(), dtype=torch.float32)
    return Selection(keep=keep, removed=torch.sort(removed).values, scale=scale)


def select_coupled(grams: Mapping[str, torch.Tensor], keep_ratio: float, *, groups: int = 1,
                   least_squares: bool = True, layer: str = "?", forward: bool = False) -> Selection:
    """ThiNet's choice for a channel unit: one greedy selection, one least-squares fit per consumer.

    `grams` maps each consumer of the channels to its G_k = X̂_kᵀX̂_k (`thinet.sampling`).
    Shared channels: removing channel c removes it from every consumer's input, so
    the objective is Σ_k Eq. 6 on consumer k's samples, each consumer's rows weighted
    by 1/(1ᵀG_k1) = 1/Σ_i ŷ_i² so that each consumer's *relative* reconstruction error
    counts equally whatever its scale; that sum is greedy-minimised like one Gram matrix.
    `groups` > 1 keeps `num_kept(C/groups, r)` channels in each contiguous block of
    C/groups (a grouped producer or consumer stays a valid grouped convolution). For a
    grouped consumer G_k is block-diagonal, so this equals selecting per group on that
    group's samples: the increment of a candidate depends only on removals in its own
    block. Each consumer is then refitted by its own Eq. 7 on G_k. With one consumer
    and `groups=1` this is `select_from_gram`, bit for bit. `forward=True` chooses the kept
    channels by the forward greedy (`greedy_add`, `thinet_forward`) on the same weighted sum
    (groups=1 only), and refits each consumer the same way.

    >>> x = torch.randn(60, 6, generator=torch.Generator().manual_seed(0))
    >>> sel = select_coupled({"conv2": x.T @ x}, 0.5, groups=2)
    >>> sel.keep.numel(), sorted(sel.consumer_scales)
    (2, ['conv2'])
    """
    ratio = check_keep_ratio(keep_ratio, f"layer {layer!r}")
    if not grams:
        raise PruningError(f"layer {layer!r}: no consumer samples to select from")
    for name, gram in grams.items():
        _check_gram(gram, f"{layer} -> {name}")
    c = next(iter(grams.values())).shape[0]
    if any(g.shape[0] != c for g in grams.values()) or groups < 1 or c % groups:
        raise PruningError(f"layer {layer!r}: consumers' Gram matrices {[tuple(g.shape) for g in grams.values()]} "
                           f"do not all cover the same {c} channels in {groups} equal groups")
    if len(grams) == 1:
        total = next(iter(grams.values()))
    else:
        total = sum(g.double() / max(float(g.double().sum()), 1e-300) for g in grams.values())
    n_remove = c - groups * num_kept(c // groups, ratio)
    if forward and groups != 1:
        raise PruningError(f"layer {layer!r}: the forward greedy does not keep equal counts in {groups} groups")
    mask = torch.ones(c, dtype=torch.bool)
    if forward:
        mask[:] = False
        mask[greedy_add(total, c - n_remove)] = True
    else:
        mask[greedy_remove(total, n_remove, groups)] = False
    keep = torch.nonzero(mask).flatten()
    removed = torch.nonzero(~mask).flatten()
    scales = {}
    for name, gram in grams.items():
        if least_squares and n_remove > 0:
            scales[name] = least_squares_scale(gram, keep, f"{layer} -> {name}")
        else:
            scales[name] = torch.ones(keep.numel(), dtype=torch.float32)
    return Selection(keep=keep, removed=removed, scale=next(iter(scales.values())), consumer_scales=scales)


def select_channels(x_hat: torch.Tensor, keep_ratio: float, least_squares: bool = True, layer: str = "?") -> Selection:
    """ThiNet's channel choice (Algorithm 1) and, optionally, its scales ŵ (Eq. 7).

    `x_hat` is the m×C sample matrix from `thinet.sampling.collect_samples`;
    `least_squares=False` gives scale = ones ("ThiNet w/o ŵ").

    >>> import torch
    >>> x = torch.randn(100, 6, generator=torch.Generator().manual_seed(1))
    >>> x[:, 5] *= 0.01  # a channel that hardly contributes
    >>> sel = select_channels(x, 0.5, layer="conv1")
    >>> 5 in sel.removed.tolist(), sel.keep.numel()
    (True, 3)
    """
    ratio, gram = checked_gram(x_hat, keep_ratio, layer)
    return select_from_gram(gram, ratio, least_squares, layer)


def checked_gram(x_hat: torch.Tensor, keep_ratio: float, layer: str) -> tuple[float, torch.Tensor]:
    """The checked keep ratio and X̂ᵀX̂ of checked samples: what both greedy selections (and
    `thinet.interop.ThiNetImportance`) start from.

    >>> ratio, gram = checked_gram(torch.eye(3), 0.5, "demo")
    >>> ratio, gram.shape
    (0.5, torch.Size([3, 3]))
    """
    ratio = check_keep_ratio(keep_ratio, f"layer {layer!r}")
    _check_x_hat(x_hat, layer)
    gram = x_hat.T @ x_hat
    _check_finite_columns(gram.diagonal(), layer)
    return ratio, gram


def greedy_add(gram: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Forward greedy on the Gram matrix (module docstring): the kept channels in the order added.

    >>> g = torch.tensor([[4., 0., 0.], [0., 1., 0.], [0., 0., 9.]])
    >>> greedy_add(g, 2).tolist()
    [2, 0]
    """
    c = gram.shape[0]
    if not 0 <= n_keep <= c:
        raise PruningError(f"greedy_add: n_keep must be in [0, {c}], got {n_keep}")
    g = gram.detach().to(device="cpu", dtype=torch.float64)
    diag = g.diagonal().clone()
    corr = g.sum(1)  # X̂ᵀr for r = ŷ
    scale = abs(float(corr.sum()))  # ‖ŷ‖², the most any pick can explain
    basis = torch.zeros(n_keep, c, dtype=torch.float64)  # row i: P_:,i = X̂ᵀq_i (rows stay contiguous)
    rank = 0
    taken = torch.zeros(c, dtype=torch.bool)
    order: list[int] = []
    # Each step is a C×k vector product: far too small for a thread pool, whose wake-ups
    # cost more than the work (30× slower on a busy 2-core machine), so one thread runs it.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(n_keep):
            rank = _add_one(g, diag, corr, basis, rank, taken, order, scale)
    finally:
        torch.set_num_threads(threads)
    return torch.tensor(order, dtype=torch.long)


def _add_one(g: torch.Tensor, diag: torch.Tensor, corr: torch.Tensor, basis: torch.Tensor, rank: int,
             taken: torch.Tensor, order: list[int], scale: float) -> int:
    """One forward-greedy step, updating `corr`, `basis`, `taken`, `order` in place; returns the new rank."""
    gain = torch.where(diag > 0, corr * corr / diag.clamp_min(1e-300), torch.zeros_like(diag))
    values = -gain
    values[taken] = math.inf
    best = _first_minimum(values, scale)
    taken[best] = True
    order.append(best)
    column = g[best] - basis[:rank, best] @ basis[:rank]
    remaining = float(column[best])
    if remaining > _SPAN_RTOL * float(diag[best]) and remaining > 0:
        basis[rank] = column / math.sqrt(remaining)
        corr -= basis[rank] * basis[rank].sum()
        rank += 1
    return rank


def forward_select_from_gram(gram: torch.Tensor, keep_ratio: float, layer: str = "?") -> Selection:
    """The forward greedy choice (`thinet_forward`) and its least-squares ŵ from G = X̂ᵀX̂.

    >>> g = torch.tensor([[4., 0., 0.], [0., 1., 0.], [0., 0., 9.]])
    >>> forward_select_from_gram(g, 0.34).keep.tolist()
    [2]
    """
    ratio = check_keep_ratio(keep_ratio, f"layer {layer!r}")
    _check_gram(gram, layer)
    c = gram.shape[0]
    n_keep = num_kept(c, ratio)
    keep = torch.sort(greedy_add(gram, n_keep)).values
    if n_keep < c:
        scale = least_squares_scale(gram, keep, layer)
    else:
        scale = torch.ones(c, dtype=torch.float32)  # w = 1 solves G·w = G·1 exactly
    return Selection.from_keep(keep, c, scale)


def select_channels_forward(x_hat: torch.Tensor, keep_ratio: float, layer: str = "?") -> Selection:
    """Forward greedy selection with least squares on the m×C samples (TPAMI 2019, `thinet_forward`).

    >>> x = torch.randn(100, 6, generator=torch.Generator().manual_seed(1))
    >>> x[:, 5] *= 0.01  # a channel that hardly contributes
    >>> sel = select_channels_forward(x, 0.5, layer="conv1")
    >>> 5 in sel.removed.tolist(), sel.keep.numel()
    (True, 3)
    """
    ratio, gram = checked_gram(x_hat, keep_ratio, layer)
    return forward_select_from_gram(gram, ratio, layer)


def algorithm1_literal(x_hat: torch.Tensor, keep_ratio: float, *, chunk_elements: int = 1 << 23,
                       dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Reference Algorithm 1: evaluates Eq. 6 on all m samples for every candidate at every step.

    Returns the sorted removed set T. Slow by design (O(m·C) per step); tests and
    `thinet bench selection` use it to check `select_channels`. `dtype` is the precision
    Eq. 6 is evaluated in (float64 for a reference; the samples' own dtype for a fair timing).

    >>> x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    >>> algorithm1_literal(x, 0.5).tolist() == select_channels(x, 0.5).removed.tolist()
    True
    """
    ratio = check_keep_ratio(keep_ratio, "algorithm1_literal")
    _check_x_hat(x_hat, "algorithm1_literal")
    m, c = x_hat.shape
    # One row per channel, so each candidate's samples are contiguous.
    columns = torch.empty(c, m, dtype=dtype, device=x_hat.device).copy_(x_hat.detach().T)
    square_norms = (columns * columns).sum(1)
    _check_finite_columns(square_norms, "algorithm1_literal")
    n_remove = c - num_kept(c, ratio)
    rows_per_chunk = max(1, chunk_elements // m)
    scale = float(square_norms.max())
    running = torch.zeros(m, dtype=dtype, device=x_hat.device)  # Σ_{j∈T} x̂_ij per sample
    value_t = 0.0
    taken = torch.zeros(c, dtype=torch.bool)
    for _ in range(n_remove):
        candidates = torch.nonzero(~taken).flatten()
        values = torch.empty(candidates.numel(), dtype=dtype, device=x_hat.device)
        for start in range(0, candidates.numel(), rows_per_chunk):
            chunk = candidates[start:start + rows_per_chunk].to(x_hat.device)
            values[start:start + chunk.numel()] = ((columns[chunk] + running) ** 2).sum(1)
        values = values.cpu().double()
        pos = _first_minimum(values, max(scale, value_t))
        best = int(candidates[pos])
        value_t = float(values[pos])
        running += columns[best]
        taken[best] = True
    return torch.nonzero(taken).flatten()
