"""Taylor expansion criterion (Molchanov et al., ICLR 2017): keep the largest |a * dL/da|.

Score of channel c: |mean over images and positions of a_c * dL/da_c|, where a is
layer i's output as layer i+1 sees it (the consumer's input) and L the
cross-entropy of each selection image with its label; scores are l2-normalised
per layer as in the paper. Each image's own loss gives its gradient (sum, not
mean, over a batch) so the score does not depend on how images are batched.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines._ranking import keep_largest
from thinet.criteria import CriterionContext, as_channels, consumer_input_hook, eval_mode, register_criterion
from thinet.types import PruningError


def taylor_scores(ctx: CriterionContext) -> torch.Tensor:
    """l2-normalised |mean(a * dL/da)| per producer channel."""
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
            product = (act * grad).transpose(0, 1).reshape(ctx.num_channels, -1)
            total += product.sum(dim=1).double().cpu()
            count += product.shape[1]
    if count == 0:
        raise PruningError(f"taylor on layer {ctx.pair.producer!r}: no images in the selection batches")
    scores = (total / count).abs()
    norm = scores.norm()
    return scores / norm if norm > 0 else scores


@register_criterion("taylor")
def taylor(ctx: CriterionContext) -> torch.Tensor:
    return keep_largest(taylor_scores(ctx), ctx.n_keep)
