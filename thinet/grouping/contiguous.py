"""Contiguous groups, as ResNeXt and ShuffleNet's grouped convs read their inputs: channels and filters
in index order, cut into g blocks; a baseline for gcos (no shuffle; rescaled by least squares per group like every grouping, unless
`contiguous_nols`)."""
from __future__ import annotations

from thinet.grouping._registry import GroupingContext, register_grouping
from thinet.grouping._types import Grouping


@register_grouping("contiguous")
def contiguous(ctx: GroupingContext) -> Grouping:
    """Input block j = channels jC/g … (j+1)C/g − 1, filter block j likewise."""
    return Grouping.contiguous(ctx.in_channels, ctx.out_channels, ctx.groups)
