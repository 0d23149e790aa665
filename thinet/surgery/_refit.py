"""Refitting ŵ after the cut, consumer by consumer, where the cut changes the kept inputs.

In a stream several blocks add into (`ChannelUnit.drifts`), consumer k reads kept channels that
the blocks before it, fed by the cut stream, have just changed; behind a squeeze-and-excitation
gate the gate itself changes. Samples taken before the cut then describe inputs that no longer
exist, and on a long stream the least-squares scales compound (the issue measured ŵ up to 526
and an output error ten times the output's size). So, as the paper does layer by layer (§3.1),
the unit is cut on a copy and its consumers are sampled again in forward order, each after the
ones before it were refitted, against the target ŷ of the unpruned model (Eq. 7 with that target).

    >>> # selection = refit_after_cut(model, unit, selection, batches, example_inputs=x,
    >>> #                             samples_per_image=10, seed=0)
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from thinet.models import find_layer
from thinet.surgery._graph import build_graph
from thinet.surgery._unit_cut import prune_unit, scale_inputs
from thinet.surgery._units import ChannelUnit, find_unit
from thinet.types import LayerPair, PruningError, Selection


def refit_after_cut(model: nn.Module, unit: ChannelUnit, selection: Selection, batches: Iterable | torch.Tensor, *,
                    example_inputs: Any, samples_per_image: int, seed: int,
                    device: torch.device | str | None = None) -> Selection:
    """`selection` with each consumer's scale refitted on samples taken after the cut (see the module).

    `model` is left untouched (the cut is made on a copy); the returned `consumer_scales`, applied
    by `prune_unit`, give the model that was refitted here.
    """
    from thinet.runtime import derive_seed
    from thinet.sampling import collect_paired_samples
    from thinet.selection import least_squares_to_target

    if selection.removed.numel() == 0:
        return selection
    working = copy.deepcopy(model)
    graph = build_graph(working, example_inputs)
    current = find_unit(graph, unit.producer, shared=True)
    if current != unit:
        raise PruningError(f"the channel unit of {unit.producer!r} is now {current.describe()}, not "
                           f"{unit.describe()}; plan it again on this model")
    prune_unit(working, current, Selection.from_keep(selection.keep, unit.num_channels),
               example_inputs=example_inputs, graph=graph)
    order = {name: index for index, name in enumerate(graph.thinet_call_order)}
    kept = selection.keep.numel()
    scales: dict[str, torch.Tensor] = {}
    for index, name in enumerate(sorted(unit.consumers, key=lambda n: order.get(n, len(order)))):
        where = f"{unit.producer} -> {name}"
        first, count = unit.span(name)  # a split may give the consumer only some of the channels
        inside = (selection.keep >= first) & (selection.keep < first + count)
        span_after = (int((selection.keep < first).sum()), int(inside.sum()))
        before = unit.window(name)  # a concatenation keeps the channels before ours: same offset, narrower
        after = None if before is None else (before[0], before[1] - (count - span_after[1]))
        partial = (first, count) != (0, unit.num_channels)
        x_hat, target = collect_paired_samples(
            model, working, LayerPair(unit.producer, name), batches, samples_per_image=samples_per_image,
            seed=derive_seed(seed, "refit", index), device=device, grouped=name in unit.grouped_consumers,
            kept_filters=selection.keep if name in unit.producers else None, windows=(before, after),
            spans=((first, count), span_after) if partial else (None, None))
        scale = torch.ones(kept)
        scale[inside] = least_squares_to_target(x_hat, target, where)
        # The next consumers are sampled with this one refitted, as they will run in the pruned model.
        scale_inputs(find_layer(working, name, "consumer"), scale, torch.arange(kept), kept, after,
                     span_after if partial else None)
        scales[name] = scale
    return Selection(keep=selection.keep, removed=selection.removed, scale=scales[unit.consumers[0]],
                     consumer_scales={name: scales[name] for name in unit.consumers})
