"""Small value types shared by every stage of the engine.

A pruning *step* removes output channels (filters) of one layer, the
*producer* (layer i in the paper), together with the matching input channels of
the single layer that consumes them, the *consumer* (layer i+1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LayerPair:
    """A producer/consumer pair named by `model.named_modules()` keys.

    >>> LayerPair("features.0", "features.2")
    LayerPair(producer='features.0', consumer='features.2')
    """

    producer: str
    consumer: str


@dataclass(frozen=True)
class PruneStep:
    """Prune `pair.producer` keeping `int(C * keep_ratio)` (at least 1) channels.

    `group_end` marks the last layer of a group (VGG's conv1_2, conv2_2, conv3_3),
    which the paper fine-tunes one extra epoch at a lower learning rate (§4.2).
    """

    pair: LayerPair
    keep_ratio: float
    group_end: bool = False


@dataclass
class Selection:
    """The outcome of a channel choice for one layer pair.

    `keep` and `removed` are sorted, disjoint LongTensors covering `range(C)`;
    `scale` holds one factor per kept channel (ThiNet's w-hat, Eq. 7), ones when
    the criterion does not rescale.
    """

    keep: torch.Tensor
    removed: torch.Tensor
    scale: torch.Tensor

    @property
    def num_channels(self) -> int:
        return int(self.keep.numel() + self.removed.numel())

    @classmethod
    def from_keep(cls, keep: torch.Tensor, num_channels: int, scale: torch.Tensor | None = None) -> "Selection":
        """Build a Selection from kept indices (any order); scale defaults to ones."""
        keep = torch.as_tensor(keep, dtype=torch.long).flatten()
        order = torch.argsort(keep)
        keep = keep[order]
        mask = torch.ones(num_channels, dtype=torch.bool)
        mask[keep] = False
        removed = torch.nonzero(mask).flatten()
        if scale is None:
            scale = torch.ones(keep.numel())
        else:
            scale = torch.as_tensor(scale, dtype=torch.float32).flatten()[order]
        return cls(keep=keep, removed=removed, scale=scale)


def num_kept(num_channels: int, keep_ratio: float) -> int:
    """Channels kept at rate r (the paper's r is the fraction *kept*): int(C*r), at least 1.

    A tiny epsilon absorbs binary rounding (10 * 0.7 == 6.999...).

    >>> num_kept(64, 0.5), num_kept(10, 0.7), num_kept(3, 0.1)
    (32, 7, 1)
    """
    return max(1, int(num_channels * keep_ratio + 1e-9))


class PruningError(ValueError):
    """Raised on bad input before anything is computed or modified; the message names the culprit."""
