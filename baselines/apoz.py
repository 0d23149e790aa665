"""APoZ, Average Percentage of Zeros (Hu et al., 2016): keep the least sparse channels.

Scored on the consumer's input, i.e. the producer's channels after BN and ReLU
(and any pooling) as layer i+1 sees them, over every sampled image and position.
"""
from __future__ import annotations

import torch

from baselines._ranking import keep_smallest
from thinet.criteria import CriterionContext, register_criterion
from thinet.types import PruningError


def apoz_scores(ctx: CriterionContext) -> torch.Tensor:
    """Fraction of zero activations per channel over all images and positions."""
    zeros = torch.zeros(ctx.num_channels, dtype=torch.float64)
    count = 0
    for act in ctx.channel_activations():
        per_channel = act.transpose(0, 1).reshape(ctx.num_channels, -1)
        zeros += (per_channel == 0).sum(dim=1).double().cpu()
        count += per_channel.shape[1]
    if count == 0:
        raise PruningError(f"apoz on layer {ctx.pair.producer!r}: no images in the selection batches")
    return zeros / count


@register_criterion("apoz")
def apoz(ctx: CriterionContext) -> torch.Tensor:
    return keep_smallest(apoz_scores(ctx), ctx.n_keep)
