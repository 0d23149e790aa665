"""Weight sum (Li et al., ICLR 2017): keep the producer filters of largest l1 norm.

s_i = sum |W(i, :, :, :)| (paper §4.1). Data-free: the images are not looked at.
"""
from __future__ import annotations

import torch

from baselines._ranking import keep_largest
from thinet.criteria import CriterionContext, register_criterion


def weight_sum_scores(weight: torch.Tensor) -> torch.Tensor:
    """Per-filter l1 norm of a D x C x K x K (or D x C) weight.

    >>> weight_sum_scores(torch.tensor([[1.0, -2.0], [0.5, 0.5]])).tolist()
    [3.0, 1.0]
    """
    return weight.detach().abs().flatten(1).sum(dim=1)


@register_criterion("weight_sum")
def weight_sum(ctx: CriterionContext) -> torch.Tensor:
    return keep_largest(weight_sum_scores(ctx.producer.weight), ctx.n_keep)
