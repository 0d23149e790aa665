"""gcos (Group COnvolution with Shuffling, TPAMI 2019): the partition of a conv's channels and filters
into g groups chosen by ThiNet's criterion. A *reconstruction*: the journal's text and code of gcos
are not available; only its abstract is ("a more accurate group convolution scheme").

**Objective.** For filter d the samples (§3.2.1, `collect_filter_grams`) form an m×C matrix X̂_d with
ŷ_d = X̂_d·1 (Eq. 3, y − b) and G_d = X̂_dᵀX̂_d. A g-group conv whose filter group F_j reads only the
input group I_j (|I_j| = C/g, |F_j| = D/g) keeps, for each d ∈ F_j, the subset S = I_j of Eq. 4; the
reconstruction error is Eq. 6 with the removed set T = complement of I_j, summed over the filters:

    E(I, F) = Σ_j Σ_{d∈F_j} Σ_i (Σ_{c∉I_j} x̂_dic)² = Σ_j Σ_{d∈F_j} err_d(I_j),
    err_d(S) = 1ᵀG_d1 − 2·Σ_{c∈S} r_dc + Σ_{c,c'∈S} G_d[c,c'],   r_d = G_d·1.

With g = 1 and all filters pooled, H = Σ_d G_d is ThiNet's Gram matrix and minimising E over S of
size C·r is Algorithm 1's problem; gcos asks for a partition instead of a subset. Everything lives in
the D Gram matrices (D·C² numbers).

**Greedy** (`gcos_partition`), in Algorithm 1's manner: every step evaluates each candidate's
objective value and takes the smallest (ties: the lowest index).

1. *Growth, one group at a time.* Group j starts from I = ∅ and adds, C/g times, the free channel c
   minimising the error of the D/g free filters best reconstructed from I ∪ {c}: the sum of the D/g
   smallest err_d(I ∪ {c}). Incrementally err_d(I ∪ {c}) = err_d(I) − 2r_dc + 2u_dc + G_d[c,c] with
   u_dc = Σ_{c'∈I} G_d[c,c'] (u += G_{:,:,c*} after each pick): O(D·C) per candidate sweep. F_j is
   then those D/g filters; the last group takes what is left. O(D·C²) in all.
2. *Refinement*, block-coordinate, while E decreases (at most `MAX_ROUNDS` rounds):
   (a) filters given channels: E is a sum of per-filter costs err_d(I_j) under D/g filters per group,
       a balanced assignment solved exactly (Hungarian method on a D×D cost, O(g·D·C²) + O(D³));
   (b) channels given filters: with H_j = Σ_{d∈F_j} G_d, a joint greedy assigns one (channel, group)
       at a time, the least increment −2(H_j1)_c + 2(H_j[:,I_j]1)_c + H_j[c,c] among groups with room:
       O(g·C) per step, O(D·C² + g·C²) in all; kept only if E falls.
   Starting from the contiguous partition as well and keeping the lower E guarantees gcos never does
   worse on its own objective than ResNeXt-style contiguous groups.
3. *Least squares per group* (Eq. 7): ŵ_j = argmin_w Σ_{d∈F_j} Σ_i (ŷ_di − wᵀx̂_di,I_j)², whose normal
   equations H_j[I_j,I_j]·w = (H_j·1)_{I_j} are `thinet.selection.least_squares_scale(H_j, I_j)`.

>>> import torch
>>> x = torch.randn(200, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
>>> x[:, :2, 2:] = 0; x[:, 2:, :2] = 0              # filters 0, 1 read channels 0, 1 only; 2, 3 read 2, 3
>>> grams = torch.einsum("mdc,mde->dce", x, x)
>>> part = gcos_partition(grams[[0, 2, 1, 3]][:, [0, 2, 1, 3]][:, :, [0, 2, 1, 3]], 2)  # interleave them
>>> [p.tolist() for p in part.inputs], [f.tolist() for f in part.filters]
([[0, 2], [1, 3]], [[0, 2], [1, 3]])
"""
from __future__ import annotations

import math

import torch

