"""HRank (Lin, Ji, Wang, Zhang, Zhang, Tian, Shao, CVPR 2020): keep the channels whose feature maps
have the highest average rank.

For every selection image and producer channel, the rank of that channel's H x W feature map, taken
on the producer's own post-ReLU output (after its BatchNorm, **before** any pooling); a channel's
score is the mean of these ranks over the selection images, and the `n_keep` largest are kept. Many
channels share a mean rank (every rank is an integer, and full-rank maps are common): ties are broken
deterministically, the lower channel index is kept (`baselines._ranking.keep_largest`, a stable sort).

The rank is `torch.linalg.matrix_rank` with its default tolerance (σ ≤ max(H, W) · eps · σ_max counts
as zero, eps of the map's own dtype), which is what the authors' `torch.matrix_rank` became; the maps
are ranked in the dtype the model computes them in (float32 for a float32 model), as theirs were: in
float64 the rounding noise of a float32 map would count as rank.

Matched against the authors' code (github.com/lmbxmu/HRank, `rank_generation.py`,
`get_feature_hook`): a forward hook on the ReLU after each convolution (and its BatchNorm),
`torch.matrix_rank(output[i, j, :, :])` per image i and channel j, averaged over the images; the
pruning (`mask.py`, `layer_mask`) keeps `np.argsort(rank)[pruned_num:]`, the largest mean ranks.
Differences kept on purpose: they rank the first `--limit` (5) training batches of 128 images, with
the training augmentation, and break ties by numpy's (unstable) argsort; here the selection images
(evaluation transform) and the lower-index rule; they prune with a mask layer after layer, fine-tuning
in between, and the project prunes with its own strategies and fine-tuning.

A producer with no ReLU module on its output, or whose output is not an H x W map per channel (a
Linear layer), is a PruningError naming the layer, before any compute (`hrank.layer_check`).
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import nn

from baselines._ranking import keep_largest
from thinet.criteria import CriterionContext, register_criterion, relu_refusal
from thinet.models import find_layer
from thinet.types import LayerPair, PruningError


def post_relu_maps(ctx: CriterionContext) -> Iterator[torch.Tensor]:
    """The producer's post-ReLU output per batch with its spatial shape kept: N x C x H x W.

    Exactly the tensor of `CriterionContext.post_relu_activations` (what APoZ and CHIP read), which
    flattens H x W; the shape is read from the producer's own output (its BatchNorm and ReLU keep it).
    PruningError naming the layer when there is no ReLU module on it or the output is not 4-D.
    """
    shapes: list[torch.Size] = []
    handle = ctx.producer.register_forward_hook(lambda _m, _a, out: shapes.append(out.shape))
    try:
        for act in ctx.post_relu_activations():
            shape = shapes[-1]
            shapes.clear()
            if len(shape) != 4:
                raise PruningError(f"layer {ctx.pair.producer!r} outputs shape {tuple(shape)}, not N x "
                                   f"{ctx.num_channels} x H x W feature maps")
            yield act.reshape(shape[0], ctx.num_channels, shape[2], shape[3])
    finally:
        handle.remove()


def map_ranks(maps: torch.Tensor) -> torch.Tensor:
    """Rank of every H x W map of an N x C x H x W tensor (N x C), default tolerance, in the maps' dtype.

    >>> maps = torch.zeros(1, 3, 3, 3)
    >>> maps[0, 1] = torch.ones(3, 3)  # rank 1
    >>> maps[0, 2] = torch.eye(3)  # rank 3
    >>> map_ranks(maps).tolist()
    [[0, 1, 3]]
    """
    return torch.linalg.matrix_rank(maps)


def hrank_scores(ctx: CriterionContext) -> torch.Tensor:
    """Mean over the selection images of the rank of each channel's post-ReLU H x W map (float64)."""
    total = torch.zeros(ctx.num_channels, dtype=torch.float64)
    count = 0
    for maps in post_relu_maps(ctx):
        total += map_ranks(maps).sum(dim=0).double().cpu()
        count += maps.shape[0]
    if count == 0:
        raise PruningError(f"hrank on layer {ctx.pair.producer!r}: no images in the selection batches")
    return total / count


@register_criterion("hrank")
def hrank(ctx: CriterionContext) -> torch.Tensor:
    return keep_largest(hrank_scores(ctx), ctx.n_keep)


def feature_map_refusal(model: nn.Module, pair: LayerPair, example_inputs: Any) -> str | None:
    """Why the producer has no post-ReLU H x W feature maps, or None: its ReLU module (one forward pass on
    `example_inputs`), and a 2-D convolution (a Linear's output has no H x W map per channel)."""
    producer = find_layer(model, pair.producer, "producer")
    if not isinstance(producer, nn.Conv2d):
        return f"its output is not an H x W feature map per channel (a {type(producer).__name__}, not a Conv2d)"
    return relu_refusal(model, pair.producer, example_inputs)


# Checked on every layer of a chain before any compute.
hrank.layer_check = feature_map_refusal  # type: ignore[attr-defined]
