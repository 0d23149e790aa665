"""Top-1 / top-5 accuracy and mean cross-entropy of a classifier on a labelled loader.

Single view: each image is evaluated as the loader's evaluation transform gives
it (the paper's centre crop).

>>> import torch
>>> from torch import nn
>>> model = nn.Linear(3, 3, bias=False); _ = nn.init.eye_(model.weight)
>>> x = torch.eye(3); y = torch.tensor([0, 1, 0])
>>> evaluate(model, [(x, y)])["top1"]
66.66666666666667
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["evaluate", "model_device"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless model)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def evaluate(model: nn.Module, loader: Iterable, *, device: str | torch.device | None = None,
             max_images: int | None = None) -> dict[str, float]:
    """`{"top1", "top5", "loss", "images"}` (accuracies in %) over `loader`'s `(x, y)` batches.

    `max_images` stops after that many images (the last batch is cut), for
    cheap per-step evaluations on a fixed prefix of the evaluation split.
    Top-5 is top-k with k = min(5, number of classes). The model's train/eval
    state is given back afterwards.
    """
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1):
        raise ValueError(f"max_images must be a positive int or None, got {max_images!r}")
    device = torch.device(device) if device is not None else model_device(model)
    states = [(m, m.training) for m in model.modules()]
    model.to(device).eval()
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top1, top5, images
    seen = 0
    try:
        with torch.inference_mode():
            for batch in loader:
                if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                    raise ValueError(f"evaluate needs (images, labels) batches, got {type(batch).__name__}")
                images, labels = batch[0], batch[1]
                if max_images is not None:
                    images, labels = images[: max_images - seen], labels[: max_images - seen]
                images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                logits = model(images).float()
                k = min(5, logits.shape[1])
                hits = logits.topk(k, dim=1).indices == labels[:, None]
                totals += torch.stack([F.cross_entropy(logits, labels, reduction="sum").double(),
                                       hits[:, 0].sum().double(), hits.any(1).sum().double(),
                                       torch.tensor(float(labels.numel()), dtype=torch.float64, device=device)])
                seen += labels.numel()
                if max_images is not None and seen >= max_images:
                    break
    finally:
        for module, training in states:
            module.training = training
    loss_sum, top1, top5, images = totals.tolist()
    if images == 0:
        raise ValueError("evaluate got no images from the loader")
    return {"top1": 100.0 * top1 / images, "top5": 100.0 * top5 / images, "loss": loss_sum / images,
            "images": int(images)}
