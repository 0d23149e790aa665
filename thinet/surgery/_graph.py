"""The channel-coupling analysis behind ThiNet's surgery, on Torch-Pruning's dependency graph.

ThiNet removes a producer's filters together with the matching input channels
of the *one* conv/linear layer that consumes them (§3.1). This module builds
the dependency graph (one forward pass) and answers, for a producer, which
layers its output channels are tied to, so that a pair whose channels also feed
a residual add, a concat, a second consumer, a depthwise conv or any operation not
known to keep channels apart (`_ops.py`) is refused.

Torch-Pruning's own `build_dependency` and `get_pruning_group` are replaced by `build_graph`
and `pruning_group`, built from the same parts: a reshape whose channel mapping cannot be
inferred (a channel shuffle) is recorded instead of aborting the trace, every traced op
remembers the module it ran in (for messages), and the search of a group stops at a deadline.

    >>> import torch, torchvision
    >>> model = torchvision.models.vgg11(weights=None)
    >>> graph = build_graph(model, torch.randn(1, 3, 32, 32))
    >>> coupling_of(graph, "features.0").consumers
    ['features.3']
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch.overrides import TorchFunctionMode
from torch_pruning import _helpers, ops
from torch_pruning.dependency import Dependency, Group, index_mapping, shape_infer
from torch_pruning.pruner import function

from thinet.models import find_layer, out_channels_of
from thinet.surgery._ops import (
    classify,
    consumer_refusal,
    cut_extra_parameters,
    producer_refusal,
)
from thinet.surgery._splits import (
    SPLIT_FUNCTIONS,
    SplitPlan,
    init_split_node,
    rewrite_split_sizes,
    split_plan,
    split_sizes,
    update_split_mapping,
)
from thinet.types import PruningError

_INDEX_UPDATERS = {ops.OPTYPE.CONCAT: index_mapping.update_concat_index_mapping,
                   ops.OPTYPE.SPLIT: update_split_mapping,  # Torch-Pruning's pairs outputs and segments wrongly
                   ops.OPTYPE.RESHAPE: index_mapping.update_reshape_index_mapping,
                   ops.OPTYPE.UNBIND: index_mapping.update_unbind_index_mapping,
                   ops.OPTYPE.EXPAND: index_mapping.update_expand_index_mapping,
                   ops.OPTYPE.SLICE: index_mapping.update_slice_index_mapping}


class SearchTimeout(PruningError):
    """The dependency search of one layer ran past its time limit."""


class UnmappedChannels(PruningError):
    """The dependency search cannot carry channel indices through a node (a broken index mapping)."""


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
    """True for the layers a plain pair may have at both ends: nn.Conv2d with groups == 1, or nn.Linear."""
    if consumer_refusal(module) is not None:
        return False
    return not isinstance(module, nn.Conv2d) or module.groups == 1


def out_pruning_fn(module: nn.Module):
    return tp.prune_conv_out_channels if isinstance(module, nn.Conv2d) else tp.prune_linear_out_channels


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


class _OpOwners:
    """Forward hooks that give every autograd op of the trace the innermost module it ran in."""

    def __init__(self, model: nn.Module) -> None:
        self.owner: dict[Any, str] = {}
        self._names = {m: n for n, m in model.named_modules()}
        self._starts: list[set] = []
        self._hooks = [h for m in model.modules() for h in (m.register_forward_pre_hook(self._enter),
                                                            m.register_forward_hook(self._leave))]

    def _enter(self, _module: nn.Module, args: Any) -> None:
        self._starts.append({t.grad_fn for t in _tensors(args) if t.grad_fn is not None})

    def _leave(self, module: nn.Module, _args: Any, output: Any) -> None:
        starts = self._starts.pop() if self._starts else set()
        name, seen = self._names.get(module, ""), set()
        frontier = [t.grad_fn for t in _tensors(output) if t.grad_fn is not None]
        while frontier:  # the ops between the module's inputs and its output; inner modules claimed theirs
            fn = frontier.pop()
            if fn in starts or fn in seen:
                continue
            seen.add(fn)
            self.owner.setdefault(fn, name)
            frontier += [f for f, _ in getattr(fn, "next_functions", ()) if f is not None]

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()


class _HiddenOperands(TorchFunctionMode):
    """Records, for every op of the trace, the operands autograd will not show: tensors that need no
    gradient (detached, buffers, constants) and hold more than one value (a scalar is harmless); and
    which function made each split (a chunk re-divides what it gets, a split does not)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[Any, list[tuple[int, ...]]] = {}
        self.splits: dict[Any, str] = {}

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in SPLIT_FUNCTIONS:
            for tensor in _tensors(out):
                if tensor.grad_fn is not None:
                    self.splits.setdefault(tensor.grad_fn, name)
        hidden = [tuple(t.shape) for t in _tensors((args, kwargs)) if not t.requires_grad and t.numel() > 1]
        if hidden:
            for tensor in _tensors(out):
                if tensor.grad_fn is not None:
                    self.found.setdefault(tensor.grad_fn, hidden)
        return out


