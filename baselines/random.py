"""Random selection (§4.1): n_keep channels uniformly without replacement, from `ctx.seed`."""
from __future__ import annotations

import torch

from thinet.criteria import CriterionContext, register_criterion


@register_criterion("random")
def random_selection(ctx: CriterionContext) -> torch.Tensor:
    generator = torch.Generator().manual_seed(ctx.seed)
    return torch.randperm(ctx.num_channels, generator=generator)[: ctx.n_keep]
