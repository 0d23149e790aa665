"""The value a grouping criterion returns: which input channels and filters form each of g groups."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from thinet.types import PruningError


@dataclass(frozen=True)
class Grouping:
    """A partition of a conv's C input channels and D filters into g groups; filter group j reads
    input group j only. `inputs[j]` / `filters[j]` are sorted LongTensors of C/g and D/g indices;
    `scales[j]` (optional) holds one factor per input of group j, in `inputs[j]`'s order (Eq. 7's ŵ,
    fitted per group), ones when None.

    >>> g = Grouping.contiguous(4, 6, 2)
    >>> g.inputs[1].tolist(), g.filters[1].tolist(), g.groups
    ([2, 3], [3, 4, 5], 2)
    """

    inputs: tuple[torch.Tensor, ...]
    filters: tuple[torch.Tensor, ...]
    scales: tuple[torch.Tensor, ...] | None = None

    @property
    def groups(self) -> int:
        return len(self.inputs)

    @classmethod
    def contiguous(cls, in_channels: int, out_channels: int, groups: int) -> Grouping:
        """Channel and filter blocks in index order: what `nn.Conv2d(groups=g)` does by itself."""
        return cls(tuple(torch.arange(in_channels).chunk(groups)), tuple(torch.arange(out_channels).chunk(groups)))

    def input_order(self) -> torch.Tensor:
        """The input channels group after group: position k of the grouped conv reads channel order[k]."""
        return torch.cat(self.inputs)

    def filter_order(self) -> torch.Tensor:
        """The filters group after group: output k of the grouped conv is filter order[k]."""
        return torch.cat(self.filters)

    def input_scale(self) -> torch.Tensor | None:
        """The scales in `input_order`, or None (no rescaling)."""
        return None if self.scales is None else torch.cat([s.float() for s in self.scales])

    def mask(self) -> torch.Tensor:
        """D×C boolean mask of the connections the grouping keeps.

        >>> Grouping.contiguous(2, 2, 2).mask().tolist()
        [[True, False], [False, True]]
        """
        d = sum(f.numel() for f in self.filters)
        c = sum(i.numel() for i in self.inputs)
        keep = torch.zeros(d, c, dtype=torch.bool)
        for inputs, filters in zip(self.inputs, self.filters):
            keep[filters.unsqueeze(1), inputs.unsqueeze(0)] = True
        return keep


def _check_partition(parts: object, size: int, groups: int, label: str, where: str) -> None:
    if not isinstance(parts, tuple) or len(parts) != groups:
        count = len(parts) if isinstance(parts, (tuple, list)) else type(parts).__name__
        raise PruningError(f"{where}: {label} must be a tuple of {groups} index tensors, got {count}")
    width = size // groups
    for j, part in enumerate(parts):
        if not isinstance(part, torch.Tensor) or part.dim() != 1 or part.dtype != torch.long:
            raise PruningError(f"{where}: {label}[{j}] must be a 1-D LongTensor")
        if part.numel() != width:
            raise PruningError(f"{where}: {label}[{j}] has {part.numel()} indices; every group needs {size}/{groups} "
                               f"= {width}")
        if part.numel() > 1 and not bool((part[1:] > part[:-1]).all()):
            raise PruningError(f"{where}: {label}[{j}] must be sorted and unique, got {part.tolist()}")
    flat = torch.cat(parts)
    if int(flat.min()) < 0 or int(flat.max()) >= size or torch.unique(flat).numel() != size:
        raise PruningError(f"{where}: {label} do not partition range({size})")


def check_grouping(grouping: object, in_channels: int, out_channels: int, groups: int, where: str) -> Grouping:
    """`grouping` if it partitions C inputs and D filters into `groups` equal groups (with finite
    scales of the right shapes), else PruningError naming `where`: the one check of a grouping.

    >>> check_grouping(Grouping.contiguous(4, 4, 2), 4, 4, 2, "demo").groups
    2
    >>> check_grouping(Grouping.contiguous(4, 4, 2), 4, 4, 4, "demo")
    Traceback (most recent call last):
    ...
    thinet.types.PruningError: demo: inputs must be a tuple of 4 index tensors, got 2
    """
    if not isinstance(grouping, Grouping):
        raise PruningError(f"{where}: a grouping criterion must return a Grouping, got {type(grouping).__name__}")
    _check_partition(grouping.inputs, in_channels, groups, "inputs", where)
    _check_partition(grouping.filters, out_channels, groups, "filters", where)
    if grouping.scales is not None:
        if not isinstance(grouping.scales, tuple) or len(grouping.scales) != groups or any(
                not isinstance(s, torch.Tensor) or s.shape != i.shape for s, i in zip(grouping.scales, grouping.inputs)):
            raise PruningError(f"{where}: scales must be {groups} tensors, one factor per input of each group")
        if not all(bool(torch.isfinite(s).all()) for s in grouping.scales):
            raise PruningError(f"{where}: scales have non-finite values")
    return grouping
