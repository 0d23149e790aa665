"""gcos (TPAMI 2019, reconstructed): groups chosen by ThiNet's reconstruction error, then least squares
per group (`thinet.grouping._greedy`'s docstring derives it); `gcos_nols` keeps the same groups
without the rescaling, as `thinet_nols` does for ThiNet."""
from __future__ import annotations

from thinet.grouping._greedy import gcos_partition
from thinet.grouping._registry import GroupingContext, register_grouping
from thinet.grouping._types import Grouping


@register_grouping("gcos", needs_data=True)
def gcos(ctx: GroupingContext) -> Grouping:
    """The partition of least reconstruction error from the sampled x̂, scaled by Eq. 7 per group."""
    return gcos_partition(ctx.filter_grams(), ctx.groups, layer=ctx.layer)


@register_grouping("gcos_nols", needs_data=True)
def gcos_nols(ctx: GroupingContext) -> Grouping:
    """gcos's partition with unit scales (no least squares)."""
    return gcos_partition(ctx.filter_grams(), ctx.groups, least_squares=False, layer=ctx.layer)
