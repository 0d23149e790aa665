"""Grouping a whole model: every conv of `plan_grouping`, in forward order, each chosen by the grouping
criterion on the model as converted so far (as ThiNet samples each layer of the already pruned model)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from thinet.grouping._convert import convert_layer
from thinet.grouping._plan import GroupPlan, plan_grouping
from thinet.grouping._registry import GroupingContext, get_grouping, run_grouping
from thinet.grouping._stats import MAX_GRAM_ELEMENTS, dense_conv
from thinet.models import example_inputs as model_example_inputs
from thinet.models import find_layer
from thinet.runtime import derive_seed, dist_info
from thinet.types import PruningError


def _count_images(batches: Any) -> int | None:
    if isinstance(batches, torch.Tensor):
        return int(batches.shape[0])
    dataset = getattr(batches, "dataset", None)
    return len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None


def _check_batches(model: nn.Module, plan: GroupPlan, grouping: str, batches: Any, samples_per_image: int) -> Any:
    if not get_grouping(grouping).needs_data:
        return batches
    if batches is None:
        raise PruningError(f"grouping {grouping!r} samples every grouped layer: give selection images (batches)")
    images = _count_images(batches)
    if isinstance(batches, torch.Tensor):
        batches = [batches]
    if iter(batches) is batches:
        raise PruningError(f"grouping {grouping!r}: batches must be re-iterable (a DataLoader or a list), got the "
                           f"one-shot {type(batches).__name__}")
    for step in plan.layers:
        conv = dense_conv(model, step.layer)
        if conv.out_channels * conv.in_channels ** 2 > MAX_GRAM_ELEMENTS:
            raise PruningError(f"layer {step.layer!r}: gcos statistics need {conv.out_channels}×{conv.in_channels}"
                               f"×{conv.in_channels} per-filter Gram entries, over the {MAX_GRAM_ELEMENTS} element limit")
    widest = max(dense_conv(model, s.layer).in_channels for s in plan.layers)
    if images is not None and images * samples_per_image < widest:
        raise PruningError(f"grouping {grouping!r}: {images} images x {samples_per_image} samples per image = "
                           f"{images * samples_per_image} samples per filter for layers of up to {widest} input "
                           "channels; like ThiNet, gcos needs at least as many samples as channels")
    return batches


def convert_model(model: nn.Module, groups: int, grouping: str = "gcos", *, batches: Iterable[Any] | None = None,
                  seed: int = 0, samples_per_image: int = 10, example_inputs: Any = None,
                  plan: GroupPlan | None = None, strict: bool = False,
                  progress: Callable[[str], None] | None = None) -> nn.Module:
    """Group every conv `plan_grouping` allows into `groups` groups chosen by `grouping`, in place.

    `batches` (the selection images, as for ThiNet) are needed by the data-driven criteria (gcos); layer
    i draws its samples (or its random groups) from `derive_seed(seed, "group", i)`. The names, g, the
    layers' sizes and the images are checked before the first layer changes; an error met while
    sampling a layer (NaN activations, say) leaves the layers before it grouped. Returns the model (a
    plain nn.Module).

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))
    >>> net = convert_model(net, 2, "contiguous_nols", example_inputs=torch.zeros(1, 3, 12, 12))
    >>> [m.groups for m in net if isinstance(m, nn.Conv2d)]
    [1, 2, 2]
    """
    get_grouping(grouping)
    if example_inputs is None:
        example_inputs = model_example_inputs(model)
    if plan is None:
        plan = plan_grouping(model, groups, example_inputs, strict=strict)
    elif plan.groups != groups:
        raise PruningError(f"the plan groups into {plan.groups} groups, not {groups}")
    batches = _check_batches(model, plan, grouping, batches, samples_per_image)
    info = dist_info()
    for index, step in enumerate(plan.layers):
        find_layer(model, step.layer, "layer")
        ctx = GroupingContext(model, step.layer, groups, batches, seed=derive_seed(seed, "group", index),
                              samples_per_image=samples_per_image)
        result = run_grouping(grouping, ctx)
        if info.enabled:  # every rank must build the same architecture, whatever GPU rounding did
            box = [result]
            torch.distributed.broadcast_object_list(box, src=0)
            result = box[0]
        convert_layer(model, step, result)
        if progress is not None:
            progress(f"{step.layer}: {groups} groups ({grouping})")
    return model
