"""Random groups from the layer's seed: a baseline for gcos (rescaled by least squares per group like every grouping, unless `random_nols`),
and the data-free
stand-in of gcos's architecture (a shuffle before each grouped conv) in the architecture table."""
from __future__ import annotations

import torch

from thinet.grouping._registry import GroupingContext, register_grouping
from thinet.grouping._types import Grouping


@register_grouping("random")
def random_groups(ctx: GroupingContext) -> Grouping:
    """A uniformly random partition of the channels and of the filters into g equal groups."""
    gen = torch.Generator().manual_seed(int(ctx.seed))
    channels = torch.randperm(ctx.in_channels, generator=gen).chunk(ctx.groups)
    filters = torch.randperm(ctx.out_channels, generator=gen).chunk(ctx.groups)
    return Grouping(tuple(torch.sort(c).values for c in channels), tuple(torch.sort(f).values for f in filters))
