"""`thinet bench refit`: does ŵ (Eq. 7) help at a given sample count? The measurement behind the default.

ThiNet's least squares fits C·r scales to m samples. With m close to C the fit follows the samples'
noise, and on the consumer's *full* output map (every filter and position, on images the samples did
not come from) the rescaled cut can be worse than no rescaling at all. For each channel unit that
`--strategy auto` plans on a model (built without weights, random images, as `thinet bench models`),
and for each factor k, ThiNet chooses the channels from m = images × ⌈k·C / images⌉ samples (k times
the unit's channels; a grouped consumer draws that many per group) and the unit is cut twice:
with ŵ (`thinet`) and with unit scales (`thinet_nols`: the same samples give the same channels, so
ŵ is the only difference). The error of each is ‖y − y_ref‖ / ‖y_ref‖ over the full output maps of
the unit's consumers on `images` held-out images, with y from the masked reference
(`thinet.surgery.masked`, the function every verified cut equals). Units are measured one at a time
on the unpruned model. The summary counts the units where ŵ beats no rescaling.

    >>> rows = run_refit_bench(["timm:regnetx_002"], factors=(1, 4))  # doctest: +SKIP
    >>> print(refit_markdown(refit_summary(rows)))  # doctest: +SKIP
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from thinet.criteria import CriterionContext, run_criterion
from thinet.models import create_model, example_inputs, find_layer
from thinet.runtime import derive_seed
from thinet.strategies import plan_units
from thinet.surgery import ChannelUnit, masked
from thinet.types import PruningError, Selection

# Networks with grouped units (issue 24: a grouped bottleneck, a tree aggregation) and one plain, small one.
REFIT_MODELS = ("timm:regnetx_002", "timm:dla34", "timm:resnext26ts")
REFIT_FACTORS = (1, 2, 4, 8, 16)


class _Done(Exception):
    """Raised once every consumer's output is captured: the rest of the forward pass is not needed."""


