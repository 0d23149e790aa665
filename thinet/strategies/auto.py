"""The `auto` strategy: every channel unit the dependency graph finds, for any CNN.

`plan_units` walks the conv/linear layers in call order and asks `thinet.surgery.find_unit`
for each one not already cut as part of an earlier unit; what it cannot prune is kept with
the reason, so `thinet prune --strategy auto` can list the plan before any compute.
Shared channels (residual streams, several consumers) are pruned only with
`shared_channels=True`; the paper leaves block outputs alone. What lies between a producer and
its consumers must be known to keep channels apart (`thinet.surgery`'s allow-list); anything
else is skipped naming the operation, and the search of each layer has a time limit.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from thinet.strategies._registry import register_strategy
from thinet.surgery import (
    UNIT_TIME_LIMIT_S,
    ChannelUnit,
    UnitRefused,
    build_graph,
    find_unit,
)
from thinet.types import LayerPair, PruneStep, PruningError

# One line per kind of skipped layer in `UnitPlan.lines`.
_SKIP_TITLES = {
    "depthwise": "depthwise convs (cut with the layer that feeds them when that layer is pruned)",
    "shared": "layers whose channels are shared (residual stream or several consumers; --shared-channels prunes them)",
    "concat": "layers whose channels meet a concatenation they cannot be followed through, or a channel slice",
    "split": "layers whose channels meet a split whose sizes cannot follow the cut (or into unequal shares)",
    "norm": "layers whose channels meet a LayerNorm/GroupNorm (normalises across channels)",
    "mixing": "layers whose channels meet an operation not known to keep channels apart (softmax over channels, "
              "indexing, gathering, shuffling, cross-channel normalisation)",
    "output": "layers feeding the model output",
    "reused": "layers run more than once per forward pass",
    "detached": "layers whose channels meet a tensor the trace cannot see (detached or constant)",
    "type": "layers whose type is not known to be linear (or whose inputs are weight-standardised)",
    "groups": "layers with groups == out_channels < in_channels",
    "broadcast": "layers whose channels are joined to a layer of another width",
    "timeout": "layers whose dependency search ran past its time limit",
    "error": "layers whose dependency analysis failed",
}
_MAX_NAMES = 3


@dataclass
class UnitPlan:
    """What `auto` prunes (`units`, in forward order) and what it skips: layer -> (kind, reason)."""

    units: list[ChannelUnit] = field(default_factory=list)
    skipped: dict[str, tuple[str, str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The plan as text: one line per unit, then one line per kind of skipped layer."""
        out = [f"prune {len(self.units)} channel unit(s):"] + [f"  {u.describe()}" for u in self.units]
        by_kind: dict[str, list[str]] = defaultdict(list)
        for layer, (kind, _) in self.skipped.items():
            by_kind[kind].append(layer)
        for kind, layers in by_kind.items():
            names = ", ".join(layers[:_MAX_NAMES]) + (f", ... ({len(layers) - _MAX_NAMES} more)"
                                                      if len(layers) > _MAX_NAMES else "")
            title = _SKIP_TITLES.get(kind, "layers that cannot be cut consistently")
            out.append(f"skip {len(layers)} {title}: {names}")
        return out

    @property
    def widest(self) -> int:
        """The most channels of any unit (0 without units): what the sample count must cover
        (`thinet.sampling.samples_per_image_for`)."""
        return max((unit.num_channels for unit in self.units), default=0)

    def steps(self, keep_ratio: float) -> list[PruneStep]:
        """One step per unit at `keep_ratio`: a plain pair as a plain step, any other unit coupled.

        PruningError listing every layer considered and why it was rejected when there is none.
        """
        if not self.units:
            reasons = "\n".join(f"  {layer}: {reason}" for layer, (_, reason) in self.skipped.items())
            raise PruningError("strategy 'auto' found no prunable layer; the layers considered and why each "
                               f"was rejected:\n{reasons or '  (no conv/linear layer)'}")
        return [PruneStep(unit.pair, keep_ratio, coupled=not unit.plain) for unit in self.units]


def plan_units(model: nn.Module, example_inputs: Any, *, shared_channels: bool = False,
               time_limit: float | None = UNIT_TIME_LIMIT_S) -> UnitPlan:
    """The channel units `auto` prunes and, for every other conv/linear layer, why not.

    `time_limit`: seconds the dependency search of one layer may take; past it the layer is
    skipped with a message naming it (kind "timeout") and the plan goes on.

    >>> import torch, torchvision
    >>> plan = plan_units(torchvision.models.mobilenet_v2(weights=None), torch.randn(1, 3, 32, 32))
    >>> plan.units[2].describe()
    'features.2.conv.0.0 -> features.2.conv.2 (96 channels; through features.2.conv.1.0)'
    """
    graph = build_graph(model, example_inputs)
    plan, covered = UnitPlan(), set()
    for name in graph.thinet_call_order:
        if name in covered:
            continue
        try:
            unit = find_unit(graph, name, shared=shared_channels, time_limit=time_limit)
        except UnitRefused as refusal:
            plan.skipped[name] = (refusal.kind, str(refusal))
            continue
        plan.units.append(unit)
        covered.update(unit.producers + unit.carried)
    for unit in plan.units:  # a depthwise conv refused early may be cut by a later unit
        for layer in unit.carried:
            plan.skipped.pop(layer, None)
    return plan


def find_prunable_pairs(model: nn.Module, example_inputs: Any) -> list[LayerPair]:
    """The plain pairs among `plan_units`: a conv/linear layer and its single plain consumer.

    Pairs come in forward order. Layers whose output channels also feed a residual
    add, a concat, a second consumer, a depthwise conv or the model output are left out.

    >>> import torch, torchvision
    >>> pairs = find_prunable_pairs(torchvision.models.resnet18(weights=None), torch.randn(1, 3, 32, 32))
    >>> pairs[0]
    LayerPair(producer='layer1.0.conv1', consumer='layer1.0.conv2')
    """
    return [unit.pair for unit in plan_units(model, example_inputs).units if unit.plain]


@register_strategy("auto", traces=True)
def auto(model: nn.Module, keep_ratio: float, example_inputs: Any, *,
         shared_channels: bool = False) -> list[PruneStep]:
    """Every unit of `plan_units` at `keep_ratio`; plain pairs as plain steps, the others coupled."""
    return plan_units(model, example_inputs, shared_channels=shared_channels).steps(keep_ratio)
