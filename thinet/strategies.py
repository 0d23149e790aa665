"""Pruning strategies of §3.3: which layer pairs to prune, in which order, at which rate.

A strategy is a callable `(model, keep_ratio, example_inputs) -> list[PruneStep]`
looked up by name. It only plans; `thinet.surgery.prune_pair` cuts.

    >>> import torchvision
    >>> available_strategies()
    ['auto', 'resnet_bottleneck', 'vgg16_conv', 'vgg16_tiny']
    >>> steps = get_strategy("vgg16_conv")(torchvision.models.vgg16(weights=None), 0.5, None)
    >>> steps[-1].pair
    LayerPair(producer='features.21', consumer='features.24')
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from thinet.strategies_auto import auto, find_prunable_pairs
from thinet.strategies_resnet import resnet_bottleneck
from thinet.strategies_vgg import to_gap, vgg16_conv, vgg16_tiny
from thinet.surgery import build_graph, check_pair, prune_pair
from thinet.surgery_graph import module_or_error, out_channels_of
from thinet.types import PruneStep, PruningError, Selection, num_kept

__all__ = ["Strategy", "available_strategies", "find_prunable_pairs", "get_strategy",
           "prune_with_first_channels", "to_gap"]

Strategy = Callable[[nn.Module, float, Any], list[PruneStep]]

_STRATEGIES: dict[str, Strategy] = {
    "auto": auto,
    "resnet_bottleneck": resnet_bottleneck,
    "vgg16_conv": vgg16_conv,
    "vgg16_tiny": vgg16_tiny,
}


def available_strategies() -> list[str]:
    """Names accepted by `get_strategy`, sorted."""
    return sorted(_STRATEGIES)


def get_strategy(name: str) -> Strategy:
    """The strategy called `name`; it checks `keep_ratio` (0 < r ≤ 1) before planning.

    >>> get_strategy("resnet_bottleneck").__name__
    'resnet_bottleneck'
    """
    if name not in _STRATEGIES:
        raise PruningError(f"unknown strategy {name!r}; known strategies: {', '.join(available_strategies())}")
    plan = _STRATEGIES[name]

    def checked(model: nn.Module, keep_ratio: float, example_inputs: Any = None) -> list[PruneStep]:
        check_keep_ratio(keep_ratio, name)
        if name == "auto" and example_inputs is None:
            raise PruningError("strategy 'auto' traces the model: pass example_inputs (e.g. torch.randn(1, 3, 224, 224))")
        return plan(model, keep_ratio, example_inputs)

    checked.__name__ = plan.__name__
    checked.__doc__ = plan.__doc__
    return checked


def check_keep_ratio(keep_ratio: float, where: str) -> None:
    """PruningError unless 0 < keep_ratio ≤ 1 (the fraction of channels kept)."""
    if isinstance(keep_ratio, bool) or not isinstance(keep_ratio, (int, float)) or not math.isfinite(keep_ratio) \
            or not 0 < keep_ratio <= 1:
        raise PruningError(f"{where}: keep_ratio must be in (0, 1] (fraction of channels kept), got {keep_ratio!r}")


def prune_with_first_channels(model: nn.Module, steps: list[PruneStep], example_inputs: Any) -> nn.Module:
    """Apply `steps` keeping the first `num_kept(C, r)` channels of each producer, scale 1.

    Data-free: the architecture (and so #params/#FLOPs) does not depend on which
    channels are kept. Every pair is checked before the model is touched.

    >>> import torch, torchvision
    >>> model = torchvision.models.vgg16(weights=None)
    >>> x = torch.randn(1, 3, 32, 32)
    >>> model = prune_with_first_channels(model, get_strategy("vgg16_conv")(model, 0.5, x), x)
    >>> model.features[21].out_channels, model.features[24].in_channels
    (256, 256)
    """
    graph = build_graph(model, example_inputs)
    for step in steps:
        check_keep_ratio(step.keep_ratio, f"step {step.pair.producer}")
        check_pair(model, step.pair, example_inputs, graph=graph)
    for step in steps:
        channels = out_channels_of(module_or_error(model, step.pair.producer, "producer"))
        selection = Selection.from_keep(torch.arange(num_kept(channels, step.keep_ratio)), channels)
        prune_pair(model, step.pair, selection, example_inputs=example_inputs, graph=graph)
    return model