def refresh_index_mapping(graph: tp.DependencyGraph) -> None:
    """Torch-Pruning's index mapping of every concat/split/reshape/slice node, for the current channel counts.

    A node whose mapping cannot be inferred (Torch-Pruning divides by zero at a channel shuffle) is
    recorded in `graph.thinet_unmapped` (node -> error) for the analysis to refuse, instead of failing.
    """
    unmapped = graph.__dict__.setdefault("thinet_unmapped", {})
    for node in list(graph.module2node.values()):
        updater = _INDEX_UPDATERS.get(node.type)
        if updater is None or node in unmapped:
            continue
        try:
            updater(graph, node)
        except Exception as err:  # noqa: BLE001 - any failure means: this node's channels cannot be followed
            unmapped[node] = f"{type(err).__name__}: {err}"


def build_graph(model: nn.Module, example_inputs: Any) -> tp.DependencyGraph:
    """Trace `model` once on `example_inputs` into a Torch-Pruning dependency graph.

    The model's train/eval flags are restored afterwards (tracing runs in eval
    mode so BatchNorm statistics stay untouched). The graph stays valid across
    several `prune_pair` calls on the same model, as long as no module is replaced.
    Also records each layer's call order (`graph.thinet_call_order`) and count, the module each
    traced op ran in (`graph.thinet_op_owner`, grad_fn -> module name) and the operands autograd
    does not show (`graph.thinet_hidden_operands`, grad_fn -> shapes of detached/constant tensors).

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
    owners, hidden = _OpOwners(model), _HiddenOperands()
    graph = tp.DependencyGraph()
    try:
        with torch.enable_grad(), hidden:
            # Torch-Pruning's build_dependency, step by step, with the index mapping made fail-safe.
            graph.verbose, graph.model, graph.ignored_params = False, model, []
            graph._module2name = {module: name for name, module in model.named_modules()}
            graph._param_to_name, graph.unwrapped_parameters = graph._detect_unwrapped_parameters(None)
            graph.module2node = graph._trace(model, inputs, None, output_transform=None)
        graph._build_dependency(graph.module2node)
        shape_infer.init_shape_information(graph)
        for node in graph.module2node.values():
            if node.type == ops.OPTYPE.SPLIT:
                init_split_node(node)
        graph.thinet_split_calls = hidden.splits
        refresh_index_mapping(graph)
    except PruningError:
        raise
    except Exception as err:  # the forward pass itself failed: say so with the input shape
        shape = tuple(example_inputs.shape) if isinstance(example_inputs, torch.Tensor) else type(example_inputs).__name__
        raise PruningError(f"tracing {type(model).__name__} on example_inputs {shape} failed: {err}") from err
    finally:
        owners.remove()
        for hook in hooks:
            hook.remove()
        for module, training in modes.items():
            module.train(training)
    names = {m: n for n, m in model.named_modules()}
    graph.thinet_call_order = [names[m] for m in order]
    graph.thinet_call_counts = {names[m]: c for m, c in counts.items()}
    graph.thinet_op_owner = owners.owner
    graph.thinet_hidden_operands = hidden.found
    return graph


def pruning_group(graph: tp.DependencyGraph, module: nn.Module, pruning_fn: Any, idxs: list[int], *,
                  deadline: float | None = None, layer: str = "?",
                  expand: Callable[[Any], bool] | None = None) -> Group:
    """Torch-Pruning's `get_pruning_group`: every (dependency, indices) the cut of `idxs` reaches.

    The same search, with each (node, handler, indices) visited once, a `deadline`
    (`time.monotonic()` value) past which `SearchTimeout` names `layer`, and, for an
    analysis, `expand(node)` False for the nodes not to search beyond (an op that already
    refuses the unit: the search through concatenations and splits can be long).
    """
    if module not in graph.module2node:
        raise PruningError(f"layer {layer!r} is not in the dependency graph (not used in forward, or replaced "
                           "after the graph was built)")
    if isinstance(module, ops.TORCH_CONV) and module.groups == module.out_channels and module.out_channels > 1:
        pruning_fn = function.prune_depthwise_conv_out_channels
    refresh_index_mapping(graph)
    root = graph.module2node[module]
    group = Group()
    start = [_helpers._HybridIndex(idx=i, root_idx=i) for i in idxs]
    group.add_dep(Dependency(pruning_fn, pruning_fn, source=root, target=root), start)
    seen = {(id(root), pruning_fn, tuple(start))}
    stack = [(group[0].dep, start)]
    while stack:
        if deadline is not None and time.monotonic() >= deadline:
            raise SearchTimeout(f"layer {layer!r}: the dependency search did not end within its time limit "
                                f"({len(group)} dependencies found so far)")
        dep, indices = stack.pop()
        for new_dep in dep.target.dependencies:
            if not new_dep.is_triggered_by(dep.handler):
                continue
            new_indices = indices
            try:
                for mapping in new_dep.index_mapping:
                    if mapping is not None:
                        new_indices = mapping(new_indices)
            except Exception as err:  # Torch-Pruning's mapping of this node is broken (a channel shuffle)
                raise UnmappedChannels(f"layer {layer!r}: its channels cannot be followed through "
                                       f"{node_label(graph, new_dep.target)} ({type(err).__name__}: {err})") from err
            key = (id(new_dep.target), new_dep.handler, tuple(new_indices))
            if not new_indices or key in seen:
                continue
            seen.add(key)
            group.add_dep(new_dep, new_indices)
            if expand is None or expand(new_dep.target):
                stack.append((new_dep, new_indices))
    merged = Group()
    for dep, indices in group.items:
        merged.add_and_merge(dep, indices)
    merged._DG = graph
    for i in range(len(merged)):
        hybrid = merged[i].idxs
        merged[i] = _helpers.GroupItem(merged[i].dep, _helpers.to_plain_idxs(hybrid))
        merged[i].root_idxs = _helpers.to_root_idxs(hybrid)
    return merged


def cut_group(graph: tp.DependencyGraph, model: nn.Module, producer: nn.Module, removed: list[int],
              keep: torch.Tensor, skip_inputs: set[nn.Module] = frozenset()) -> None:
    """Remove channels `removed` of `producer` everywhere the graph ties them to, in place.

    Input cuts of the modules in `skip_inputs` are left to the caller (grouped consumers).
    Frozen parameters stay frozen, and a removed filter takes along the per-filter parameters
    Torch-Pruning does not know (`_ops.cut_extra_parameters`).
    """
    # Torch-Pruning makes fresh nn.Parameters (requires_grad=True); frozen layers stay frozen.
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    group = pruning_group(graph, producer, out_pruning_fn(producer), removed)
    group._group = [item for item in group._group if not (item.dep.target.module in skip_inputs
                    and graph.is_in_channel_pruning_fn(item.dep.handler))]
    cut_out = {item.dep.target.module: getattr(item.dep.target.module, "out_channels", None) for item in group
               if graph.is_out_channel_pruning_fn(item.dep.handler) and isinstance(item.dep.target.module, nn.Conv2d)}
    splits = _channel_splits(graph, group)  # read before the cut: an attribute is found by the sizes it holds
    group.prune(record_history=False)
    for module, old_out in cut_out.items():
        cut_extra_parameters(module, keep, old_out)
    for node, plan in splits:
        rewrite_split_sizes(model, plan, node)
    for name, parameter in model.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)


def _channel_splits(graph: tp.DependencyGraph, group: Group) -> list[tuple[Any, SplitPlan]]:
    """The channel splits a cut passes, each with how its sizes follow (`_splits.split_plan`)."""
    found, seen = [], set()
    for item in group:
        node = item.dep.target
        if node.type != ops.OPTYPE.SPLIT or id(node) in seen:
            continue
        seen.add(id(node))
        sizes = split_sizes(node.grad_fn)
        if sizes is not None and sizes[0] == 1:
            found.append((node, split_plan(graph, node, node_label(graph, node))))
    return found


def node_label(graph: tp.DependencyGraph, node: Any) -> str:
    """A node for a message: a layer's name, or the op and the module it ran in."""
    if isinstance(node.module, nn.Module) and node._name:
        return repr(node._name)
    if node.type == ops.OPTYPE.OUTPUT:
        return "the model output"
    grad_fn = node.grad_fn
    name = grad_fn.name() if hasattr(grad_fn, "name") else type(node.module).__name__.lstrip("_")
    owner = getattr(graph, "thinet_op_owner", {}).get(grad_fn)
    kind = {ops.OPTYPE.CONCAT: "concatenation ", ops.OPTYPE.SPLIT: "split "}.get(node.type, "")
    where = f" in {owner!r}" if owner else " in the model's own forward" if owner == "" else ""
    return f"{kind}{name.rsplit('::', 1)[-1]}{where}"


