"""Channel units: everything that must lose channel c when a producer loses filter c.

ThiNet (§3) prunes filter c of layer i by removing input channel c of layer i+1,
chosen from samples x̂ of layer i+1's input. The derivation never needs layer i+1
to be the *next module*: it needs (a) the consumer's input channel c to depend on
producer channel c alone, and (b) the consumer to be linear in its input. So the
unit extends through Torch-Pruning's dependency group as follows.

* **Depthwise stage** (MobileNet, EfficientNet): channel c of the expansion conv
  feeds only depthwise channel c, then BatchNorm and an activation, all per channel:
  (a) holds, so x̂ is sampled at the consumer *after* the depthwise stage, and the
  producer, the depthwise conv and their BatchNorms lose channel c together.
  A squeeze-and-excitation gate (reduce conv over the pooled channels, expand conv
  back to them, multiply) is cut consistently: its reduce conv loses input c, its
  expand conv output c. The gate of a kept channel reads the pooled removed
  channels, so there (a) holds only approximately (`ChannelUnit.gated`).
* **Grouped consumer** (RegNet, ResNeXt): filters of group g read only the channels
  of group g, so x̂_c = 0 outside g and the Gram matrix is block-diagonal: the
  selection splits into one per group. Each group keeps `num_kept(w, r)` of its w
  channels, so the consumer stays a valid grouped conv. A grouped *producer* loses
  the same count in each of its groups (`ChannelUnit.groups`).
* **Shared channels** (residual block outputs, several consumers): every producer
  adding into the stream and every consumer reading it lose channel c together.
  Each consumer's input is still linear in the kept channels, so each is refitted by
  its own Eq. 7 (`thinet.selection.select_coupled`). The prediction is exact for the
  consumers reading the stream before any other consumer of it; a consumer further
  down the stream reads kept channels that an earlier block (fed by the cut stream)
  adds to, so its fit is approximate, as for any layer after a pruned one in §3.1.

* **Splits** (MixNet's mixed-kernel convs, chunks): a split along the channels sends each segment
  its own channels, to a depthwise conv (carried) or a consumer that reads that segment only
  (`ChannelUnit.spans`; its x̂ is zero outside, like a grouped consumer's). Each segment keeps
  the same share (the segments are blocks of `groups`), and the split's sizes must follow the
  cut: a chunk re-divides equal segments by itself, a split's sizes are rewritten in the one
  module attribute that holds them (`_splits.py`); anything else is refused, naming the split.

With one plain consumer a unit is exactly the pair of §3 (`ChannelUnit.plain`).

What may lie between a producer and its consumers is an allow-list (`_ops.py`): per-channel
operations, joins of aligned tensors and `nn.Conv2d` / `nn.Linear` consumers; anything else
(softmax over channels, indexing or gathering along them, a gate the trace cannot see, a
cross-channel normalisation, a weight-standardised consumer) refuses the unit, naming the op.

    >>> import torch, torchvision
    >>> from thinet.surgery import build_graph
    >>> model = torchvision.models.mobilenet_v2(weights=None)
    >>> unit = find_unit(build_graph(model, torch.randn(1, 3, 32, 32)), "features.2.conv.0.0")
    >>> unit.consumers, unit.carried
    (('features.2.conv.2',), ('features.2.conv.1.0',))
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import torch_pruning as tp
from torch import nn

from thinet.models import find_layer, in_channels_of, out_channels_of
from thinet.surgery._graph import (
    SearchTimeout,
    UnmappedChannels,
    node_label,
    out_pruning_fn,
    pruning_group,
    reused_layers,
)
from thinet.surgery._ops import Verdict, classify, consumer_refusal, producer_refusal
from thinet.surgery._pairs import consumer_span
from thinet.surgery._splits import SplitRefusal, split_blocks, split_plan
from thinet.types import LayerPair, PruningError, num_kept

_MAX_LISTED = 4
# Seconds the dependency search of one producer may take (one timm model's search never ended).
UNIT_TIME_LIMIT_S = 60.0
# How far back from an SE expand conv its reduce conv may sit (pooling, activations).
_SE_DEPTH = 8


class UnitRefused(PruningError):
    """A producer whose channels cannot form a unit; `kind` names the reason's family for plan listings."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ChannelUnit:
    """The coupled channels of one producer: who loses them, who is refitted.

    `producers`: layers whose output channels are cut (the step's `producer` first);
    `consumers`: conv/linear layers whose inputs the selection reconstructs;
    `carried`: depthwise convs and squeeze-and-excitation convs cut along, not refitted;
    `groups`: the kept count is equal in each of that many contiguous channel blocks;
    `grouped_consumers`: consumers with groups > 1; `gated`: an SE gate reads the channels;
    `windows`: (consumer, offset, width) for each consumer (or SE reduce conv) that reads the channels inside a
    concatenation of `width` channels, the producer's from `offset` on (`window`);
    `reduces`: the squeeze-and-excitation reduce convs among `carried` (they lose inputs, not outputs);
    `spans`: (consumer, first, count) for each consumer a split gives only producer channels
    first .. first+count-1 (`span`); `splits`: the channel splits the cut passes (their sizes follow it).
    """

    producer: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    carried: tuple[str, ...]
    num_channels: int
    groups: int = 1
    grouped_consumers: tuple[str, ...] = ()
    gated: bool = False
    windows: tuple[tuple[str, int, int], ...] = ()
    reduces: tuple[str, ...] = ()
    spans: tuple[tuple[str, int, int], ...] = ()
    splits: tuple[str, ...] = ()

    @property
    def plain(self) -> bool:
        """One producer, one plain consumer, nothing in between: the paper's pair."""
        return (len(self.producers) == 1 and len(self.consumers) == 1 and not self.carried
                and self.groups == 1 and not self.windows and not self.splits)

    def span(self, consumer: str) -> tuple[int, int]:
        """(first, count): the producer channels `consumer` reads, all of them (0, C) unless a split gives it
        only channels first .. first+count-1."""
        return next(((first, count) for name, first, count in self.spans if name == consumer), (0, self.num_channels))

    def window(self, consumer: str) -> tuple[int, int] | None:
        """(offset, width) where `consumer` reads the channels inside a concatenation, else None."""
        return next(((offset, width) for name, offset, width in self.windows if name == consumer), None)

    @property
    def shared(self) -> bool:
        return len(self.producers) > 1 or len(self.consumers) > 1

    @property
    def drifts(self) -> bool:
        """Whether the cut changes the kept inputs of a consumer: a stream several producers add into
        (a consumer reads channels that an earlier block, fed by the cut stream, added to) or an
        SE gate (computed from all channels). Such consumers are refitted after the cut."""
        return len(self.producers) > 1 or self.gated

    @property
    def pair(self) -> LayerPair:
        return LayerPair(self.producer, self.consumers[0])

    def n_keep(self, keep_ratio: float) -> int:
        """Channels kept at rate r: `num_kept` of each group's width, times the groups."""
        return self.groups * num_kept(self.num_channels // self.groups, keep_ratio)

    def describe(self) -> str:
        """One line for a plan listing.

        >>> ChannelUnit("a", ("a",), ("b",), ("dw",), 8, gated=True).describe()
        'a -> b (8 channels; through dw; SE-gated)'
        """
        notes = [f"{self.num_channels} channels"]
        if self.groups > 1:
            notes.append(f"{self.groups} groups")
        if len(self.producers) > 1:
            notes.append(f"shared with {len(self.producers) - 1} more producer(s)")
        if self.carried:
            notes.append("through " + ", ".join(self.carried))
        if self.windows:
            notes.append(f"concatenated for {len(self.windows)} consumer(s)")
        if self.splits:
            notes.append(", ".join(self.splits))
        if self.gated:
            notes.append("SE-gated")
        return f"{self.producer} -> {', '.join(self.consumers)} ({'; '.join(notes)})"


def is_unit_root(module: nn.Module) -> bool:
    """Conv2d (grouped allowed, not depthwise) or Linear: a layer whose filters a unit can remove."""
    return _root_refusal(module, "?") is None


def _is_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels \
        and module.out_channels % module.in_channels == 0


def _listed(names: list[str]) -> str:
    text = ", ".join(names[:_MAX_LISTED])
    return text + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def _pooled(node: Any, depth: int = 4) -> bool:
    """Whether `node` reads its input through a global average pooling (a squeeze-and-excitation reduce)."""
    frontier = list(node.inputs)
    for _ in range(depth):
        for n in frontier:
            label = f"{type(n.module).__name__} {getattr(n.module, '_grad_fn', '')}".lower()
            if "mean" in label or "adaptiveavgpool" in label:
                return True
        frontier = [i for n in frontier if not isinstance(n.module, (nn.Conv2d, nn.Linear)) for i in n.inputs]
    return False


def _feeds_directly(start: Any, goal: Any, depth: int) -> bool:
    """Whether `goal` feeds `start` within `depth` graph steps with no other conv/linear layer between."""
    frontier, seen = [start], set()
    for _ in range(depth):
        frontier = [n for node in frontier for n in node.inputs if id(n) not in seen]
        if any(n is goal for n in frontier):
            return True
        seen.update(id(n) for n in frontier)
        frontier = [n for n in frontier if not isinstance(n.module, (nn.Conv2d, nn.Linear))]
    return False


def find_unit(graph: tp.DependencyGraph, producer: str, *, shared: bool = False,
              time_limit: float | None = UNIT_TIME_LIMIT_S) -> ChannelUnit:
    """The channel unit of `producer`, or `UnitRefused` saying why there is none.

    `shared=False` refuses units with several producers or consumers (residual
    streams), as the paper's ResNet strategy leaves block outputs alone. The dependency
    search stops after `time_limit` seconds (None: no limit) with `UnitRefused("timeout")`;
    any failure of the analysis is a `UnitRefused` naming the layer.

    >>> import torch, torchvision
    >>> from thinet.surgery import build_graph
    >>> graph = build_graph(torchvision.models.resnet18(weights=None), torch.randn(1, 3, 32, 32))
    >>> find_unit(graph, "layer1.0.conv1").plain
    True
    >>> find_unit(graph, "layer1.0.conv2", shared=True).producers  # the stem and the stage's block outputs
    ('layer1.0.conv2', 'layer1.1.conv2', 'conv1')
    """
    try:
        return _find_unit(graph, producer, shared, time_limit)
    except SearchTimeout as err:
        raise UnitRefused("timeout", f"{err}; {producer!r} is left unpruned") from err
    except UnmappedChannels as err:
        raise UnitRefused("mixing", str(err)) from err
    except PruningError:
        raise
    except Exception as err:  # a failure inside the analysis must still name the layer
        raise UnitRefused("error", f"layer {producer!r}: the dependency analysis failed "
                          f"({type(err).__name__}: {err})") from err


def _groups_like_depthwise(module: nn.Module) -> bool:
    """groups == out_channels < in_channels: Torch-Pruning takes it for a depthwise conv, and cuts it as one."""
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.out_channels \
        and module.in_channels != module.out_channels


def _root_refusal(module: nn.Module, producer: str) -> UnitRefused | None:
    if _is_depthwise(module):
        return UnitRefused("depthwise", f"layer {producer!r} is a depthwise {type(module).__name__} (cut with "
                           "the layer feeding it); a unit starts at a Conv2d or Linear")
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        return UnitRefused("type", f"layer {producer!r} is a {type(module).__name__}; a unit starts at a Conv2d "
                           "or Linear")
    refusal = producer_refusal(module)
    if refusal is not None:
        return UnitRefused("type", f"layer {producer!r} {refusal}")
    if _groups_like_depthwise(module):
        return UnitRefused("groups", f"layer {producer!r} has {_groups_message(module)}; its channels are left alone")
    return None


def _groups_message(conv: nn.Conv2d) -> str:
    return (f"groups == out_channels ({conv.groups}) < in_channels ({conv.in_channels}): each filter reads "
            f"{conv.in_channels // conv.groups} channels, which Torch-Pruning would cut as a depthwise conv")


def _layer_problem(name: str, module: nn.Module, is_in: bool, channels: int) -> tuple[str, str] | None:
    """Why a conv/linear layer met on the channels forbids the unit (None when it may take part)."""
    if _is_depthwise(module):
        if module.out_channels != module.in_channels:
            multiplier = module.out_channels // module.in_channels
            reason = (f"{name!r} (a depthwise conv with channel multiplier {multiplier}: each input channel feeds "
                      f"{multiplier} output channels, which the next layer reads apart)")
            return ("depthwise", reason)
        return None
    if _groups_like_depthwise(module):
        return ("groups", f"{name!r} ({_groups_message(module)})")
    refusal = consumer_refusal(module) if is_in else producer_refusal(module)
    if refusal is not None:
        return ("type", f"{name!r} ({'input' if is_in else 'output'} channels; {refusal})")
    if not is_in and out_channels_of(module) != channels:
        return ("broadcast", f"{name!r} ({out_channels_of(module)} output channels broadcast over {channels})")
    return None


def _find_unit(graph: tp.DependencyGraph, producer: str, shared: bool, time_limit: float | None) -> ChannelUnit:
    model = graph.model
    module = find_layer(model, producer, "producer")
    refused = _root_refusal(module, producer)
    if refused is not None:
        raise refused
    if module not in graph.module2node:
        raise UnitRefused("unused", f"producer layer {producer!r} is not in the dependency graph (not used in forward)")
    names = {m: n for n, m in model.named_modules()}
    channels = out_channels_of(module)
    deadline = None if time_limit is None else time.monotonic() + time_limit
    unmapped = getattr(graph, "thinet_unmapped", {})
    hidden = getattr(graph, "thinet_hidden_operands", None)
    verdicts: dict[int, Verdict] = {}

    def verdict_of(node: Any) -> Verdict:
        if id(node) not in verdicts:
            verdicts[id(node)] = classify(node, unmapped, hidden)
        return verdicts[id(node)]

    group = pruning_group(graph, module, out_pruning_fn(module), list(range(channels)), deadline=deadline,
                          layer=producer, expand=lambda node: verdict_of(node).role != "refuse")
    producers, consumers, carried, problems = [producer], [], [], []
    splits: list[str] = []
    partial_producers: list[str] = []
    split_blocks_seen: list[int] = []  # the number of equal blocks each split cuts the channels into
    columns: dict[str, list[tuple[int, int]]] = {}
    nodes: dict[str, Any] = {}
    for item in group:
        dep, node = item.dep, item.dep.target
        target = node.module
        is_in = graph.is_in_channel_pruning_fn(dep.handler) and not graph.is_out_channel_pruning_fn(dep.handler)
        if target is module and not is_in:
            continue
        verdict = verdict_of(node)
        if verdict.role in ("carry", "join"):
            # Per-channel maps (BatchNorm, activations, pooling), per-channel scale parameters, and joins of
            # aligned tensors: the tensors they join are in the group too, with their producers.
            continue
        if verdict.role == "refuse":
            problems.append((verdict.family, f"{node_label(graph, node)}, which {verdict.reason}"))
            continue
        if verdict.role == "split":
            refusal = _split_problem(graph, node, item, channels, splits, split_blocks_seen)
            if refusal is not None:
                problems.append(("split", refusal))
            continue
        name = names.get(target, node_label(graph, node))
        width = channels
        if not is_in and _contiguous_block(item.idxs, item.root_idxs, channels) and out_channels_of(target) > channels:
            # Outputs offset .. offset+C-1 of a wider layer: allowed only for an SE expand conv (checked below).
            width = out_channels_of(target)
            partial_producers.append(name)
        problem = _layer_problem(name, target, is_in, width)
        if problem is not None:
            problems.append(problem)
            continue
        if _is_depthwise(target):
            if name not in carried:
                carried.append(name)
            continue
        nodes[name] = node
        if is_in:
            consumers.append(name)
            columns[name] = list(zip(item.idxs, item.root_idxs))
        elif name not in producers:
            producers.append(name)
    if problems:
        raise UnitRefused(problems[0][0], f"output channels of {producer!r} reach {_listed([p for _, p in problems])}; "
                          "a channel unit passes only through per-channel operations (BatchNorm, activations, "
                          "pooling, dropout, flatten, residual adds, squeeze-and-excitation products) to "
                          "nn.Conv2d / nn.Linear consumers")
    gated, reduces = False, []
    for expand in list(producers[1:]):  # an SE gate: its expand conv is fed by a reduce conv of these channels
        reduce = next((c for c in consumers if _pooled(nodes[c])
                       and _feeds_directly(nodes[expand], nodes[c], _SE_DEPTH)), None)
        if reduce is not None:
            producers.remove(expand)
            consumers.remove(reduce)
            carried += [reduce, expand]
            reduces.append(reduce)
            gated = True
    wider = [p for p in producers if p in partial_producers]
    if wider:
        raise UnitRefused("broadcast", f"output channels of {producer!r} reach {_listed(wider)} (a layer with "
                          "more output channels, joined to them at an offset: only a squeeze-and-excitation "
                          "gate may be)")
    if not consumers:
        raise UnitRefused("output", f"output channels of {producer!r} reach no conv/linear consumer "
                          "(they feed the model output)")
    reused = reused_layers(graph, *producers, *consumers, *carried)
    if reused:
        raise UnitRefused("reused", f"layer(s) {_listed(reused)} run more than once per forward pass (shared "
                          f"weights); the channels of {producer!r} cannot be cut")
    modules = dict(model.named_modules())
    windows, spans = [], []
    for name in consumers + reduces:
        found = consumer_span(columns[name], modules[name])
        if found is None:
            raise UnitRefused("mapping", f"consumer {name!r} does not read the {channels} channels of "
                              f"{producer!r} as whole contiguous blocks of its {in_channels_of(modules[name])} inputs")
        offset, width, first, count = found
        if count != channels:
            if not splits or name in reduces:
                raise UnitRefused("mapping", f"consumer {name!r} reads only channels {first}..{first + count - 1} "
                                  f"of {producer!r}, and no split the cut can follow gives it those")
            spans.append((name, first, count))
        if (offset, width) != (0, channels) or count != channels:
            windows.append((name, offset, width))
    grouped = [n for n in consumers if getattr(modules[n], "groups", 1) > 1]
    if any(n in grouped for n, _, _ in windows):
        raise UnitRefused("concat", f"a grouped consumer of {producer!r} reads its channels inside a concatenation "
                          "or a split")
    groups = 1
    for name in grouped + [p for p in producers if getattr(modules[p], "groups", 1) > 1]:
        groups = math.lcm(groups, modules[name].groups)
    for blocks in split_blocks_seen:  # each segment of a split keeps the same share: equal blocks stay equal
        groups = math.lcm(groups, blocks)
    if channels % groups:
        raise UnitRefused("groups", f"the {channels} channels of {producer!r} do not split into the {groups} "
                          "groups of its grouped producers and consumers and its split segments")
    # A join of tensors that all come from this producer (y * f(y)) stays per channel; one that brings
    # another producer, or a channel read by a second consumer, makes the channels shared. Consumers
    # that a split gives disjoint segments each read their own channels, as the groups of a grouped conv.
    covered = sorted((first, count) for _, first, count in spans)
    disjoint = len(spans) == len(consumers) and all(a[0] + a[1] <= b[0] for a, b in itertools.pairwise(covered))
    if not shared and (len(producers) > 1 or (len(consumers) > 1 and not disjoint)):
        others = producers[1:] + consumers[1:]
        raise UnitRefused("shared", f"output channels of {producer!r} are shared with {_listed(others)} "
                          "(a residual stream or several consumers; enable shared channels to prune them)")
    block = channels // groups
    for name, first, count in spans:
        if first % block or count % block:
            raise UnitRefused("split", f"consumer {name!r} reads channels {first}..{first + count - 1} of "
                              f"{producer!r}, across the blocks of {block} channels that keep equal shares")
    return ChannelUnit(producer, tuple(producers), tuple(consumers), tuple(carried), channels, groups,
                       tuple(grouped), gated, tuple(windows), tuple(reduces), tuple(spans), tuple(splits))


def _contiguous_block(idxs: list[int], root_idxs: list[int], channels: int) -> bool:
    """Whether producer channels 0..C-1 (`root_idxs`) sit at one contiguous block of a layer's indices (`idxs`)."""
    pairs = sorted(zip(root_idxs, idxs))
    return [r for r, _ in pairs] == list(range(channels)) and \
        [i for _, i in pairs] == list(range(pairs[0][1], pairs[0][1] + channels))


def _split_problem(graph: tp.DependencyGraph, node: Any, item: Any, channels: int, splits: list[str],
                   blocks_seen: list[int]) -> str | None:
    """Why the channel split `node` forbids the unit (None when its sizes follow the cut: recorded in `splits`,
    the number of equal blocks it cuts the producer's channels into in `blocks_seen`)."""
    label = node_label(graph, node)
    try:
        plan = split_plan(graph, node, label)
    except SplitRefusal as err:
        return str(err)
    blocks = split_blocks(item.idxs, item.root_idxs, plan.sizes)
    width = len(blocks[0])
    contiguous = all(b == list(range(b[0], b[0] + width)) for b in blocks)
    if not contiguous or any(len(b) != width for b in blocks) or width * len(blocks) != channels:
        sizes = [len(b) for b in blocks]
        return (f"{label}, whose segments take unequal or scattered shares {sizes} of the {channels} channels "
                "(each segment must keep the same share)")
    if plan.equal and len(blocks) != len(plan.sizes):
        return (f"{label}, which re-divides its {sum(plan.sizes)} channels into {len(plan.sizes)} equal segments, "
                f"but the cut reaches only {len(blocks)} of them")
    if plan.describe() not in splits:
        splits.append(plan.describe())
    blocks_seen.append(len(blocks))
    return None

