"""Checks every criterion must pass, usable by plugin authors as well as by the test suite.

>>> import torch
>>> from torch import nn
>>> from thinet.criteria import CriterionContext, check_criterion
>>> from thinet.types import LayerPair
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
>>> batches = [(torch.randn(2, 3, 8, 8), torch.tensor([0, 3]))]
>>> make = lambda r, seed: CriterionContext(model, LayerPair("0", "2"), batches, keep_ratio=r, seed=seed)
>>> check_criterion("weight_sum", make)
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from thinet.criteria._lookup import run_criterion
from thinet.criteria._context import CriterionContext
from thinet.types import PruningError, Selection, check_selection, num_kept

ContextFactory = Callable[[float, int], CriterionContext]


class CriterionConformanceError(AssertionError):
    """A criterion broke one of the rules every criterion must follow."""


def _snapshot(ctx: CriterionContext) -> tuple[dict[str, torch.Tensor], list[bool]]:
    state = {k: v.detach().clone() for k, v in ctx.model.state_dict().items()}
    return state, [m.training for m in ctx.model.modules()]


def _check_untouched(name: str, ctx: CriterionContext, before: tuple[dict[str, torch.Tensor], list[bool]]) -> None:
    state, modes = before
    after = ctx.model.state_dict()
    changed = [k for k, v in state.items() if k not in after or not torch.equal(v, after[k])]
    if changed:
        raise CriterionConformanceError(f"criterion {name!r} modified the model: {changed}")
    if [m.training for m in ctx.model.modules()] != modes:
        raise CriterionConformanceError(f"criterion {name!r} left modules in another train/eval mode")
    with_grad = [k for k, p in ctx.model.named_parameters() if p.grad is not None]
    if with_grad:
        raise CriterionConformanceError(f"criterion {name!r} left gradients on {with_grad}")


def _check_selection(name: str, ctx: CriterionContext, sel: Selection) -> None:
    where = f"criterion {name!r} on layer {ctx.pair.producer!r} at r={ctx.keep_ratio}"
    try:
        check_selection(sel.keep, ctx.num_channels, where, removed=sel.removed, scale=sel.scale,
                        n_keep=num_kept(ctx.num_channels, ctx.keep_ratio))
    except PruningError as err:
        raise CriterionConformanceError(str(err)) from None


def _check_cut(name: str, ctx: CriterionContext, sel: Selection) -> None:
    """The choice, cut from a copy of the model, must pass the surgery's exactness check (`verify_cut`): the
    pruned copy equals the unpruned one with the removed inputs masked (and scaled, or refit, as chosen)."""
    import copy

    from thinet.sampling import first_images
    from thinet.surgery import prune_pair, verify_cut

    reference = copy.deepcopy(ctx.model).eval()
    pruned = copy.deepcopy(reference)
    example = first_images(ctx.batches, 2).to(ctx.device)
    try:
        pruned = prune_pair(pruned, ctx.pair, sel, example_inputs=example)
        verify_cut(pruned, reference, ctx.pair, sel, ctx.batches, where=f"criterion {name!r}")
    except PruningError as err:
        raise CriterionConformanceError(f"criterion {name!r} on layer {ctx.pair.producer!r} at r={ctx.keep_ratio}: "
                                        f"its choice does not cut cleanly: {err}") from None


def check_criterion(name: str, make_context: ContextFactory, keep_ratios: Sequence[float] = (0.5, 0.01),
                    seed: int = 0) -> None:
    """Run criterion `name` at each keep ratio on fresh contexts from `make_context(r, seed)` and check it.

    Checks: exactly num_kept(C, r) channels, sorted unique in-range indices, scale
    aligned, the model left as it was (weights, train/eval modes, no gradients),
    the same channels for the same seed, and, for a plain pair, that the choice cuts
    exactly (`thinet.surgery.verify_cut`, a refit consumer weight included).
    Raises CriterionConformanceError.
    """
    for r in keep_ratios:
        ctx = make_context(r, seed)
        before = _snapshot(ctx)
        first = run_criterion(name, ctx)
        _check_selection(name, ctx, first)
        _check_untouched(name, ctx, before)
        if ctx.unit is None:
            _check_cut(name, ctx, first)
        again = run_criterion(name, make_context(r, seed))
        if not torch.equal(first.keep, again.keep):
            raise CriterionConformanceError(
                f"criterion {name!r} kept {first.keep.tolist()} then {again.keep.tolist()} with the same seed {seed}")
