"""APoZ, Average Percentage of Zeros (Hu et al., 2016; ThiNet §4.1): keep the least sparse channels.

Scored on the producer's own post-ReLU output (after its BatchNorm, **before** any
pooling), over every selection image and position. After a max-pooling a zero
would need the whole window to be zero, so the consumer's input is not it. A
producer with no ReLU module on its output (after its BatchNorm) is a PruningError
naming the layer: APoZ is not defined there (`CriterionContext.post_relu_activations`).
"""
from __future__ import annotations

import torch

from baselines._ranking import keep_smallest
from thinet.criteria import CriterionContext, register_criterion, relu_refusal
from thinet.types import PruningError


def apoz_scores(ctx: CriterionContext) -> torch.Tensor:
    """Fraction of zeros of the producer's post-ReLU output per channel, over all images and positions."""
    zeros = torch.zeros(ctx.num_channels, dtype=torch.float64)
    count = 0
    for act in ctx.post_relu_activations():
        per_channel = act.transpose(0, 1).reshape(ctx.num_channels, -1)
        zeros += (per_channel == 0).sum(dim=1).double().cpu()
        count += per_channel.shape[1]
    if count == 0:
        raise PruningError(f"apoz on layer {ctx.pair.producer!r}: no images in the selection batches")
    return zeros / count


@register_criterion("apoz")
def apoz(ctx: CriterionContext) -> torch.Tensor:
    return keep_smallest(apoz_scores(ctx), ctx.n_keep)


# Checked on every layer of a chain before any compute: the post-ReLU output must exist.
apoz.layer_check = lambda model, pair, example_inputs: relu_refusal(model, pair.producer, example_inputs)  # type: ignore[attr-defined]
