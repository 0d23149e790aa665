"""FPGM, Filter Pruning via Geometric Median (He, Liu, Wang, Hu, Yang, CVPR 2019): keep the filters
farthest from the others.

Each producer filter F_i (weights only, no bias, flattened to one vector) scores
s_i = Σ_j ‖F_i − F_j‖₂, the sum of its Euclidean distances to all filters of the layer. The paper
relaxes the geometric median of a layer's filters to the filter minimising this sum: the filters
with the smallest sums lie nearest the geometric median, are the most replaceable by the others,
and are removed. The `n_keep` largest sums are kept; ties go to the lower channel index. Computed
in float64 with exact pairwise differences (no ‖a‖² + ‖b‖² − 2a·b shortcut, which loses the
distance between near-identical filters). Data-free: the images are not looked at.

Matched against the authors' code (github.com/he-y/filter-pruning-geometric-median,
`pruning_cifar10.py` and `pruning_imagenet.py`, `Mask.get_filter_similar`): `weight_vec =
weight.view(D, -1)`, `scipy.spatial.distance.cdist(..., 'euclidean')`, summed over one axis of the
(symmetric) matrix, the smallest sums removed. Not reproduced here, on purpose:

* their mix with norm pruning: `--rate_norm` first removes the filters of smallest l2 norm and the
  distances are then taken among the others only, `--rate_dist` removing the smallest sums. Pure
  FPGM, as here, is `rate_norm = 1` (their ImageNet ResNet scripts use exactly that);
* their soft pruning schedule (the selected filters are zeroed after every epoch of training and may
  come back, the layer's filters rescored each time): here the ranking is computed once, on the given
  model, and the filters are removed for good before the project's fine-tuning;
* their counts (`int(D * rate_dist)` removed) and `argsort` tie order: here `num_kept(D, r)` are kept
  and ties go to the lower channel index (`baselines._ranking.keep_largest`).
"""
from __future__ import annotations

import torch

from baselines._ranking import keep_largest
from thinet.criteria import CriterionContext, register_criterion


def fpgm_scores(weight: torch.Tensor) -> torch.Tensor:
    """Σ_j ‖F_i − F_j‖₂ per filter of a D x C x K x K (or D x C) weight, in float64.

    Three filters on a line at 0, 1 and 3: sums 0+1+3, 1+0+2, 3+2+0.

    >>> fpgm_scores(torch.tensor([[0.0], [1.0], [3.0]])).tolist()
    [4.0, 3.0, 5.0]
    """
    flat = weight.detach().flatten(1).double()
    distances = torch.cdist(flat, flat, p=2.0, compute_mode="donot_use_mm_for_euclid_dist")
    return distances.sum(dim=1).cpu()


@register_criterion("fpgm")
def fpgm(ctx: CriterionContext) -> torch.Tensor:
    return keep_largest(fpgm_scores(ctx.producer.weight), ctx.n_keep)
