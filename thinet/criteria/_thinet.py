"""ThiNet's own criteria (§3.2): greedy selection on the next layer's sampled inputs.

`thinet` adds the least-squares channel scaling w-hat of Eq. 7; `thinet_nols` is the
paper's "ThiNet w/o w-hat" (§4.1), the same channels with unit scale; `thinet_forward`
is the journal version's forward greedy (TPAMI 2019, `thinet.selection`'s docstring) on
the same samples, with least squares.
"""
from __future__ import annotations

from thinet.criteria._context import CriterionContext
from thinet.criteria._registry import register_criterion
from thinet.types import LayerPair, PruningError, Selection


def needs_samples(num_images: int, samples_per_image: int, num_channels: int, layer: str) -> None:
    """Pre-flight check run by the pipeline before any layer is pruned: Eq. 6 needs m >= C samples."""
    if num_images * samples_per_image < num_channels:
        raise PruningError(
            f"layer {layer!r}: {num_images} selection images x {samples_per_image} samples per image = "
            f"{num_images * samples_per_image} samples for {num_channels} channels; ThiNet needs at least as "
            f"many samples as channels (raise the images per class or the samples per image)")


def _samples(ctx: CriterionContext):
    # Imported here: sampling is heavier and only needed when ThiNet runs.
    from thinet.sampling import collect_samples

    return collect_samples(ctx.model, ctx.pair, ctx.batches, samples_per_image=ctx.samples_per_image,
                           seed=ctx.seed, device=ctx.device)


def _thinet(ctx: CriterionContext, least_squares: bool) -> Selection:
    from thinet.selection import select_channels

    if ctx.unit is not None:
        return _thinet_unit(ctx, least_squares)
    return select_channels(_samples(ctx), ctx.keep_ratio, least_squares=least_squares, layer=ctx.pair.producer)


def _thinet_unit(ctx: CriterionContext, least_squares: bool, forward: bool = False) -> Selection:
    """A channel unit (`thinet.surgery.find_unit`): X̂ at every consumer, one coupled selection.

    The first consumer draws from the step's seed, so a unit with one plain consumer
    samples and selects exactly as the plain pair does. Where the cut changes the kept
    inputs (a stream, an SE gate) each consumer's ŵ is refitted on samples taken after it.
    """
    from thinet.runtime import derive_seed
    from thinet.sampling import collect_samples
    from thinet.selection import select_coupled

    grams, unit = {}, ctx.unit
    for index, consumer in enumerate(unit.consumers):
        seed = ctx.seed if index == 0 else derive_seed(ctx.seed, "consumer", index)
        span = unit.span(consumer)
        x_hat = collect_samples(ctx.model, LayerPair(ctx.pair.producer, consumer), ctx.batches,
                                samples_per_image=ctx.samples_per_image, seed=seed, device=ctx.device,
                                grouped=consumer in unit.grouped_consumers, window=unit.window(consumer),
                                span=None if span == (0, unit.num_channels) else span)
        grams[consumer] = x_hat.T @ x_hat
    # A consumer behind a split reads only its span: x̂ is zero elsewhere, so its ŵ is fitted on the span.
    spanned = bool(unit.spans)
    selection = select_coupled(grams, ctx.keep_ratio, groups=unit.groups, layer=ctx.pair.producer, forward=forward,
                               least_squares=least_squares and not spanned)
    if least_squares and spanned:
        selection = _fit_spans(selection, grams, unit)
    if least_squares and ctx.unit.drifts:
        from thinet.models import example_inputs
        from thinet.surgery import refit_after_cut

        example = ctx.example_inputs if ctx.example_inputs is not None else example_inputs(ctx.model)
        selection = refit_after_cut(ctx.model, ctx.unit, selection, ctx.batches, example_inputs=example,
                                    samples_per_image=ctx.samples_per_image, seed=ctx.seed, device=ctx.device)
    return selection


def _fit_spans(selection: Selection, grams: dict, unit) -> Selection:
    """Eq. 7 per consumer on the channels its span covers (scale 1 on the kept channels it does not read)."""
    import torch

    from thinet.selection import least_squares_scale

    if selection.removed.numel() == 0:
        return selection
    keep, scales = selection.keep, {}
    for name, gram in grams.items():
        first, count = unit.span(name)
        inside = (keep >= first) & (keep < first + count)
        scale = torch.ones(keep.numel())
        block = gram[first:first + count, first:first + count]
        scale[inside] = least_squares_scale(block, keep[inside] - first, f"{unit.producer} -> {name}")
        scales[name] = scale
    return Selection(keep=keep, removed=selection.removed, scale=scales[unit.consumers[0]], consumer_scales=scales)


@register_criterion("thinet")
def thinet(ctx: CriterionContext) -> Selection:
    """Algorithm 1 on the sampled x-hat of layer i+1, then least squares (Eq. 7)."""
    return _thinet(ctx, least_squares=True)


thinet.precheck = needs_samples  # type: ignore[attr-defined]
thinet.grouped_units = True  # type: ignore[attr-defined]  # keeps equal counts per group (select_coupled)


@register_criterion("thinet_nols")
def thinet_nols(ctx: CriterionContext) -> Selection:
    """Algorithm 1 without the least-squares rescaling ("ThiNet w/o w-hat")."""
    return _thinet(ctx, least_squares=False)


thinet_nols.precheck = needs_samples  # type: ignore[attr-defined]
thinet_nols.grouped_units = True  # type: ignore[attr-defined]


@register_criterion("thinet_forward")
def thinet_forward(ctx: CriterionContext) -> Selection:
    """Forward greedy (TPAMI 2019): add the channel best explaining the residual of y-hat, refit w-hat.

    On a channel unit it samples every consumer and refits each one, as `thinet` does.
    """
    from thinet.selection import select_channels_forward

    if ctx.unit is not None:
        return _thinet_unit(ctx, least_squares=True, forward=True)
    return select_channels_forward(_samples(ctx), ctx.keep_ratio, layer=ctx.pair.producer)


thinet_forward.precheck = needs_samples  # type: ignore[attr-defined]
