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

from thinet.models import out_channels_of
from thinet.surgery._graph import build_graph, cut_group
from thinet.surgery._pairs import check_layer_types, check_pair, consumer_columns
from thinet.types import LayerPair, Selection, check_selection


@torch.no_grad()
def _scale_consumer_inputs(producer: nn.Module, consumer: nn.Module, selection: Selection) -> None:
    """Multiply the consumer's weight for each kept input channel by its scale (w-hat, §3.2.3)."""
    per_channel = torch.ones(out_channels_of(producer), dtype=torch.float64)
    per_channel[selection.keep] = selection.scale.to(torch.float64)
    columns = torch.tensor([channel for _, channel in consumer_columns(producer, consumer)])
    factor = per_channel[columns].to(dtype=consumer.weight.dtype, device=consumer.weight.device)
    shape = [1, -1] + [1] * (consumer.weight.dim() - 2)
    consumer.weight.mul_(factor.view(shape))


@torch.no_grad()
def write_consumer_refit(producer: nn.Module, consumer: nn.Module, selection: Selection) -> None:
    """Put a criterion's refit consumer weight on the kept input columns and its bias in place (Channel
    Pruning's least squares; `Selection.consumer_weight`). The removed columns stay for the cut to drop."""
    if selection.consumer_weight is not None:
        kept = torch.zeros(out_channels_of(producer), dtype=torch.bool)
        kept[selection.keep] = True
        columns = torch.tensor([column for column, channel in consumer_columns(producer, consumer) if kept[channel]])
        consumer.weight[:, columns.to(consumer.weight.device)] = selection.consumer_weight.to(consumer.weight)
    if selection.consumer_bias is not None:
        consumer.bias.copy_(selection.consumer_bias.to(consumer.bias))


def prune_pair(model: nn.Module, pair: LayerPair, selection: Selection, *, example_inputs: Any,
               graph: tp.DependencyGraph | None = None) -> nn.Module:
    """Remove `selection.removed` filters of `pair.producer` and the matching consumer inputs, in place.

    First a criterion's refit consumer weight and bias (`selection.consumer_weight`, Channel
    Pruning's) are written in, then the consumer's kept input channels are multiplied by `selection.scale`;
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
    producer, consumer = check_layer_types(model, pair)
    channels = out_channels_of(producer)
    check_selection(selection.keep, channels, f"selection for producer {pair.producer!r} ({channels} channels)",
                    removed=selection.removed, scale=selection.scale)
    if graph is None:
        graph = build_graph(model, example_inputs)
    check_pair(model, pair, example_inputs, graph=graph)
    write_consumer_refit(producer, consumer, selection)
    _scale_consumer_inputs(producer, consumer, selection)
    removed = selection.removed.tolist()
    if removed:
        cut_group(graph, model, producer, removed, selection.keep)
    return model