def _consumer_outputs(model: nn.Module, consumers: Sequence[str], images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The output of each consumer on `images` (eval mode, no gradient), stopping after the last one."""
    seen: dict[str, torch.Tensor] = {}
    handles = []

    def keep(name: str) -> Callable:
        def hook(_module: nn.Module, _args: Any, output: torch.Tensor) -> None:
            seen[name] = output.detach().double()
            if len(seen) == len(consumers):
                raise _Done
        return hook

    for name in consumers:
        handles.append(find_layer(model, name, "consumer").register_forward_hook(keep(name)))
    try:
        with torch.no_grad():
            model(images)
    except _Done:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in consumers if n not in seen]
    if missing:
        raise PruningError(f"consumer(s) {missing} were not called in the model's forward pass")
    return seen


def _error(model: nn.Module, unit: ChannelUnit, selection: Selection, images: torch.Tensor,
           reference: dict[str, torch.Tensor]) -> float:
    """‖y − y_ref‖ / ‖y_ref‖ over the full output maps of every consumer, y from the masked reference."""
    with masked(model, unit, selection):
        got = _consumer_outputs(model, unit.consumers, images)
    diff = sum(float((got[n] - reference[n]).pow(2).sum()) for n in unit.consumers)
    norm = sum(float(reference[n].pow(2).sum()) for n in unit.consumers)
    return math.sqrt(diff / max(norm, 1e-300))


def measure_unit(model: nn.Module, unit: ChannelUnit, selection_images: torch.Tensor, held_out: torch.Tensor,
                 factor: float, *, keep_ratio: float = 0.5, seed: int = 0, example: Any = None,
                 grow: str = "samples", samples_per_image: int = 10) -> dict[str, Any]:
    """One unit at samples = `factor` × channels: the consumers' output error with ŵ and without it.

    `grow="samples"`: all of `selection_images`, ⌈factor·C / images⌉ samples each; `grow="images"`:
    `samples_per_image` samples from each of the first ⌈factor·C / samples_per_image⌉ images of
    `selection_images` (which must hold that many). `model` is left as it was (the cut is the masked reference).
    """
    wanted = math.ceil(factor * unit.num_channels)
    if grow == "samples":
        images = selection_images
        per_image = max(1, math.ceil(wanted / images.shape[0]))
    elif grow == "images":
        per_image = samples_per_image
        count = max(1, math.ceil(wanted / per_image))
        if count > selection_images.shape[0]:
            raise PruningError(f"unit {unit.producer!r}: {count} selection images needed, {selection_images.shape[0]} "
                               "given")
        images = selection_images[:count]
    else:
        raise PruningError(f"grow must be 'samples' or 'images', got {grow!r}")
    ctx = CriterionContext(model=model, pair=unit.pair, batches=list(images.split(64)), keep_ratio=keep_ratio,
                           seed=derive_seed(seed, "refit-bench", unit.producer), samples_per_image=per_image,
                           device="cpu", example_inputs=example, unit=None if unit.plain else unit)
    with_ls = run_criterion("thinet", ctx)
    # thinet_nols draws the same samples and runs the same greedy: the same channels, scale 1.
    without = Selection(keep=with_ls.keep, removed=with_ls.removed, scale=torch.ones(with_ls.keep.numel()))
    reference = _consumer_outputs(model, unit.consumers, held_out)
    return {"producer": unit.producer, "channels": unit.num_channels, "groups": unit.groups,
            "consumers": len(unit.consumers), "factor": factor, "images": images.shape[0],
            "samples_per_image": per_image, "samples": images.shape[0] * per_image,
            "error_ls": _error(model, unit, with_ls, held_out, reference),
            "error_nols": _error(model, unit, without, held_out, reference),
            "max_scale": float(with_ls.scale.abs().max()) if with_ls.scale.numel() else 1.0}


def run_refit_bench(models: Sequence[str] = REFIT_MODELS, factors: Sequence[float] = REFIT_FACTORS, *,
                    keep_ratio: float = 0.5, image_size: int = 64, images: int = 8, shared_channels: bool = False,
                    grow: str = "samples", samples_per_image: int = 10, seed: int = 0,
                    progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """`measure_unit` for every unit `--strategy auto` plans on each model, at every factor (one row each).

    `images` random selection images (and as many held-out ones); with `grow="images"` the selection
    images are as many as the largest factor needs (the first `images` are the same).
    """
    if not factors or any(f <= 0 for f in factors):
        raise PruningError(f"factors must be positive, got {list(factors)}")
    rows = []
    for name in models:
        torch.manual_seed(seed)
        model = create_model(name, 10).eval()
        size = (3, image_size, image_size)
        model.thinet_input_size = size
        example = example_inputs(model)
        plan = plan_units(model, example, shared_channels=shared_channels)
        widest = max((u.num_channels for u in plan.units), default=1)
        pool = images if grow == "samples" else max(images, math.ceil(max(factors) * widest / samples_per_image))
        gen = torch.Generator().manual_seed(seed)
        held_out = torch.randn(images, *size, generator=gen)
        selection_images = torch.randn(pool, *size, generator=gen)
        for unit in plan.units:
            for factor in factors:
                start = time.perf_counter()
                row = {"model": name, "grow": grow, **measure_unit(
                    model, unit, selection_images, held_out, factor, keep_ratio=keep_ratio, seed=seed,
                    example=example, grow=grow, samples_per_image=samples_per_image)}
                row["seconds"] = time.perf_counter() - start
                rows.append(row)
                if progress is not None:
                    progress(f"{name} {unit.producer} k={factor:g}: m={row['samples']} ({row['images']} images) "
                             f"for C={row['channels']}, error {row['error_ls']:.4f} with w-hat, "
                             f"{row['error_nols']:.4f} without ({row['seconds']:.1f} s)")
    return rows


def refit_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, factor): units, units where ŵ helps, the median error ratio ŵ / no ŵ, the mean errors."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["factor"]), []).append(row)
    out = []
    for (model, factor), members in groups.items():
        ratios = [r["error_ls"] / max(r["error_nols"], 1e-300) for r in members]
        out.append({"model": model, "factor": factor, "units": len(members),
                    "helps": sum(r["error_ls"] < r["error_nols"] for r in members),
                    "median_ratio": statistics.median(ratios), "worst_ratio": max(ratios),
                    "mean_error_ls": statistics.fmean(r["error_ls"] for r in members),
                    "mean_error_nols": statistics.fmean(r["error_nols"] for r in members)})
    return out


def refit_markdown(summary: Sequence[dict[str, Any]]) -> str:
    """The summary as a markdown table.

    >>> print(refit_markdown([{"model": "m", "factor": 4, "units": 2, "helps": 1, "median_ratio": 0.9,
    ...                        "worst_ratio": 1.2, "mean_error_ls": 0.5, "mean_error_nols": 0.6}]))
    | model | samples / channels | ŵ helps (units) | median error ŵ / no ŵ | worst | mean error ŵ | mean error no ŵ |
    | --- | --- | --- | --- | --- | --- | --- |
    | m | 4 | 1 / 2 | 0.900 | 1.200 | 0.5000 | 0.6000 |
    """
    header = ("| model | samples / channels | ŵ helps (units) | median error ŵ / no ŵ | worst | mean error ŵ | "
              "mean error no ŵ |")
    lines = [header, "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in summary:
        lines.append(f"| {s['model']} | {s['factor']:g} | {s['helps']} / {s['units']} | {s['median_ratio']:.3f} | "
                     f"{s['worst_ratio']:.3f} | {s['mean_error_ls']:.4f} | {s['mean_error_nols']:.4f} |")
    return "\n".join(lines)


def refit_units_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Every measured unit and factor, one row each (the summary's source)."""
    lines = ["| model | unit | channels (groups) | samples | error ŵ | error no ŵ | max ŵ |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['producer']} | {r['channels']} ({r['groups']}) | {r['samples']} "
                     f"({r['factor']:g}×) | {r['error_ls']:.4f} | {r['error_nols']:.4f} | {r['max_scale']:.2f} |")
    return "\n".join(lines)
