"""BatchNorm scale, Network Slimming's channel score (Liu, Li, Shen, Huang, Yan, Zhang, ICCV 2017): keep the
channels whose BatchNorm scale factor γ is largest in magnitude.

The score of producer channel c is |γ_c| of the producer's BatchNorm: the affine BatchNorm that runs
directly on the producer's output, i.e. the first module the forward pass runs on it
(`thinet.criteria.batchnorm_refusal` says whether it is one). The `n_keep` largest |γ| are kept; ties
go to the lower channel index. Only γ is looked at (not β, not the running statistics), and no image:
which module runs on the output is traced on the context's example inputs (else two selection images).

This scores the γ of the model it is given. Network Slimming proper trains the base network with an
L1 penalty on every γ (sparsity training, the paper's Eq. 1) so that the γ of unimportant channels go
to zero before they are pruned; that sparsity-trained base is not built here, so on an ordinarily
trained model this is the paper's criterion without its training.

A producer without a BatchNorm directly on its output, or with a non-affine one (no γ), is a
PruningError naming the layer: before any compute through `bn_scale.layer_check`
(`thinet.criteria.layer_refusal`), and from the criterion itself when run directly.
"""
from __future__ import annotations

import torch
from torch import nn

from baselines._ranking import keep_largest
from thinet.criteria import CriterionContext, batchnorm_refusal, first_module_on_output, register_criterion
from thinet.sampling import first_images
from thinet.types import PruningError


def bn_scale_scores(bn: nn.Module) -> torch.Tensor:
    """|γ| per channel of an affine BatchNorm (float64).

    >>> bn = nn.BatchNorm2d(3)
    >>> bn.weight.data = torch.tensor([0.5, -2.0, 1.0])
    >>> bn_scale_scores(bn).tolist()
    [0.5, 2.0, 1.0]
    """
    return bn.weight.detach().abs().double().cpu()


def producer_batchnorm(ctx: CriterionContext) -> nn.modules.batchnorm._BatchNorm:
    """The affine BatchNorm run directly on the producer's output, or PruningError naming the layer
    (`batchnorm_refusal`'s answer, the same as `bn_scale.layer_check`, from one traced forward pass)."""
    # The context's example inputs, else two selection images (a plain model has no input size of its own).
    example = ctx.example_inputs if ctx.example_inputs is not None else first_images(ctx.batches, 2)
    example = example.to(ctx.device)
    reason = batchnorm_refusal(ctx.model, ctx.pair.producer, example)
    if reason is None:
        bn = first_module_on_output(ctx.model, ctx.pair.producer, example)[1]
        if bn.num_features != ctx.num_channels:
            reason = f"its BatchNorm has {bn.num_features} channels, not {ctx.num_channels}"
    if reason is not None:
        raise PruningError(f"criterion 'bn_scale' cannot score layer {ctx.pair.producer!r}: {reason}")
    return bn


@register_criterion("bn_scale")
def bn_scale(ctx: CriterionContext) -> torch.Tensor:
    return keep_largest(bn_scale_scores(producer_batchnorm(ctx)), ctx.n_keep)


# Checked on every layer of a chain before any compute: the producer's BatchNorm must exist.
bn_scale.layer_check = lambda model, pair, example_inputs: batchnorm_refusal(model, pair.producer, example_inputs)  # type: ignore[attr-defined]
