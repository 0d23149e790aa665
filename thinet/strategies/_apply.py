"""Applying a plan without data: the architecture a strategy leads to (the arch table, FLOPs)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from thinet.models import find_layer, out_channels_of
from thinet.surgery import build_graph, check_pair, find_unit, prune_pair, prune_unit
from thinet.types import PruneStep, Selection, check_keep_ratio, num_kept


def prune_with_first_channels(model: nn.Module, steps: list[PruneStep], example_inputs: Any) -> nn.Module:
    """Apply `steps` keeping the first `num_kept(C, r)` channels of each producer (of each group
    of a coupled step's unit), scale 1.

    Data-free: the architecture (and so #params/#FLOPs) does not depend on which
    channels are kept. Every pair is checked before the model is touched.

    >>> import torch, torchvision
    >>> from thinet.strategies import get_strategy
    >>> model = torchvision.models.vgg16(weights=None)
    >>> x = torch.randn(1, 3, 32, 32)
    >>> model = prune_with_first_channels(model, get_strategy("vgg16_conv")(model, 0.5, x), x)
    >>> model.features[21].out_channels, model.features[24].in_channels
    (256, 256)
    """
    graph = build_graph(model, example_inputs)
    for step in steps:
        check_keep_ratio(step.keep_ratio, f"layer {step.pair.producer!r}")
        if step.coupled:
            find_unit(graph, step.pair.producer, shared=True)
        else:
            check_pair(model, step.pair, example_inputs, graph=graph)
    for step in steps:
        if step.coupled:  # the first channels of every group of the unit
            unit = find_unit(graph, step.pair.producer, shared=True)
            width = unit.num_channels // unit.groups
            first = torch.arange(num_kept(width, step.keep_ratio))
            keep = torch.cat([g * width + first for g in range(unit.groups)])
            prune_unit(model, unit, Selection.from_keep(keep, unit.num_channels), example_inputs=example_inputs,
                       graph=graph)
            continue
        channels = out_channels_of(find_layer(model, step.pair.producer, "producer"))
        selection = Selection.from_keep(torch.arange(num_kept(channels, step.keep_ratio)), channels)
        prune_pair(model, step.pair, selection, example_inputs=example_inputs, graph=graph)
    return model
