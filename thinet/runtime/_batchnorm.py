"""Re-estimating BatchNorm statistics after a pruning step.

Removing channels changes what every later BatchNorm sees, while its running mean and
variance still describe the unpruned network; "just after pruning" accuracy then partly
measures stale statistics rather than the channels chosen. Recomputing them on a few
images (the selection images, which every criterion of a chain shares) takes one
forward pass and touches no weight.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
>>> reestimate_batchnorm(net, [torch.randn(8, 1, 4, 4) + 3.0])
1
>>> bool(net[1].running_mean.abs().sum() > 0), net.training
(True, True)
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

__all__ = ["has_batchnorm", "reestimate_batchnorm"]


def has_batchnorm(model: nn.Module) -> bool:
    """Whether `model` holds a BatchNorm layer that tracks running statistics."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules())


def reestimate_batchnorm(model: nn.Module, batches: Iterable, *, device: str | torch.device | None = None) -> int:
    """Replace every BatchNorm's running mean/variance by the exact average over `batches`; returns the
    number of batches used. `batches` yields tensors or `(images, labels)`. Weights are unchanged and the
    model's train/eval state is given back.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    saved = [(m, m.momentum) for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the exact mean over the batches seen
    model.train()
    used = 0
    try:
        with torch.no_grad():
            for batch in batches:
                images = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(images.to(device))
                used += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(was_training)
    if used == 0:
        raise ValueError("reestimate_batchnorm: the batches are empty; BatchNorm statistics were reset and "
                         "cannot be re-estimated")
    return used
