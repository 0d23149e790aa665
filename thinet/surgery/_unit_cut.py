"""Cutting a whole channel unit (`find_unit`): refit every consumer, then remove the channels everywhere.

Torch-Pruning cuts the producers, their BatchNorms, depthwise convs, SE convs and
the plain consumers' inputs. A grouped consumer is cut here instead: Torch-Pruning
removes the same local input positions in every group, while ThiNet keeps a
different (equal-sized) set in each group.

    >>> import torch, torchvision
    >>> from thinet.surgery import build_graph, find_unit
    >>> from thinet.types import Selection
    >>> model = torchvision.models.mobilenet_v2(weights=None)
    >>> x = torch.randn(1, 3, 32, 32)
    >>> unit = find_unit(build_graph(model, x), "features.2.conv.0.0")
    >>> model = prune_unit(model, unit, Selection.from_keep(torch.arange(48), 96), example_inputs=x)
    >>> model.features[2].conv[1][0].out_channels
    48
"""
from __future__ import annotations

from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from thinet.models import find_layer, in_channels_of
from thinet.surgery._graph import build_graph, cut_group
from thinet.surgery._units import ChannelUnit, find_unit
from thinet.types import PruningError, Selection, check_selection


def check_unit_selection(unit: ChannelUnit, selection: Selection) -> None:
    """PruningError naming the producer unless `selection` is a valid choice for `unit`."""
    where = f"selection for producer {unit.producer!r} ({unit.num_channels} channels)"
    check_selection(selection.keep, unit.num_channels, where, removed=selection.removed, scale=selection.scale)
    if selection.consumer_weight is not None or selection.consumer_bias is not None:
        raise PruningError(f"{where}: a refit consumer weight (Selection.consumer_weight) applies to a plain "
                           f"producer/consumer pair only, not to the channel unit {unit.describe()}")
    counts = torch.bincount(selection.keep // (unit.num_channels // unit.groups), minlength=unit.groups)
    if unit.groups > 1 and bool((counts != counts[0]).any()):
        raise PruningError(f"{where}: keeps {counts.tolist()} channels in its {unit.groups} groups; a grouped "
                           "unit must keep the same count in every group")
    for name, scale in (selection.consumer_scales or {}).items():
        if name not in unit.consumers:
            raise PruningError(f"{where}: scale given for {name!r}, not a consumer of the unit {unit.consumers}")
        check_selection(selection.keep, unit.num_channels, f"{where}, consumer {name!r}", scale=scale)


@torch.no_grad()
def scale_inputs(consumer: nn.Module, scale: torch.Tensor, keep: torch.Tensor, channels: int,
                 window: tuple[int, int] | None = None, span: tuple[int, int] | None = None) -> None:
    """Multiply the consumer's weight columns of the kept channels by `scale` (ŵ), in place.

    `window` = (offset, width): the consumer reads the `channels` inside a concatenation of
    `width` channels, from `offset` on (`ChannelUnit.window`); the other columns keep factor 1.
    `span` = (first, count): a split gives it only channels first .. first+count-1 (`ChannelUnit.span`).
    """
    per_channel = torch.ones(channels, dtype=torch.float64)
    per_channel[keep] = scale.to(torch.float64)
    weight = consumer.weight
    if getattr(consumer, "groups", 1) > 1:  # input c of group g is column c mod (C/groups) of g's filters
        groups = consumer.groups
        factor = per_channel.view(groups, 1, -1).to(weight.dtype)
        view = weight.view(groups, weight.shape[0] // groups, weight.shape[1], -1)
        view.mul_(factor.unsqueeze(-1).to(weight.device))
        return
    first, count = span if span is not None else (0, channels)
    offset, width = window if window is not None else (0, count)
    full = torch.ones(width, dtype=torch.float64)
    full[offset:offset + count] = per_channel[first:first + count]
    # A Linear fed by a flattened map reads each channel in in_features / width contiguous columns.
    factor = full.repeat_interleave(in_channels_of(consumer) // width).to(dtype=weight.dtype, device=weight.device)
    weight.mul_(factor.view([1, -1] + [1] * (weight.dim() - 2)))


@torch.no_grad()
def _cut_grouped_inputs(conv: nn.Conv2d, keep: torch.Tensor) -> None:
    groups, width = conv.groups, conv.in_channels // conv.groups
    filters = conv.out_channels // groups
    parts = [conv.weight[g * filters:(g + 1) * filters][:, keep[(keep // width) == g] - g * width]
             for g in range(groups)]
    conv.weight = nn.Parameter(torch.cat(parts), requires_grad=conv.weight.requires_grad)
    conv.in_channels = int(keep.numel())


def prune_unit(model: nn.Module, unit: ChannelUnit, selection: Selection, *, example_inputs: Any,
               graph: tp.DependencyGraph | None = None) -> nn.Module:
    """Remove `selection.removed` from every layer of `unit`, refitting each consumer, in place.

    Each consumer's kept inputs are first multiplied by its own scale
    (`selection.consumer_scales[name]`, else `selection.scale`). The unit is
    re-derived from the model's graph first, so a stale unit fails before any cut.
    """
    check_unit_selection(unit, selection)
    if graph is None:
        graph = build_graph(model, example_inputs)
    current = find_unit(graph, unit.producer, shared=unit.shared)
    if current != unit:
        raise PruningError(f"the channel unit of {unit.producer!r} is now {current.describe()}, not "
                           f"{unit.describe()}; plan it again on this model")
    producer = find_layer(model, unit.producer, "producer")
    scales = selection.consumer_scales or {}
    for name in unit.consumers:
        scale_inputs(find_layer(model, name, "consumer"), scales.get(name, selection.scale), selection.keep,
                     unit.num_channels, unit.window(name), unit.span(name))
    removed = selection.removed.tolist()
    if not removed:
        return model
    grouped = {find_layer(model, name, "consumer") for name in unit.grouped_consumers}
    cut_group(graph, model, producer, removed, selection.keep, skip_inputs=grouped)
    for conv in grouped:  # keeps the weight's requires_grad
        _cut_grouped_inputs(conv, selection.keep)
    return model

