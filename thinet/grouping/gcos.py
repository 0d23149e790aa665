"""gcos (TPAMI 2019, reconstructed): groups chosen by ThiNet's reconstruction error (`thinet.grouping._greedy`'s
docstring derives it). Least squares per group (Eq. 7) is applied by the registry to every grouping, gcos
and the baselines alike; `gcos_nols` (made by the registry) keeps gcos's groups without it, as
`thinet_nols` does for ThiNet."""
from __future__ import annotations

from thinet.grouping._greedy import gcos_partition
from thinet.grouping._registry import GroupingContext, register_grouping
from thinet.grouping._types import Grouping


@register_grouping("gcos", needs_data=True)
def gcos(ctx: GroupingContext) -> Grouping:
    """The partition of least reconstruction error from the sampled x̂."""
    return gcos_partition(ctx.filter_grams(), ctx.groups, least_squares=False, layer=ctx.layer)
