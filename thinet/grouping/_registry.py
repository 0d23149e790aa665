"""The grouping registry: name -> a function choosing a conv's groups, filled by `@register_grouping`.

A grouping criterion is `fn(ctx: GroupingContext) -> Grouping`; `run_grouping` checks what comes back
(`check_grouping`) so that every criterion, gcos and the baselines alike, reaches the same conversion.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from thinet.grouping._stats import collect_filter_grams, dense_conv
from thinet.grouping._types import Grouping, check_grouping
from thinet.types import PruningError


@dataclass
class GroupingContext:
    """What a grouping criterion sees for one layer: the model, the conv's name, g, and (for the
    data-driven ones) the selection images, their samples per image and the layer's seed.

    >>> ctx = GroupingContext(nn.Sequential(nn.Conv2d(4, 8, 3)), "0", groups=2)
    >>> ctx.in_channels, ctx.out_channels
    (4, 8)
    """

    model: nn.Module
    layer: str
    groups: int
    batches: Iterable[Any] | torch.Tensor | None = None
    seed: int = 0
    samples_per_image: int = 10

    @property
    def conv(self) -> nn.Conv2d:
        return dense_conv(self.model, self.layer)

    @property
    def in_channels(self) -> int:
        return self.conv.in_channels

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def filter_grams(self) -> torch.Tensor:
        """G_d = X̂_dᵀX̂_d of every filter from the selection images (`collect_filter_grams`)."""
        if self.batches is None:
            raise PruningError(f"layer {self.layer!r}: this grouping criterion samples the layer's input; "
                               "give selection images (batches)")
        return collect_filter_grams(self.model, self.layer, self.batches, samples_per_image=self.samples_per_image,
                                    seed=self.seed)


GroupingFn = Callable[[GroupingContext], Grouping]


@dataclass(frozen=True)
class GroupingEntry:
    """A registered criterion; `needs_data`: it samples the layer (selection images required)."""

    name: str
    fn: GroupingFn
    needs_data: bool


_GROUPINGS: dict[str, GroupingEntry] = {}


def register_grouping(name: str, *, needs_data: bool = False) -> Callable[[GroupingFn], GroupingFn]:
    """Decorator adding a grouping criterion under `name`.

    >>> @register_grouping("doc_contiguous")  # doctest: +SKIP
    ... def doc_contiguous(ctx): return Grouping.contiguous(ctx.in_channels, ctx.out_channels, ctx.groups)
    """
    def decorate(fn: GroupingFn) -> GroupingFn:
        known = _GROUPINGS.get(name)
        if known is not None and (known.fn.__module__, known.fn.__qualname__) != (fn.__module__, fn.__qualname__):
            raise PruningError(f"grouping {name!r} is already registered by {known.fn.__module__}")
        _GROUPINGS[name] = GroupingEntry(name, fn, needs_data)
        return fn

    return decorate


def available_groupings() -> list[str]:
    """Names accepted by `get_grouping`, sorted.

    >>> available_groupings()
    ['contiguous', 'gcos', 'gcos_nols', 'random']
    """
    return sorted(_GROUPINGS)


def get_grouping(name: str) -> GroupingEntry:
    """The entry called `name`; PruningError listing the known names otherwise.

    >>> get_grouping("gcos").needs_data
    True
    """
    if name not in _GROUPINGS:
        raise PruningError(f"unknown grouping {name!r}; known groupings: {', '.join(available_groupings())}")
    return _GROUPINGS[name]


def run_grouping(name: str, ctx: GroupingContext) -> Grouping:
    """Run criterion `name` on `ctx` and check its answer (PruningError naming the layer)."""
    entry = get_grouping(name)
    conv = ctx.conv
    return check_grouping(entry.fn(ctx), conv.in_channels, conv.out_channels, ctx.groups,
                          f"grouping {name!r} for layer {ctx.layer!r}")
