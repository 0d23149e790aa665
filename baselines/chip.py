"""CHIP, Channel Independence-based Pruning (Sui, Yin, Xie, Phan, Zonouz, Yuan, NeurIPS 2021): keep the
channels whose feature maps are the least dependent on the others.

For one selection image let A be the C x HW matrix of the producer's post-ReLU output (after its
BatchNorm, **before** any pooling), one row per channel. Channel c's independence is
CI_c = ‖A‖_* − ‖A with row c zeroed‖_* (nuclear norms: sums of singular values); the score is its mean
over the selection images, and the `n_keep` largest are kept (ties to the lower channel index).

Computed without C singular value decompositions per image. With r = min(C, HW), the singular values
of A are the square roots of the eigenvalues of an r x r Gram matrix, in float64:

* C ≤ HW: G = A·Aᵀ (C x C); zeroing row c of A zeroes row and column c of G;
* C > HW: K = Aᵀ·A (HW x HW); zeroing row a_c of A gives K − a_c·a_cᵀ;

so ‖A‖_* = Σ sqrt(λ) and every masked norm comes from one batched `torch.linalg.eigvalsh` over the
channels (in chunks, to bound memory). Numerical consequence: an eigenvalue is accurate to about
eps·λ_max, so a singular value σ is accurate to about eps·σ_max²/σ, i.e. the small singular values
lose relative precision (a σ near sqrt(eps)·σ_max ≈ 1.5e-8·σ_max is noise). Eigenvalues below
r·eps·λ_max (σ below sqrt(r·eps)·σ_max) are counted as zero: they contribute at most
r·sqrt(r·eps)·σ_max to a norm that is at least σ_max, negligible, and clamping them keeps a
rank-deficient A (dead channels, small maps) from adding the sqrt of rounding noise. The test suite
checks the result against `torch.linalg.matrix_norm(..., ord='nuc')` per masked row to 1e-6 relative.

Matched against the authors' code (github.com/Eclipsess/CHIP_NeurIPS2021): `calculate_feature_maps.py`
hooks the ReLU after each convolution (and its BatchNorm); `calculate_ci.py` (`ci_score`,
`reduced_1_row_norm`) reshapes the maps to N x C x HW, sets `input[i, j, :] = 0` and takes
`torch.norm(..., p='nuc')`, CI = original norm − masked norm, the mean over the images of a batch,
then over batches (`mean_repeat_ci`); `prune_finetune_cifar.py` keeps `np.argsort(ci)[removed:]`, the
largest. Differences kept on purpose: they round the saved maps to 4 decimals (`np.round(..., 4)`)
and compute in float32 from 5 training batches of 128 augmented images, averaging per batch first
(the same as over the images for equal batches); here the unrounded maps of the selection images in
float64, averaged over the images, ties to the lower index rather than numpy's unstable argsort.

A producer with no ReLU module on its output is a PruningError naming the layer, before any compute
(`chip.layer_check`).
"""
from __future__ import annotations

import torch

from baselines._ranking import keep_largest
from thinet.criteria import CriterionContext, register_criterion, relu_refusal
from thinet.types import PruningError

# Elements of the masked Gram matrices built at once (float64: 256 MiB).
CHUNK_ELEMENTS = 1 << 25


def _nuclear_from_eigenvalues(eigenvalues: torch.Tensor, tol: torch.Tensor) -> torch.Tensor:
    return torch.where(eigenvalues > tol, eigenvalues, torch.zeros_like(eigenvalues)).sqrt().sum(dim=-1)


def masked_nuclear_norms(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖A_n‖_*, ‖A_n with row c zeroed‖_*) for every image n of an N x C x HW tensor: shapes N and N x C.

    In float64 from the eigenvalues of the smaller Gram matrix (see the module docstring).

    >>> a = torch.tensor([[[3.0, 0.0], [0.0, 4.0], [0.0, 0.0]]])  # singular values 4, 3
    >>> full, masked = masked_nuclear_norms(a)
    >>> full.tolist(), masked.tolist()
    ([7.0], [[4.0, 3.0, 7.0]])
    """
    maps = maps.detach()
    n, c, hw = maps.shape
    side_channels = c <= hw
    if n == 0:
        return torch.zeros(0, dtype=torch.float64, device=maps.device), \
            torch.zeros(0, c, dtype=torch.float64, device=maps.device)
    grams = []
    for image in maps:  # one image in float64 at a time
        a = image.double()
        grams.append(a @ a.T if side_channels else a.T @ a)
    gram = torch.stack(grams)  # N x r x r
    r = gram.shape[-1]
    eps = torch.finfo(torch.float64).eps
    full_eigenvalues = torch.linalg.eigvalsh(gram)
    tol = r * eps * full_eigenvalues[:, -1:].clamp(min=0)  # N x 1, relative to each image's λ_max
    full = _nuclear_from_eigenvalues(full_eigenvalues, tol)
    masked = torch.empty(n, c, dtype=torch.float64, device=maps.device)
    chunk = max(1, CHUNK_ELEMENTS // (r * r))
    pairs = torch.arange(n * c, device=maps.device)
    for start in range(0, n * c, chunk):
        idx = pairs[start:start + chunk]
        img, row = idx // c, idx % c
        if side_channels:
            m = gram[img]  # a copy (advanced indexing)
            k = torch.arange(idx.numel(), device=maps.device)
            m[k, row, :] = 0.0
            m[k, :, row] = 0.0
        else:
            v = maps[img, row].double()  # chunk x HW
            m = gram[img] - v.unsqueeze(2) * v.unsqueeze(1)
        masked.view(-1)[idx] = _nuclear_from_eigenvalues(torch.linalg.eigvalsh(m), tol[img])
    return full, masked


def channel_independence(maps: torch.Tensor) -> torch.Tensor:
    """CI per image and channel of an N x C x HW tensor (N x C, float64): ‖A‖_* − ‖A, row c zeroed‖_*.

    Orthogonal rows: a row's CI is its own norm.

    >>> channel_independence(torch.tensor([[[3.0, 0.0], [0.0, 4.0], [0.0, 0.0]]])).tolist()
    [[3.0, 4.0, 0.0]]
    """
    full, masked = masked_nuclear_norms(maps)
    return full.unsqueeze(1) - masked


def chip_scores(ctx: CriterionContext) -> torch.Tensor:
    """Mean over the selection images of each channel's CI on the producer's post-ReLU maps (float64)."""
    total = torch.zeros(ctx.num_channels, dtype=torch.float64)
    count = 0
    for act in ctx.post_relu_activations():
        total += channel_independence(act).sum(dim=0).cpu()
        count += act.shape[0]
    if count == 0:
        raise PruningError(f"chip on layer {ctx.pair.producer!r}: no images in the selection batches")
    return total / count


@register_criterion("chip")
def chip(ctx: CriterionContext) -> torch.Tensor:
    return keep_largest(chip_scores(ctx), ctx.n_keep)


# Checked on every layer of a chain before any compute: the post-ReLU output must exist.
chip.layer_check = lambda model, pair, example_inputs: relu_refusal(model, pair.producer, example_inputs)  # type: ignore[attr-defined]
