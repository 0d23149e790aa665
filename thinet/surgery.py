"""Really removing channels: the surgery step of ThiNet (§3.1 step 2, §3.2.3).

`prune_pair` multiplies the consumer's kept input channels by the selection's
scale (ThiNet's w-hat, Eq. 7), then removes the unselected filters from the
producer, the BatchNorm after it and the consumer's input channels through a
Torch-Pruning group. The result is a plain, smaller `nn.Module`: no masks, no
hooks, no zeroed weights.

    >>> import torch, torchvision
    >>> from thinet.types import LayerPair, Selection
    >>> model = torchvision.models.vgg11(weights=None)
    >>> x = torch.randn(1, 3, 32, 32)
    >>> pair = LayerPair("features.0", "features.3")
    >>> model = prune_pair(model, pair, Selection.from_keep(torch.arange(32), 64), example_inputs=x)
    >>> model.features[0].out_channels, model.features[3].in_channels
    (32, 32)
"""
from __future__ import annotations

from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from thinet.surgery_graph import (
    build_graph,
    coupling_of,
    in_channels_of,
    is_prunable_layer,
    module_or_error,
    out_channels_of,
    out_pruning_fn,
    reused_layers,
)
from thinet.types import LayerPair, PruningError, Selection

__all__ = ["build_graph", "check_pair", "coupling_error", "consumer_columns", "prune_pair"]

_MAX_LISTED = 6


def _check_layer_types(model: nn.Module, pair: LayerPair) -> tuple[nn.Module, nn.Module]:
    producer = module_or_error(model, pair.producer, "producer")
    consumer = module_or_error(model, pair.consumer, "consumer")
    for role, name, module in (("producer", pair.producer, producer), ("consumer", pair.consumer, consumer)):
        if not is_prunable_layer(module):
            detail = f" with groups={module.groups}" if isinstance(module, nn.Conv2d) else ""
            raise PruningError(f"{role} layer {name!r} is {type(module).__name__}{detail}; ThiNet prunes only "
                               "nn.Conv2d with groups == 1 and nn.Linear")
    if producer is consumer:
        raise PruningError(f"producer and consumer are the same layer {pair.producer!r}")
    return producer, consumer


def check_pair(model: nn.Module, pair: LayerPair, example_inputs: Any, *,
               graph: tp.DependencyGraph | None = None) -> None:
    """Raise PruningError, naming the layer, unless `pair` can be pruned as ThiNet does.

    The producer must be a Conv2d (groups == 1) or Linear whose output channels
    are consumed by exactly the consumer (a Conv2d with groups == 1 or a Linear,
    possibly after flatten), with only BatchNorm, activations, pooling, dropout
    and flatten in between. Pass a `graph` from `build_graph` to skip the trace.

    >>> import torch, torchvision
    >>> model = torchvision.models.resnet50(weights=None)
    >>> check_pair(model, LayerPair("layer1.0.conv1", "layer1.0.conv2"), torch.randn(1, 3, 32, 32))
    """
    producer, consumer = _check_layer_types(model, pair)
    if graph is None:
        graph = build_graph(model, example_inputs)
    elif graph.model is not model:
        raise PruningError(f"the dependency graph passed for pair {pair} was built for another model")
    if consumer not in graph.module2node:
        raise PruningError(f"consumer layer {pair.consumer!r} is not in the dependency graph (not used in forward, "
                           "or replaced after the graph was built)")
    shared = reused_layers(graph, pair.producer, pair.consumer)
    if shared:
        raise PruningError(f"layer(s) {', '.join(shared)} run more than once per forward pass (shared weights); "
                           f"pair {pair.producer} -> {pair.consumer} cannot be pruned")
    problem = coupling_error(graph, pair)
    if problem:
        raise PruningError(problem)


def coupling_error(graph: tp.DependencyGraph, pair: LayerPair) -> str | None:
    """Why `pair` is not a ThiNet pair in `graph` (one message naming the layers), or None if it is.

    >>> import torch, torchvision
    >>> model = torchvision.models.resnet18(weights=None)
    >>> graph = build_graph(model, torch.randn(1, 3, 32, 32))
    >>> coupling_error(graph, LayerPair("layer1.0.conv1", "layer1.0.conv2")) is None
    True
    """
    model = graph.model
    producer = module_or_error(model, pair.producer, "producer")
    consumer = module_or_error(model, pair.consumer, "consumer")
    coupling = coupling_of(graph, pair.producer)
    if pair.consumer not in coupling.consumers:
        found = ", ".join(coupling.consumers) or "none"
        return (f"consumer layer {pair.consumer!r} does not consume the output channels of producer "
                f"{pair.producer!r}; its conv/linear consumers are: {found}")
    others = [c for c in coupling.consumers if c != pair.consumer] + coupling.problems
    if others:
        listed = ", ".join(others[:_MAX_LISTED])
        if len(others) > _MAX_LISTED:
            listed += f" and {len(others) - _MAX_LISTED} more"
        return (f"output channels of producer {pair.producer!r} are also coupled to {listed}; ThiNet prunes only "
                f"channels consumed by exactly one conv/linear layer ({pair.consumer!r})")
    if in_channels_of(consumer) % out_channels_of(producer) or \
            sorted(coupling.consumer_columns[pair.consumer]) != consumer_columns(producer, consumer):
        return (f"consumer layer {pair.consumer!r} does not read the {out_channels_of(producer)} channels of "
                f"{pair.producer!r} as whole contiguous blocks of its {in_channels_of(consumer)} inputs")
    return None