def coupling_of(graph: tp.DependencyGraph, producer: str) -> Coupling:
    """Everything the output channels of `producer` are tied to in `graph`.

    Walks Torch-Pruning's pruning group of all the producer's channels: the
    producer itself and the per-channel operations of `_ops.py` (BatchNorm, activations,
    pooling, dropout, flatten) pass; conv/linear input channels are consumers; anything
    else (other layers' outputs, adds of two tensors, concat/split/slice, operations
    that mix channels, the model output) is a problem.
    """
    model = graph.model
    module = find_layer(model, producer, "producer")
    names = {m: n for n, m in model.named_modules()}
    channels = out_channels_of(module)
    group = pruning_group(graph, module, out_pruning_fn(module), list(range(channels)), layer=producer)
    result = Coupling(producer=producer)
    unmapped = getattr(graph, "thinet_unmapped", {})
    joins = []
    for item in group:
        dep, node = item.dep, item.dep.target
        target = node.module
        is_in = graph.is_in_channel_pruning_fn(dep.handler) and not graph.is_out_channel_pruning_fn(dep.handler)
        if target is module and not is_in:
            continue
        verdict = classify(node, unmapped, getattr(graph, "thinet_hidden_operands", None))
        if verdict.role == "carry":
            continue
        if verdict.role == "join":
            joins.append(f"{node_label(graph, node)} (combines them with another tensor)")
            continue
        if verdict.role == "layer" and is_in and is_prunable_layer(target):
            name = names.get(target, node_label(graph, node))
            result.consumers.append(name)
            result.consumer_columns[name] = list(zip(item.idxs, item.root_idxs))
            continue
        if verdict.role == "layer":
            label = names.get(target, node_label(graph, node))
            side = "input" if is_in else "output"
            refusal = (consumer_refusal if is_in else producer_refusal)(target)
            detail = f"groups={target.groups}" if isinstance(target, nn.Conv2d) and target.groups > 1 else refusal
            result.problems.append(f"{label} ({type(target).__name__}, {side} channels; {detail})" if detail
                                   else f"{label} ({type(target).__name__}, {side} channels)")
            continue
        result.problems.append(f"{node_label(graph, node)} ({verdict.reason})")
    if result.problems:  # a join of the producer's own channels (y * f(y)) is per channel; one with more is named
        result.problems = joins + result.problems
    return result


def reused_layers(graph: tp.DependencyGraph, *layer_names: str) -> list[str]:
    """The given layers that run more than once per forward pass (shared weights)."""
    counts = getattr(graph, "thinet_call_counts", {})
    return [n for n in layer_names if counts.get(n, 1) > 1]
