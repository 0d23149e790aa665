"""The grouping registry: name -> a function choosing a conv's groups, filled by `@register_grouping`.

A grouping criterion is `fn(ctx: GroupingContext) -> Grouping`, a partition; `run_grouping` checks what
comes back (`check_grouping`) and rescales it by least squares per group (Eq. 7, from the layer's sampled
x̂), so that every criterion, gcos and the baselines alike, reaches the same conversion. Each registered
name also exists as `<name>_nols`: the same partition without the rescaling (as `thinet_nols` for ThiNet).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from thinet.grouping._greedy import group_least_squares
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
    _grams: torch.Tensor | None = None

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
        """G_d = X̂_dᵀX̂_d of every filter from the selection images (`collect_filter_grams`), sampled once
        per context (the criterion and the least squares after it share them)."""
        if self.batches is None:
            raise PruningError(f"layer {self.layer!r}: this grouping samples the layer's input (gcos, and the "
                               "least squares of every grouping but a `_nols` one); give selection images (batches)")
        if self._grams is None:
            self._grams = collect_filter_grams(self.model, self.layer, self.batches,
                                               samples_per_image=self.samples_per_image, seed=self.seed)
        return self._grams


GroupingFn = Callable[[GroupingContext], Grouping]


NOLS = "_nols"


@dataclass(frozen=True)
class GroupingEntry:
    """A registered criterion; `samples`: the criterion itself samples the layer; `least_squares`: its
    partition is rescaled by Eq. 7 per group (every name but the `_nols` ones)."""

    name: str
    fn: GroupingFn
    samples: bool
    least_squares: bool = True

    @property
    def needs_data(self) -> bool:
        """Selection images are required: to choose the partition or to rescale it."""
        return self.samples or self.least_squares


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
        if name.endswith(NOLS):
            raise PruningError(f"grouping {name!r}: names ending in {NOLS!r} are made by the registry (the same "
                               "partition without least squares); register the base name")
        _GROUPINGS[name] = GroupingEntry(name, fn, needs_data)
        return fn

    return decorate


def available_groupings() -> list[str]:
    """Names accepted by `get_grouping`, sorted.

    >>> available_groupings()
    ['contiguous', 'contiguous_nols', 'gcos', 'gcos_nols', 'random', 'random_nols']
    """
    return sorted([*_GROUPINGS, *(f"{name}{NOLS}" for name in _GROUPINGS)])


def get_grouping(name: str) -> GroupingEntry:
    """The entry called `name`; PruningError listing the known names otherwise.

    >>> get_grouping("gcos").needs_data, get_grouping("contiguous_nols").needs_data
    (True, False)
    """
    base = name.removesuffix(NOLS)
    if base not in _GROUPINGS:
        raise PruningError(f"unknown grouping {name!r}; known groupings: {', '.join(available_groupings())}")
    entry = _GROUPINGS[base]
    return GroupingEntry(name, entry.fn, entry.samples, least_squares=False) if name != base else entry


def run_grouping(name: str, ctx: GroupingContext) -> Grouping:
    """Run criterion `name` on `ctx` and check its answer (PruningError naming the layer)."""
    entry = get_grouping(name)
    conv = ctx.conv
    grouping = check_grouping(entry.fn(ctx), conv.in_channels, conv.out_channels, ctx.groups,
                              f"grouping {name!r} for layer {ctx.layer!r}")
    return group_least_squares(ctx.filter_grams(), grouping, ctx.layer) if entry.least_squares else grouping
