"""Capturing the input of layer i+1 (the consumer) without running the rest of the model.

A forward pre-hook on the consumer stores its input and raises a private
exception, so the forward pass stops right there.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn

from thinet.types import PruningError


class _Captured(Exception):
    """Raised by the pre-hook to stop the forward pass once the consumer's input is stored."""


def iter_batches(images: torch.Tensor, batch_size: int = 64) -> Iterator[torch.Tensor]:
    """Split one N×C×H×W tensor into batches of at most `batch_size` images.

    >>> [b.shape[0] for b in iter_batches(torch.zeros(5, 3, 4, 4), batch_size=2)]
    [2, 2, 1]
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise PruningError(f"iter_batches: batch_size must be a positive int, got {batch_size!r}")
    for start in range(0, images.shape[0], batch_size):
        yield images[start:start + batch_size]


def as_batches(batches: Iterable | torch.Tensor) -> Iterable:
    """Batches as given, or `iter_batches` of one big tensor."""
    return iter_batches(batches) if isinstance(batches, torch.Tensor) else batches


def images_of(batch: object) -> torch.Tensor:
    """The image tensor of a batch: the batch itself or the first item of an (x, y) pair."""
    images = batch[0] if isinstance(batch, (tuple, list)) else batch
    if not isinstance(images, torch.Tensor):
        raise PruningError(f"a batch must be a tensor or an (images, targets) pair, got {type(batch).__name__}")
    return images


def first_images(batches: Iterable | torch.Tensor, limit: int) -> torch.Tensor:
    """Up to `limit` images from the first batch (a tensor of images, or batches of images or (x, y) pairs).

    >>> first_images([(torch.zeros(5, 3, 4, 4), torch.zeros(5))], 2).shape
    torch.Size([2, 3, 4, 4])
    """
    for batch in as_batches(batches):
        return images_of(batch)[:limit]
    raise PruningError("no images in the selection batches")


def resolve_device(model: nn.Module, consumer: nn.Module, consumer_name: str,
                   device: torch.device | str | None) -> torch.device:
    """The device the samples are computed on: `device`, else the consumer's weight device."""
    home = consumer.weight.device
    if device is None:
        return home
    wanted = torch.device(device)
    if wanted.type != home.type or (wanted.index is not None and home.index is not None and wanted.index != home.index):
        raise PruningError(f"device={str(device)!r} but consumer {consumer_name!r} lives on {home}; move the model first")
    return home


def consumer_inputs(model: nn.Module, consumer: nn.Module, consumer_name: str,
                    batches: Iterable | torch.Tensor, device: torch.device) -> Iterator[torch.Tensor]:
    """Yield, batch by batch, the input of `consumer` in eval mode, without gradients.

    The modules' training flags are restored afterwards, each to its own value.
    """
    modes = {module: module.training for module in model.modules()}
    stored: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple) -> None:
        stored.append(args[0])
        raise _Captured

    handle = consumer.register_forward_pre_hook(hook)
    model.eval()
    try:
        for batch in as_batches(batches):
            images = images_of(batch).to(device)
            try:
                with torch.no_grad():
                    model(images)
            except _Captured:
                pass
            else:
                raise PruningError(f"consumer {consumer_name!r} was not called in the model's forward pass")
            yield stored.pop()
    finally:
        handle.remove()
        for module, training in modes.items():
            module.training = training
