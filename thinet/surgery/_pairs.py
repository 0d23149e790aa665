"""Is a (producer, consumer) pair one ThiNet can prune? The checks before any cut, naming the
coupling that forbids it (a residual add, a concat, a second consumer, a depthwise conv ...).
"""
from __future__ import annotations

from typing import Any

import torch_pruning as tp
from torch import nn

from thinet.models import find_layer, in_channels_of, out_channels_of
from thinet.surgery._graph import build_graph, coupling_of, reused_layers
from thinet.surgery._ops import consumer_refusal, producer_refusal
from thinet.types import LayerPair, PruningError

_MAX_LISTED = 6


def check_layer_types(model: nn.Module, pair: LayerPair) -> tuple[nn.Module, nn.Module]:
    producer = find_layer(model, pair.producer, "producer")
    consumer = find_layer(model, pair.consumer, "consumer")
    for role, name, module in (("producer", pair.producer, producer), ("consumer", pair.consumer, consumer)):
        refusal = (producer_refusal if role == "producer" else consumer_refusal)(module)
        grouped = isinstance(module, nn.Conv2d) and module.groups > 1
        if refusal is not None or grouped:
            detail = f" with groups={module.groups}" if grouped else ""
            raise PruningError(f"{role} layer {name!r} is {type(module).__name__}{detail}; ThiNet prunes only "
                               "nn.Conv2d with groups == 1 and nn.Linear" + (f" ({name!r} {refusal})" if refusal else ""))
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
    producer, consumer = check_layer_types(model, pair)
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
    producer = find_layer(model, pair.producer, "producer")
    consumer = find_layer(model, pair.consumer, "consumer")
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
    columns = coupling.consumer_columns[pair.consumer]
    window = consumer_window(columns, out_channels_of(producer), consumer)
    if window is not None and window != (0, out_channels_of(producer)):
        return (f"consumer layer {pair.consumer!r} reads the {out_channels_of(producer)} channels of "
                f"{pair.producer!r} inside a concatenation of {window[1]} channels (from channel {window[0]} on); "
                "a plain pair cannot cut it (--strategy auto cuts it as a channel unit)")
    if in_channels_of(consumer) % out_channels_of(producer) or sorted(columns) != consumer_columns(producer, consumer):
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


def consumer_span(columns: list[tuple[int, int]], consumer: nn.Module) -> tuple[int, int, int, int] | None:
    """(offset, width, first, count) when the consumer reads producer channels first .. first+count-1 as one
    contiguous block of its inputs (a Linear after a flatten: `span` columns per channel), from channel `offset`
    of the `width` it reads; else None.

    `columns`: (consumer input column, producer channel) pairs from the dependency group.

    >>> from torch import nn
    >>> consumer_span([(0, 4), (1, 5)], nn.Conv2d(2, 3, 1))  # a split gives it channels 4 and 5
    (0, 2, 4, 2)
    """
    inputs = in_channels_of(consumer)
    by_channel: dict[int, list[int]] = {}
    for column, channel in columns:
        by_channel.setdefault(channel, []).append(column)
    if not by_channel:
        return None
    channels = sorted(by_channel)
    first, count = channels[0], len(channels)
    if channels != list(range(first, first + count)):
        return None
    span = len(by_channel[first])
    base = min(by_channel[first])
    if span < 1 or inputs % span or base % span or (span > 1 and not isinstance(consumer, nn.Linear)):
        return None
    if any(sorted(by_channel[c]) != list(range(base + (c - first) * span, base + (c - first + 1) * span))
           for c in channels):
        return None
    return base // span, inputs // span, first, count


def consumer_window(columns: list[tuple[int, int]], channels: int, consumer: nn.Module) -> tuple[int, int] | None:
    """(offset, width) in the consumer's channels when it reads all the producer's `channels` as one contiguous
    block (`consumer_span` with every channel), else None."""
    found = consumer_span(columns, consumer)
    if found is None or found[2] != 0 or found[3] != channels:
        return None
    return found[0], found[1]