from thinet.grouping._types import Grouping
from thinet.selection import least_squares_scale
from thinet.types import PruningError

# Refinement rounds (each an exact filter assignment and a channel greedy); it stops earlier as soon
# as E no longer falls, which on the layers tried here takes two or three rounds.
MAX_ROUNDS = 10
# Values closer than this (relative to the objective's scale) are a tie, broken by the lowest index.
_TIE_RTOL = 1e-10


def _first_minimum(values: torch.Tensor, scale: float) -> int:
    lowest = values.min()
    return int(torch.nonzero(values <= lowest + _TIE_RTOL * max(scale, abs(float(lowest)), 1e-300))[0, 0])


def _check(grams: torch.Tensor, groups: int, layer: str) -> torch.Tensor:
    if not isinstance(grams, torch.Tensor) or grams.dim() != 3 or grams.shape[1] != grams.shape[2]:
        shape = tuple(grams.shape) if isinstance(grams, torch.Tensor) else type(grams).__name__
        raise PruningError(f"layer {layer!r}: per-filter Gram matrices must be D×C×C, got {shape}")
    d, c = grams.shape[0], grams.shape[1]
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or c % groups or d % groups:
        raise PruningError(f"layer {layer!r}: C={c} inputs and D={d} filters do not split into groups={groups!r}")
    if not bool(torch.isfinite(grams).all()):
        raise PruningError(f"layer {layer!r}: per-filter Gram matrices contain NaN or inf")
    return grams.detach().to(device="cpu", dtype=torch.float64)


