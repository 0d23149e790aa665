"""The channel-coupling analysis behind ThiNet's surgery, on Torch-Pruning's dependency graph.

ThiNet removes a producer's filters together with the matching input channels
of the *one* conv/linear layer that consumes them (§3.1). This module builds
the dependency graph (one forward pass) and answers, for a producer, which
layers its output channels are tied to, so that a pair whose channels also feed
a residual add, a concat, a second consumer or a depthwise conv is refused.

    >>> import torch, torchvision
    >>> model = torchvision.models.vgg11(weights=None)
    >>> graph = build_graph(model, torch.randn(1, 3, 32, 32))
    >>> coupling_of(graph, "features.0").consumers
    ['features.3']
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning import ops

from thinet.models import find_layer, out_channels_of
from thinet.types import PruningError

# Graph nodes that only carry channels one-to-one from producer to consumer.
_PASS_THROUGH = (ops.OPTYPE.ELEMENTWISE, ops.OPTYPE.RESHAPE)
# Autograd ops that Torch-Pruning files under "element-wise" although they move
# channels around; a channel index would no longer name the same channel after them.
_CHANNEL_MIXING_OPS = ("permute", "transpose", "pixelshuffle", "pixelunshuffle", "channelshuffle", "roll", "flip")


@dataclass
class Coupling:
    """What a producer's output channels reach in the dependency graph.

    `consumers` are the conv/linear layers whose input channels they feed;
    `consumer_columns[name]` maps each of the consumer's input indices to the
    producer channel it comes from; `problems` lists everything else they are
    tied to (residual adds, concats, other layers' outputs, the model output).
    """

    producer: str
    consumers: list[str] = field(default_factory=list)
    consumer_columns: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def is_prunable_layer(module: nn.Module) -> bool:
    """True for the layers ThiNet can prune or consume: Conv2d with groups == 1, or Linear."""
    if isinstance(module, nn.Conv2d):
        return module.groups == 1
    return isinstance(module, nn.Linear)


def out_pruning_fn(module: nn.Module):
    return tp.prune_conv_out_channels if isinstance(module, nn.Conv2d) else tp.prune_linear_out_channels


def build_graph(model: nn.Module, example_inputs: Any) -> tp.DependencyGraph:
    """Trace `model` once on `example_inputs` into a Torch-Pruning dependency graph.

    The model's train/eval flags are restored afterwards (tracing runs in eval
    mode so BatchNorm statistics stay untouched). The graph stays valid across
    several `prune_pair` calls on the same model, as long as no module is replaced.
    Also records each layer's call order (`graph.thinet_call_order`) and count.

    >>> import torch, torchvision
    >>> graph = build_graph(torchvision.models.vgg11(weights=None), torch.randn(1, 3, 32, 32))
    """
    modes = {m: m.training for m in model.modules()}
    order: list[nn.Module] = []
    counts: dict[nn.Module, int] = {}

    def record(module: nn.Module, _inputs: Any, _output: Any) -> None:
        counts[module] = counts.get(module, 0) + 1
        if counts[module] == 1:
            order.append(module)

    # Torch-Pruning calls model(*inputs) first; a bare tensor would be unpacked along the batch.
    # An input that requires grad keeps the trace alive when every parameter is frozen.
    if isinstance(example_inputs, torch.Tensor):
        tensor = example_inputs.detach()
        inputs = (tensor.requires_grad_() if tensor.is_floating_point() else tensor,)
    else:
        inputs = example_inputs
    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=inputs, verbose=False)
    except PruningError:
        raise
    except Exception as err:  # the forward pass itself failed: say so with the input shape
        shape = tuple(example_inputs.shape) if isinstance(example_inputs, torch.Tensor) else type(example_inputs).__name__
        raise PruningError(f"tracing {type(model).__name__} on example_inputs {shape} failed: {err}") from err
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes.items():
            module.train(training)
    names = {m: n for n, m in model.named_modules()}
    graph.thinet_call_order = [names[m] for m in order]
    graph.thinet_call_counts = {names[m]: c for m, c in counts.items()}
    return graph


def _node_label(node: Any) -> str:
    if isinstance(node.module, nn.Module) and node._name:
        return node._name
    return repr(node.module)


def coupling_of(graph: tp.DependencyGraph, producer: str) -> Coupling:
    """Everything the output channels of `producer` are tied to in `graph`.

    Walks Torch-Pruning's pruning group of all the producer's channels: the
    producer itself, BatchNorm and one-input element-wise ops (ReLU, pooling,
    dropout, flatten) pass; conv/linear input channels are consumers; anything
    else (other layers' outputs, adds of two tensors, concat/split/slice,
    normalisations other than BatchNorm, the model output) is a problem.
    """
    model = graph.model
    module = find_layer(model, producer, "producer")
    if module not in graph.module2node:
        raise PruningError(f"producer layer {producer!r} is not in the dependency graph (not used in forward, or "
                           "replaced after the graph was built)")
    names = {m: n for n, m in model.named_modules()}
    channels = out_channels_of(module)
    group = graph.get_pruning_group(module, out_pruning_fn(module), list(range(channels)))
    result = Coupling(producer=producer)
    for item in group:
        dep, node = item.dep, item.dep.target
        target = node.module
        handler = dep.handler
        is_in = graph.is_in_channel_pruning_fn(handler) and not graph.is_out_channel_pruning_fn(handler)
        if target is module and not is_in:
            continue
        if isinstance(target, nn.modules.batchnorm._BatchNorm):
            continue
        if node.type in _PASS_THROUGH:
            op_name = str(getattr(target, "_grad_fn", "") or repr(target)).lower()
            if any(word in op_name for word in _CHANNEL_MIXING_OPS):
                result.problems.append(f"{_node_label(node)} (reorders channels)")
            elif len(node.inputs) > 1:
                result.problems.append(f"{_node_label(node)} (combines them with another tensor)")
            continue
        if isinstance(target, (nn.Conv2d, nn.Linear)) and is_in and is_prunable_layer(target):
            name = names.get(target, _node_label(node))
            result.consumers.append(name)
            result.consumer_columns[name] = list(zip(item.idxs, item.root_idxs))
            continue
        side = "input" if is_in else "output"
        label = names.get(target, _node_label(node)) if isinstance(target, nn.Module) else _node_label(node)
        kind = type(target).__name__.lstrip("_")
        result.problems.append(f"{label} ({kind}, {side} channels)")
    return result


def reused_layers(graph: tp.DependencyGraph, *layer_names: str) -> list[str]:
    """The given layers that run more than once per forward pass (shared weights)."""
    counts = getattr(graph, "thinet_call_counts", {})
    return [n for n in layer_names if counts.get(n, 1) > 1]
