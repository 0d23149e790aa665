"""Criteria a chain cannot use on its model, found while the plan is built, before any job runs.

A criterion may say it cannot score a layer (`layer_check`: BatchNorm scale without a BatchNorm,
APoZ without a ReLU; `thinet.criteria.layer_refusal`). For a chain pruning its base model the
plan builds that model's architecture (random weights, no data, never downloaded), plans the
strategy's steps and asks every criterion with such a check: a refused criterion is left out of
the plan and recorded (`Plan.refused`, shown beside the criteria tables), so `criteria: all`
means every criterion that can score the strategy's layers. Chains that start from another run's
model are checked by their own job before it prunes (`thinet.pipeline.prune_chain`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping


@dataclass(frozen=True)
class Refusal:
    """Criterion `criterion` of variant `variant` of `experiment` cannot score `layer`, because `reason`."""

    experiment: str
    variant: str
    criterion: str
    layer: str
    reason: str

    def line(self) -> str:
        return (f"experiment {self.experiment!r}, variant {self.variant!r}: criterion {self.criterion!r} cannot "
                f"score layer {self.layer!r} ({self.reason}); left out")


def _checked(criteria: list[str]) -> list[str]:
    from thinet.criteria import get_criterion

    return [name for name in criteria if getattr(get_criterion(name), "layer_check", None) is not None]


@lru_cache(maxsize=32)
def _planned(model_name: str, model_args: str, strategy: str, keep_ratio: float) -> tuple[Any, Any, tuple]:
    import torch

    from thinet.models import create_model, example_inputs
    from thinet.strategies import get_strategy

    torch.manual_seed(0)  # the weights do not matter, only the architecture
    model = create_model(model_name, 10, pretrained=False, **json.loads(model_args)).eval()
    example = example_inputs(model)
    steps = get_strategy(strategy)(model, keep_ratio, example)
    return model, example, tuple(step.pair for step in steps)


def refusals(base: Mapping[str, Any], strategy: str, keep_ratios: list[float], criteria: list[str],
             experiment: str, variant: str) -> list[Refusal]:
    """The criteria of `criteria` that cannot score a layer the `strategy` prunes in `base`'s model."""
    from thinet.criteria import layer_refusal

    checked = _checked(criteria)
    if not checked:
        return []
    found: dict[str, Refusal] = {}
    for r in keep_ratios:
        model, example, pairs = _planned(base["model"], json.dumps(base.get("model_args") or {}, sort_keys=True),
                                         strategy, float(r))
        for name in checked:
            for pair in pairs:
                if name in found:
                    break
                reason = layer_refusal(name, model, pair, example)
                if reason is not None:
                    found[name] = Refusal(experiment, variant, name, pair.producer, reason)
    return [found[name] for name in criteria if name in found]


def grouping_refusal(base: Mapping[str, Any], strategy: str, keep_ratio: float, groups: int) -> str | None:
    """Why no conv of the architecture a chain leaves (`strategy` at `keep_ratio` on `base`'s model, first
    channels kept: data-free) can be grouped into `groups` groups, or None when some can."""
    import copy

    from thinet.grouping import plan_grouping
    from thinet.strategies import get_strategy, prune_with_first_channels
    from thinet.types import PruningError

    model, example, _ = _planned(base["model"], json.dumps(base.get("model_args") or {}, sort_keys=True),
                                 strategy, float(keep_ratio))
    pruned = prune_with_first_channels(copy.deepcopy(model), get_strategy(strategy)(model, keep_ratio, example), example)
    try:
        plan_grouping(pruned, groups, example)
    except PruningError as err:
        return str(err)
    return None