def consumer_columns(producer: nn.Module, consumer: nn.Module) -> list[tuple[int, int]]:
    """(consumer input index, producer channel) for every consumer input.

    A Linear fed by a flattened C×H×W map reads channel c in the S = in_features / C
    contiguous columns c·S … c·S+S-1; otherwise input c is channel c.
    """
    channels, inputs = out_channels_of(producer), in_channels_of(consumer)
    if inputs % channels:
        raise PruningError(f"consumer has {inputs} inputs, not a multiple of the producer's {channels} channels")
    span = inputs // channels
    return [(column, column // span) for column in range(inputs)]


def _check_selection(selection: Selection, channels: int, producer: str) -> None:
    keep, removed, scale = selection.keep, selection.removed, selection.scale
    where = f"selection for producer {producer!r} ({channels} channels)"
    for label, idx in (("keep", keep), ("removed", removed)):
        if not isinstance(idx, torch.Tensor) or idx.dim() != 1 or idx.dtype not in (torch.int64, torch.int32):
            raise PruningError(f"{where}: {label} must be a 1-D integer tensor, got {idx!r}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= channels):
            raise PruningError(f"{where}: {label} index out of range [0, {channels}): {idx.tolist()}")
        if idx.numel() > 1 and not bool((idx[1:] > idx[:-1]).all()):
            raise PruningError(f"{where}: {label} indices must be sorted and unique, got {idx.tolist()}")
    if keep.numel() == 0:
        raise PruningError(f"{where}: keeps no channel")
    if keep.numel() + removed.numel() != channels or torch.isin(keep, removed).any():
        raise PruningError(f"{where}: keep ({keep.numel()}) and removed ({removed.numel()}) must split "
                           f"range({channels}) into disjoint parts")
    if not isinstance(scale, torch.Tensor) or scale.shape != keep.shape:
        shape = tuple(scale.shape) if isinstance(scale, torch.Tensor) else type(scale).__name__
        raise PruningError(f"{where}: scale has shape {shape}, expected ({keep.numel()},) like keep")
    if not bool(torch.isfinite(scale).all()):
        raise PruningError(f"{where}: scale has non-finite values {scale.tolist()}")


@torch.no_grad()
def _scale_consumer_inputs(producer: nn.Module, consumer: nn.Module, selection: Selection) -> None:
    """Multiply the consumer's weight for each kept input channel by its scale (w-hat, §3.2.3)."""
    per_channel = torch.ones(out_channels_of(producer), dtype=torch.float64)
    per_channel[selection.keep] = selection.scale.to(torch.float64)
    columns = torch.tensor([channel for _, channel in consumer_columns(producer, consumer)])
    factor = per_channel[columns].to(dtype=consumer.weight.dtype, device=consumer.weight.device)
    shape = [1, -1] + [1] * (consumer.weight.dim() - 2)
    consumer.weight.mul_(factor.view(shape))


def prune_pair(model: nn.Module, pair: LayerPair, selection: Selection, *, example_inputs: Any,
               graph: tp.DependencyGraph | None = None) -> nn.Module:
    """Remove `selection.removed` filters of `pair.producer` and the matching consumer inputs, in place.

    First the consumer's kept input channels are multiplied by `selection.scale`;
    then the producer's filters and bias, the BatchNorm channels after it
    (weight, bias, running stats) and the consumer's input channels are removed.
    Everything is validated before the model is touched. `graph` (from
    `build_graph`) may be reused across the steps of one model to skip tracing.

    >>> import torch, torchvision
    >>> from thinet.types import Selection
    >>> model = torchvision.models.vgg11_bn(weights=None)
    >>> sel = Selection.from_keep(torch.tensor([0, 5, 9]), 64, scale=torch.tensor([1.0, 0.5, 2.0]))
    >>> model = prune_pair(model, LayerPair("features.0", "features.4"), sel, example_inputs=torch.randn(1, 3, 32, 32))
    >>> model.features[1].num_features
    3
    """
    producer, consumer = _check_layer_types(model, pair)
    _check_selection(selection, out_channels_of(producer), pair.producer)
    if graph is None:
        graph = build_graph(model, example_inputs)
    check_pair(model, pair, example_inputs, graph=graph)
    _scale_consumer_inputs(producer, consumer, selection)
    removed = selection.removed.tolist()
    if removed:
        # Torch-Pruning makes fresh nn.Parameters (requires_grad=True); frozen layers stay frozen.
        frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
        group = graph.get_pruning_group(producer, out_pruning_fn(producer), removed)
        group.prune(record_history=False)
        for name, parameter in model.named_parameters():
            if name in frozen:
                parameter.requires_grad_(False)
    return model
