"""The strategy registry: name -> planner, filled by `@register_strategy` in each strategy module.

A strategy is a callable `(model, keep_ratio, example_inputs, **options) -> list[PruneStep]`
(options such as `auto`'s `shared_channels` are keyword-only); it only plans, the surgery cuts.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from thinet.types import PruneStep, PruningError, check_keep_ratio

Strategy = Callable[[nn.Module, float, Any], list[PruneStep]]


@dataclass(frozen=True)
class _Entry:
    plan: Strategy
    traces: bool  # plans from the dependency graph, so it needs example_inputs


_STRATEGIES: dict[str, _Entry] = {}


def register_strategy(name: str, *, traces: bool = False) -> Callable[[Strategy], Strategy]:
    """Decorator adding a planner under `name`; `traces=True` when it needs `example_inputs`.

    >>> @register_strategy("doc_first_pair")  # doctest: +SKIP
    ... def first_pair(model, keep_ratio, example_inputs=None): ...
    """
    def decorate(plan: Strategy) -> Strategy:
        known = _STRATEGIES.get(name)
        if known is not None and known.plan is not plan:
            raise PruningError(f"strategy {name!r} is already registered by {known.plan.__module__}")
        _STRATEGIES[name] = _Entry(plan, traces)
        return plan

    return decorate


def available_strategies() -> list[str]:
    """Names accepted by `get_strategy`, sorted.

    >>> available_strategies()
    ['auto', 'resnet_bottleneck', 'vgg16_conv', 'vgg16_tiny']
    """
    return sorted(_STRATEGIES)


def get_strategy(name: str) -> Strategy:
    """The strategy called `name`; it checks `keep_ratio` (0 < r ≤ 1) before planning.

    >>> get_strategy("resnet_bottleneck").__name__
    'resnet_bottleneck'
    """
    if name not in _STRATEGIES:
        raise PruningError(f"unknown strategy {name!r}; known strategies: {', '.join(available_strategies())}")
    entry = _STRATEGIES[name]

    @functools.wraps(entry.plan)
    def checked(model: nn.Module, keep_ratio: float, example_inputs: Any = None, **options: Any) -> list[PruneStep]:
        check_keep_ratio(keep_ratio, f"strategy {name!r}")
        if entry.traces and example_inputs is None:
            raise PruningError(f"strategy {name!r} traces the model: pass example_inputs "
                               "(e.g. torch.randn(1, 3, 224, 224))")
        accepted = inspect.signature(entry.plan).parameters
        unknown = [key for key in options if key not in accepted]
        if unknown:
            raise PruningError(f"strategy {name!r} takes no option {unknown[0]!r}")
        return entry.plan(model, keep_ratio, example_inputs, **options)

    return checked