def filter_errors(grams: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """err_d(S) of every filter for the input set S (a 1-D index tensor): Eq. 6 on filter d's samples.

    >>> filter_errors(torch.eye(2).repeat(3, 1, 1), torch.tensor([0])).tolist()
    [1.0, 1.0, 1.0]
    """
    removed = torch.ones(grams.shape[1], dtype=grams.dtype)
    removed[inputs] = 0
    return (grams @ removed) @ removed  # t_Sᵀ G_d t_S for every d: two batched mat-vec products


def partition_error(grams: torch.Tensor, grouping: Grouping) -> float:
    """E(I, F): the summed reconstruction error of every filter from its own input group (Eq. 6)."""
    g = grams.to(torch.float64)
    return float(sum(filter_errors(g[f], i).sum() for i, f in zip(grouping.inputs, grouping.filters)))


def _grow(g: torch.Tensor, groups: int) -> Grouping:
    """Step 1: groups grown one at a time (module docstring)."""
    d, c = g.shape[0], g.shape[1]
    per_in, per_out = c // groups, d // groups
    diag = g.diagonal(dim1=1, dim2=2)
    rows = g.sum(2)
    total = rows.sum(1)
    scale = float(total.abs().max())
    free_c = torch.ones(c, dtype=torch.bool)
    free_d = torch.ones(d, dtype=torch.bool)
    inputs, filters = [], []
    for _ in range(groups - 1):
        err, cross, chosen = total.clone(), torch.zeros(d, c, dtype=g.dtype), []
        for _ in range(per_in):
            candidate = err.unsqueeze(1) - 2 * rows + 2 * cross + diag  # D×C: err_d(I ∪ {c})
            value = candidate[free_d].topk(per_out, dim=0, largest=False).values.sum(0)
            value[~free_c] = math.inf
            best = _first_minimum(value, scale)
            err = candidate[:, best]
            cross += g[:, :, best]
            free_c[best] = False
            chosen.append(best)
        candidates = torch.nonzero(free_d).flatten()
        picked = candidates[torch.sort(err[candidates], stable=True).indices[:per_out]]
        free_d[picked] = False
        inputs.append(torch.sort(torch.tensor(chosen)).values)
        filters.append(torch.sort(picked).values)
    inputs.append(torch.nonzero(free_c).flatten())
    filters.append(torch.nonzero(free_d).flatten())
    return Grouping(tuple(inputs), tuple(filters))


def _assign_filters(g: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Step 2a: the balanced filter assignment of least E for fixed input groups (exact)."""
    from scipy.optimize import linear_sum_assignment

    d, groups = g.shape[0], len(inputs)
    cost = torch.stack([filter_errors(g, i) for i in inputs], dim=1)  # D×g
    _, columns = linear_sum_assignment(cost.repeat_interleave(d // groups, dim=1).numpy())
    group_of = torch.as_tensor(columns) // (d // groups)
    return tuple(torch.nonzero(group_of == j).flatten() for j in range(groups))


def _assign_channels(g: torch.Tensor, filters: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Step 2b: a joint greedy assignment of the channels for fixed filter groups."""
    c, groups = g.shape[1], len(filters)
    h = torch.stack([g[f].sum(0) for f in filters])  # g×C×C
    base = -2 * h.sum(2) + h.diagonal(dim1=1, dim2=2)  # g×C
    cross = torch.zeros(groups, c, dtype=g.dtype)
    room = torch.full((groups,), c // groups)
    taken = torch.zeros(c, dtype=torch.bool)
    group_of = torch.empty(c, dtype=torch.long)
    scale = float(h.diagonal(dim1=1, dim2=2).abs().max())
    for _ in range(c):
        value = base + 2 * cross
        value[:, taken] = math.inf
        value[room == 0] = math.inf
        best = _first_minimum(value.flatten(), scale)
        j, channel = divmod(best, c)
        group_of[channel], taken[channel] = j, True
        room[j] -= 1
        cross[j] += h[j, :, channel]
    return tuple(torch.nonzero(group_of == j).flatten() for j in range(groups))


def _refine(g: torch.Tensor, start: Grouping) -> tuple[Grouping, float]:
    """Step 2 from `start`: the best partition found and its E."""
    best, value = start, partition_error(g, start)
    for _ in range(MAX_ROUNDS):
        filters = _assign_filters(g, best.inputs)
        tried = [Grouping(best.inputs, filters)]
        tried.append(Grouping(_assign_channels(g, filters), filters))
        values = [partition_error(g, t) for t in tried]
        pick = min(range(len(tried)), key=values.__getitem__)
        if not values[pick] < value * (1 - _TIE_RTOL) - 1e-300:
            break
        best, value = tried[pick], values[pick]
    return best, value


def gcos_partition(grams: torch.Tensor, groups: int, *, least_squares: bool = True, layer: str = "?") -> Grouping:
    """gcos's grouping from the per-filter Gram matrices (D×C×C): steps 1–3 of the module docstring."""
    g = _check(grams, groups, layer)
    d, c = g.shape[0], g.shape[1]
    grown, grown_error = _refine(g, _grow(g, groups))
    plain, plain_error = _refine(g, Grouping.contiguous(c, d, groups))
    part = grown if grown_error <= plain_error else plain
    order = sorted(range(groups), key=lambda j: int(part.inputs[j][0]))  # groups by their first channel
    grouping = Grouping(tuple(part.inputs[j] for j in order), tuple(part.filters[j] for j in order))
    return group_least_squares(g, grouping, layer) if least_squares else grouping


def group_least_squares(grams: torch.Tensor, grouping: Grouping, layer: str = "?") -> Grouping:
    """`grouping` with step 3's scales: Eq. 7 per group, ŵ_j from H_j = Σ_{d∈F_j} G_d over its inputs I_j.
    Any partition can be rescaled this way (gcos's, contiguous or random groups alike), so that a
    comparison of groupings compares their partitions, not whether they were rescaled.

    >>> x = torch.randn(50, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> grams = torch.einsum("mdc,mde->dce", x, x)
    >>> [s.shape[0] for s in group_least_squares(grams, Grouping.contiguous(2, 2, 2)).scales]
    [1, 1]
    """
    g = _check(grams, grouping.groups, layer)
    if grouping.groups == 1:
        return Grouping(grouping.inputs, grouping.filters)
    scales = tuple(least_squares_scale(g[f].sum(0), i, f"{layer} (group {j})")
                   for j, (i, f) in enumerate(zip(grouping.inputs, grouping.filters)))
    return Grouping(grouping.inputs, grouping.filters, scales)
