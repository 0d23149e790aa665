"""Taylor expansion criterion (Molchanov et al., ICLR 2017, Eq. 8): keep the largest scores.

For example n and channel k, the score is |1/M Σ_positions a·∂L/∂a| (mean over the
M positions of the feature map, *then* the absolute value); it is averaged over
the examples and l2-normalised per layer. Taking the absolute value per example
matters: examples whose products have opposite signs must not cancel.

`a` is layer i's output as layer i+1 sees it (the consumer's input). For max
pooling between the two this gives the same ranking as the pre-pooling map: the
gradient reaches only each window's maximum, where a equals the pooled value, so
Σ a·∂L/∂a is the same and only M changes, a per-layer constant the l2
normalisation removes. L is each selection image's own cross-entropy with its
label (sum, not mean, over a batch) so the score does not depend on batching.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines._ranking import keep_largest
from thinet.criteria import CriterionContext, as_channels, consumer_input_hook, eval_mode, register_criterion
from thinet.types import PruningError


def taylor_scores(ctx: CriterionContext) -> torch.Tensor:
    """l2-normalised mean over examples of |mean over positions of a·∂L/∂a| per producer channel."""
    total = torch.zeros(ctx.num_channels, dtype=torch.float64)
    count = 0
    # The captured activation is a fresh leaf, so autograd.grad reaches it without
    # leaving any .grad on the model's parameters.
    with eval_mode(ctx.model), torch.enable_grad(), consumer_input_hook(ctx.consumer, require_grad=True) as seen:
        for x, y in ctx.iter_batches():
            if y is None:
                raise PruningError(f"taylor on layer {ctx.pair.producer!r} needs labelled (images, labels) batches")
            seen.clear()
            loss = F.cross_entropy(ctx.model(x), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, seen[0])
            act = as_channels(seen[0].detach(), ctx.num_channels, ctx.pair.consumer)
            grad = as_channels(grad, ctx.num_channels, ctx.pair.consumer)
            per_example = (act * grad).reshape(act.shape[0], ctx.num_channels, -1).double().mean(dim=2).abs()
            total += per_example.sum(dim=0).cpu()
            count += per_example.shape[0]
    if count == 0:
        raise PruningError(f"taylor on layer {ctx.pair.producer!r}: no images in the selection batches")
    scores = total / count
    norm = scores.norm()
    return scores / norm if norm > 0 else scores


@register_criterion("taylor")
def taylor(ctx: CriterionContext) -> torch.Tensor:
    return keep_largest(taylor_scores(ctx), ctx.n_keep)
