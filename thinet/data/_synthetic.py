"""Deterministic synthetic images for fixture trees: a per-class template plus noise,
so a tiny model trained on a fixture can beat chance (the CI runs show learning)."""
from __future__ import annotations

import numpy as np

_GRID = 4


def class_templates(rng: np.random.Generator, num_classes: int, channels: int) -> np.ndarray:
    """One coarse random 4x4 colour grid per class: num_classes x 4 x 4 x channels."""
    return rng.uniform(0, 255, size=(num_classes, _GRID, _GRID, channels))


def render(rng: np.random.Generator, templates: np.ndarray, labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 N x H x W x C: each label's template upsampled (blocky, easy to tell apart) plus noise.

    >>> rng = np.random.default_rng(0)
    >>> render(rng, class_templates(rng, 2, 3), np.array([0, 1, 1]), 8, 6).shape
    (3, 8, 6, 3)
    """
    rows = np.minimum(np.arange(height) * _GRID // height, _GRID - 1)
    cols = np.minimum(np.arange(width) * _GRID // width, _GRID - 1)
    upsampled = templates[:, rows][:, :, cols]
    noise = rng.normal(0, 40, size=(len(labels), height, width, templates.shape[-1]))
    return np.clip(upsampled[labels] + noise, 0, 255).astype(np.uint8)
