"""The `auto` strategy: every ThiNet-prunable pair the dependency graph finds, for any CNN."""
from __future__ import annotations

from typing import Any

from torch import nn

from thinet.strategies._registry import register_strategy
from thinet.surgery import build_graph, coupling_error, coupling_of, is_prunable_layer, reused_layers
from thinet.types import LayerPair, PruneStep


def find_prunable_pairs(model: nn.Module, example_inputs: Any) -> list[LayerPair]:
    """Each (conv/linear layer, its single conv/linear consumer) pair whose channels reach nothing else.

    Pairs come in forward order. Layers whose output channels also feed a residual
    add, a concat, a second consumer, a depthwise conv or the model output are left out.

    >>> import torch, torchvision
    >>> pairs = find_prunable_pairs(torchvision.models.resnet18(weights=None), torch.randn(1, 3, 32, 32))
    >>> pairs[0]
    LayerPair(producer='layer1.0.conv1', consumer='layer1.0.conv2')
    """
    graph = build_graph(model, example_inputs)
    modules = dict(model.named_modules())
    pairs = []
    for name in graph.thinet_call_order:
        if not is_prunable_layer(modules[name]) or reused_layers(graph, name):
            continue
        coupling = coupling_of(graph, name)
        if len(coupling.consumers) != 1 or coupling.problems:
            continue
        pair = LayerPair(name, coupling.consumers[0])
        if not reused_layers(graph, pair.consumer) and coupling_error(graph, pair) is None:
            pairs.append(pair)
    return pairs


@register_strategy("auto", traces=True)
def auto(model: nn.Module, keep_ratio: float, example_inputs: Any) -> list[PruneStep]:
    """`find_prunable_pairs`, each at `keep_ratio`."""
    return [PruneStep(pair, keep_ratio) for pair in find_prunable_pairs(model, example_inputs)]
