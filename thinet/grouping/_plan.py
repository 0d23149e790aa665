"""Which convs of a model become grouped convs, and where each one's channel permutations fold away.

A conv is grouped unless it cannot be: a grouped conv already, the first conv on the image (1–3 input
channels), C or D not divisible by g, a layer run twice. A permutation of a conv's *inputs* folds into
its producer when the two form a plain ThiNet pair (`thinet.surgery.coupling_error`: only BatchNorm,
activations, pooling, dropout and flatten between) and the producer stays dense; a permutation of its
*outputs* folds into its own BatchNorm and its consumer's inputs when they form a plain pair. Elsewhere
the permutation is an explicit `ChannelShuffle`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch_pruning as tp
from torch import nn

from thinet.surgery import (
    build_graph,
    coupling_error,
    coupling_of,
    is_prunable_layer,
    reused_layers,
)
from thinet.types import LayerPair, PruningError

# A conv reading this few channels reads the image: nothing to group (ThiNet keeps conv1_1 too).
MAX_IMAGE_CHANNELS = 3
_MAX_NAMES = 4


@dataclass(frozen=True)
class Fold:
    """A plain pair whose channels can be relabelled without changing the model's function: the
    producer's filters, the BatchNorms between (`norms`) and the consumer's inputs permuted together."""

    producer: str
    consumer: str
    norms: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerConversion:
    """One conv to group; `input_fold`/`output_fold`: where its input/output order folds (None: a shuffle)."""

    layer: str
    input_fold: Fold | None = None
    output_fold: Fold | None = None


@dataclass
class GroupPlan:
    """The convs grouped with g groups (`layers`, in forward order) and the others, with the reason."""

    groups: int
    layers: list[LayerConversion] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The plan as text: what is grouped, then one line per skipped conv with its reason."""
        names = [s.layer for s in self.layers]
        shown = ", ".join(names[:_MAX_NAMES]) + (f", ... ({len(names) - _MAX_NAMES} more)" if len(names) > _MAX_NAMES
                                                else "")
        return [f"group {len(names)} conv(s) into {self.groups} groups: {shown}"] + [
            f"skip {layer}: {reason}" for layer, reason in self.skipped.items()]


def _reason(conv: nn.Conv2d, groups: int) -> str | None:
    if conv.groups != 1:
        return f"already a grouped conv (groups={conv.groups})"
    if conv.in_channels <= MAX_IMAGE_CHANNELS:
        return f"reads the image ({conv.in_channels} input channels)"
    if conv.in_channels % groups or conv.out_channels % groups:
        return f"C={conv.in_channels} inputs and D={conv.out_channels} filters are not both divisible by g={groups}"
    return None


def _norms(graph: tp.DependencyGraph, module: nn.Module, names: dict[nn.Module, str]) -> tuple[str, ...]:
    """The BatchNorms that carry `module`'s output channels."""
    prune = tp.prune_conv_out_channels if isinstance(module, nn.Conv2d) else tp.prune_linear_out_channels
    channels = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
    group = graph.get_pruning_group(module, prune, list(range(channels)))
    found = [names[item.dep.target.module] for item in group
             if isinstance(item.dep.target.module, nn.modules.batchnorm._BatchNorm)]
    return tuple(dict.fromkeys(found))


def _plain_pairs(graph: tp.DependencyGraph, modules: dict[str, nn.Module]) -> dict[str, Fold]:
    """Producer -> its plain pair, for every dense conv/linear with exactly one plain consumer."""
    names = {m: n for n, m in modules.items()}
    pairs = {}
    for name in graph.thinet_call_order:
        if not is_prunable_layer(modules[name]):
            continue
        try:
            consumers = coupling_of(graph, name).consumers
        except PruningError:
            continue
        if len(consumers) == 1 and is_prunable_layer(modules[consumers[0]]) \
                and coupling_error(graph, LayerPair(name, consumers[0])) is None:
            pairs[name] = Fold(name, consumers[0], _norms(graph, modules[name], names))
    return pairs


def plan_grouping(model: nn.Module, groups: int, example_inputs: Any, *, strict: bool = False) -> GroupPlan:
    """Every conv of `model` that can become a g-group conv, with where its permutations fold.

    `strict=True` refuses (PruningError naming each layer and why) instead of skipping.

    >>> import torch
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
    ...                     nn.Conv2d(8, 6, 1))
    >>> plan = plan_grouping(net, 4, torch.zeros(1, 3, 12, 12))
    >>> plan.lines()
    ['group 1 conv(s) into 4 groups: 3', 'skip 0: reads the image (3 input channels)', 'skip 5: C=8 inputs and D=6 filters are not both divisible by g=4']
    >>> plan.layers[0].input_fold
    Fold(producer='0', consumer='3', norms=('1',))
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 2:
        raise PruningError(f"groups must be an int >= 2, got {groups!r}")
    graph = build_graph(model, example_inputs)
    modules = dict(model.named_modules())
    plan = GroupPlan(groups)
    convs = [n for n in graph.thinet_call_order if isinstance(modules[n], nn.Conv2d)]
    reused = set(reused_layers(graph, *convs))
    for name in convs:
        reason = "runs more than once per forward pass" if name in reused else _reason(modules[name], groups)
        if reason is not None:
            plan.skipped[name] = reason
    if strict and plan.skipped:
        listed = "; ".join(f"layer {layer!r}: {reason}" for layer, reason in plan.skipped.items())
        raise PruningError(f"cannot group every conv into {groups} groups: {listed}")
    grouped = [n for n in convs if n not in plan.skipped]
    if not grouped:
        listed = "; ".join(f"layer {layer!r}: {reason}" for layer, reason in plan.skipped.items()) or "no Conv2d"
        raise PruningError(f"no conv of {type(model).__name__} can be grouped into {groups} groups ({listed})")
    pairs = _plain_pairs(graph, modules)
    producer_of = {fold.consumer: fold for fold in pairs.values()}
    for name in grouped:
        feed = producer_of.get(name)
        # A producer grouped earlier in forward order can no longer absorb a permutation of its filters.
        plan.layers.append(LayerConversion(name, feed if feed is not None and feed.producer not in grouped else None,
                                           pairs.get(name)))
    return plan
