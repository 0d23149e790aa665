"""Turning one dense conv into a g-group conv by a `Grouping`, in place.

First the channels are relabelled so that every group is a contiguous block, without changing what
the model computes: the input order is folded into the producer (its filters, its BatchNorm, and
this conv's columns) or, where it cannot be, this conv's columns are permuted behind an explicit
`ChannelShuffle`; the filter order is folded into this conv's rows, its BatchNorm and its consumer's
columns, or undone by a `ChannelShuffle` after it. Then the blocks on the diagonal, times the
grouping's scales, become the weight of an `nn.Conv2d(groups=g)`: the result equals the dense conv
with the connections outside the groups zeroed (and the kept ones scaled).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from thinet.grouping._plan import Fold, LayerConversion
from thinet.grouping._shuffle import ChannelShuffle
from thinet.grouping._stats import dense_conv
from thinet.grouping._types import Grouping, check_grouping
from thinet.models import find_layer


def _take(tensor: torch.Tensor | None, dim: int, order: torch.Tensor) -> None:
    if tensor is not None:
        tensor.copy_(tensor.index_select(dim, order.to(tensor.device)))


@torch.no_grad()
def permute_fold(model: nn.Module, fold: Fold, order: torch.Tensor) -> None:
    """Relabel the channels of `fold.producer`: new channel k is old channel `order[k]`, in its filters,
    the BatchNorms between and the consumer's inputs (a Linear after a flatten: whole column blocks).
    The model computes exactly what it did."""
    producer = find_layer(model, fold.producer, "producer")
    consumer = find_layer(model, fold.consumer, "consumer")
    _take(producer.weight, 0, order)
    _take(producer.bias, 0, order)
    for name in fold.norms:
        norm = find_layer(model, name, "BatchNorm")
        for tensor in (norm.weight, norm.bias, norm.running_mean, norm.running_var):
            _take(tensor, 0, order)
    inputs = consumer.in_channels if isinstance(consumer, nn.Conv2d) else consumer.in_features
    span = inputs // order.numel()
    columns = (order.view(-1, 1) * span + torch.arange(span)).flatten()
    _take(consumer.weight, 1, columns)


def grouped_conv(dense: nn.Conv2d, groups: int, scale: torch.Tensor | None = None) -> nn.Conv2d:
    """The g-group conv of `dense`'s diagonal blocks (filter block j × input block j), each input
    column times `scale` (one factor per input channel), on `dense`'s device and dtype.

    >>> dense = nn.Conv2d(4, 2, 1, bias=False)
    >>> grouped_conv(dense, 2).weight.shape
    torch.Size([2, 2, 1, 1])
    """
    d, c = dense.out_channels, dense.in_channels
    weight = dense.weight.detach()
    blocks = torch.cat([weight[j * d // groups:(j + 1) * d // groups, j * c // groups:(j + 1) * c // groups]
                        for j in range(groups)])
    if scale is not None:
        factor = scale.to(device=weight.device, dtype=weight.dtype).view(groups, 1, c // groups, 1, 1)
        blocks = (blocks.view(groups, d // groups, c // groups, *blocks.shape[2:]) * factor).view_as(blocks)
    conv = nn.Conv2d(c, d, dense.kernel_size, dense.stride, dense.padding, dense.dilation, groups=groups,
                     bias=dense.bias is not None, padding_mode=dense.padding_mode, device=weight.device,
                     dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(blocks)
        if dense.bias is not None:
            conv.bias.copy_(dense.bias)
    conv.weight.requires_grad_(dense.weight.requires_grad)
    if dense.bias is not None:
        conv.bias.requires_grad_(dense.bias.requires_grad)
    return conv.train(dense.training)


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _is_identity(order: torch.Tensor) -> bool:
    return bool((order == torch.arange(order.numel())).all())


@torch.no_grad()
def convert_layer(model: nn.Module, step: LayerConversion, grouping: Grouping) -> nn.Module:
    """Replace `step.layer` by its grouped conv (preceded/followed by a `ChannelShuffle` only where the
    permutation cannot fold); returns the new module. Checked before anything changes."""
    conv = dense_conv(model, step.layer)
    groups = grouping.groups
    check_grouping(grouping, conv.in_channels, conv.out_channels, groups, f"layer {step.layer!r}")
    parts: list[tuple[str, nn.Module]] = []
    order_in, order_out = grouping.input_order(), grouping.filter_order()
    if not _is_identity(order_in):
        if step.input_fold is not None:
            permute_fold(model, step.input_fold, order_in)
        else:
            _take(conv.weight, 1, order_in)
            parts.append(("shuffle", ChannelShuffle(order_in.to(conv.weight.device))))
    after = None
    if not _is_identity(order_out):
        if step.output_fold is not None:
            permute_fold(model, step.output_fold, order_out)
        else:
            _take(conv.weight, 0, order_out)
            _take(conv.bias, 0, order_out)
            after = ChannelShuffle(torch.argsort(order_out).to(conv.weight.device))
    parts.append(("conv", grouped_conv(conv, groups, grouping.input_scale())))
    if after is not None:
        parts.append(("unshuffle", after))
    module = parts[0][1] if len(parts) == 1 else nn.Sequential(OrderedDict(parts))
    _replace(model, step.layer, module)
    return module
