"""Deterministic top-k over per-channel scores, shared by the score-based baselines."""
from __future__ import annotations

import torch


def keep_largest(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Indices of the `n_keep` largest scores; ties go to the lower channel index (stable sort).

    >>> keep_largest(torch.tensor([1.0, 3.0, 3.0, 0.5]), 2).tolist()
    [1, 2]
    """
    order = torch.sort(scores.detach().cpu().double(), descending=True, stable=True).indices
    return order[:n_keep]


def keep_smallest(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Indices of the `n_keep` smallest scores; ties go to the lower channel index.

    >>> keep_smallest(torch.tensor([0.2, 0.1, 0.1, 0.9]), 2).tolist()
    [1, 2]
    """
    order = torch.sort(scores.detach().cpu().double(), descending=False, stable=True).indices
    return order[:n_keep]
