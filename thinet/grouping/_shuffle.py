"""The explicit channel shuffle: a fixed permutation of the channels, where it cannot be folded away."""
from __future__ import annotations

import torch
from torch import nn


class ChannelShuffle(nn.Module):
    """`x[:, order]`: output channel k is input channel `order[k]` (a buffer, saved with the model).

    gcos's "shuffling" is an arbitrary fixed permutation chosen from data; `torch.nn.ChannelShuffle`
    is ShuffleNet's special case (a transpose of g × C/g). It exports to ONNX as one Gather.

    >>> ChannelShuffle(torch.tensor([2, 0, 1]))(torch.arange(3.0).view(1, 3, 1, 1)).flatten().tolist()
    [2.0, 0.0, 1.0]
    """

    def __init__(self, order: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("order", torch.as_tensor(order, dtype=torch.long).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.order)

    def extra_repr(self) -> str:
        return f"channels={self.order.numel()}"
