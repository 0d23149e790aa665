"""Splits and chunks along the channels: following the channels through them, and keeping the cut sound.

A producer's channels may reach consumers through `torch.split` / `torch.chunk` along dim 1 (MixNet's
mixed-kernel convs split the channels into one segment per kernel size; ghost- and ShuffleNet-style
blocks halve them). Removing channel c then removes it from its segment only, so a split stays
consistent exactly when the sizes it splits by become the new segment sizes on the next forward pass:

* `chunk(n)` re-divides whatever it gets: sound when every segment loses the same count (the
  segments are equal, the producer's channels cover all of them and each keeps `num_kept` of its
  share: the unit's `groups`), so the chunks stay equal and in place;
* `split(sizes)` (a list) or `split(size)` (an int) uses numbers from the forward code: sound when
  they live in one attribute of the module the split runs in (MixNet's `MixedConv2d.splits`), which
  the cut then rewrites; an int size also needs equal segments, as a chunk does;
* anything else (sizes computed in forward from the input, a literal in the code, no attribute or
  several holding them, unequal segments where they must stay equal) is refused naming the op and
  the layer. Every cut is still verified against the masked reference (`_verify.py`).

Torch-Pruning's own split index mapping pairs the split's outputs with the segments in the order
it met the consumers, which is not the segment order (measured: MixNet's three depthwise convs got
each other's channels); `update_split_mapping` pairs each consumer with the segment it reads
(the output number autograd records) and refuses a node that reads several segments at once.

    >>> import torch
    >>> x = torch.randn(1, 6, 2, 2, requires_grad=True)
    >>> split_sizes(torch.split(x, [2, 4], 1)[0].grad_fn)
    (1, [2, 4])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn
from torch_pruning.dependency.index_mapping import _SplitIndexMapping

# The functions whose calls are recorded while tracing (`build_graph`), to tell a chunk from a split.
SPLIT_FUNCTIONS = {"chunk", "split", "split_with_sizes", "unsafe_chunk", "unsafe_split", "unsafe_split_with_sizes"}
_SELF_ADJUSTING = {"chunk", "unsafe_chunk"}


class SplitRefusal(Exception):
    """Why a split's sizes cannot follow the cut (the message names the op and the module)."""


def _signed(dim: int) -> int:
    return dim - (1 << 64) if dim >= 1 << 63 else dim


def split_sizes(grad_fn: Any) -> tuple[int, list[int]] | None:
    """(dim, segment sizes) of a split's autograd node (the last segment of an int split may be smaller)."""
    dims = getattr(grad_fn, "_saved_self_sym_sizes", None)
    if dims is None or not hasattr(grad_fn, "_saved_dim"):
        return None
    rank = len(dims)
    dim = _signed(grad_fn._saved_dim) % rank
    total = int(dims[dim])
    if hasattr(grad_fn, "_saved_split_sizes"):
        return dim, [int(s) for s in grad_fn._saved_split_sizes]
    if hasattr(grad_fn, "_saved_split_size"):
        size = int(grad_fn._saved_split_size)
        sizes = [size] * (total // size) + ([total % size] if total % size else [])
        return dim, sizes
    return None


def _offsets(sizes: list[int]) -> list[int]:
    offsets = [0]
    for size in sizes:
        offsets.append(offsets[-1] + size)
    return offsets


def init_split_node(node: Any) -> None:
    """Give a split node of the graph its real segment sizes (Torch-Pruning repeats an int size once per
    *used* output, which is wrong when the last chunk is smaller or a chunk is unused)."""
    found = split_sizes(node.grad_fn)
    if found is not None and found[0] == 1:
        node.module.split_sizes = list(found[1])
        node.module.offsets = _offsets(found[1])


def segment_read(node: Any, split_node: Any) -> set[int]:
    """The segments (output numbers) of `split_node` that graph node `node` reads directly."""
    return {index for fn, index in getattr(node.grad_fn, "next_functions", ()) if fn is split_node.grad_fn}


def update_split_mapping(graph: Any, node: Any) -> None:
    """Index mapping of a channel split: each consumer node gets the offsets of the segment it reads.

    Raises ValueError for a node reading several segments (refused by the caller's fail-safe).
    """
    found = split_sizes(node.grad_fn)
    if found is None or found[0] != 1 or node.module.split_sizes is None or not node.enable_index_mapping:
        return  # a split along another axis keeps the channels where they are
    offsets = _offsets(list(node.module.split_sizes))
    node.module.offsets = offsets  # Torch-Pruning's split pruner updates the sizes, not the offsets
    for out_node in node.outputs:
        segments = segment_read(out_node, node)
        if len(segments) != 1:
            raise ValueError(f"a node reads segments {sorted(segments)} of one split")
        k = segments.pop()
        for dep in node.dependencies:
            if dep.target is out_node:
                dep.index_mapping[0] = _SplitIndexMapping(offset=offsets[k:k + 2], reverse=False)
        for dep in out_node.dependencies:
            if dep.target is node:
                dep.index_mapping[0] = _SplitIndexMapping(offset=offsets[k:k + 2], reverse=True)


@dataclass(frozen=True)
class SplitPlan:
    """How a channel split follows a cut: `owner` (the module it runs in), `attribute` holding its sizes
    (None for a chunk), `equal`: every segment must lose the same count (a chunk, an int size)."""

    owner: str
    attribute: str | None
    equal: bool
    sizes: tuple[int, ...]

    def describe(self) -> str:
        """'chunk in ...' or 'split in ... (sizes in .attribute)' for a plan listing."""
        where = f"in {self.owner!r}" if self.owner else "in the model's forward"
        if self.attribute is None:
            return f"chunk {where}"
        return f"split {where} (sizes in .{self.attribute})"


def _matching_attributes(module: nn.Module, sizes: list[int], as_int: bool) -> list[str]:
    found = []
    for attr, value in vars(module).items():
        if attr.startswith("_"):
            continue
        if as_int and isinstance(value, int) and not isinstance(value, bool) and value == sizes[0] or not as_int and isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value) \
                and list(value) == sizes:
            found.append(attr)
    return found


def split_plan(graph: Any, node: Any, label: str) -> SplitPlan:
    """How the channel split `node` follows a cut, or `SplitRefusal` naming it (`label`) and why not."""
    found = split_sizes(node.grad_fn)
    if found is None or node.module.split_sizes is None:
        raise SplitRefusal(f"{label}, whose segment sizes the trace does not record")
    # The graph's split op holds the current sizes (the trace's are stale once a chain step has cut them).
    sizes = [int(s) for s in node.module.split_sizes]
    owner = getattr(graph, "thinet_op_owner", {}).get(node.grad_fn, "")
    calls = getattr(graph, "thinet_split_calls", {})
    function = calls.get(node.grad_fn, "")
    equal = len(set(sizes)) == 1
    if function in _SELF_ADJUSTING:
        if not equal:
            raise SplitRefusal(f"{label}, a chunk into unequal segments {sizes} (it would re-divide the cut "
                               "channels differently)")
        return SplitPlan(owner, None, True, tuple(sizes))
    module = graph.model.get_submodule(owner) if owner else graph.model
    as_int = hasattr(node.grad_fn, "_saved_split_size")
    if as_int and not equal:
        raise SplitRefusal(f"{label}, a split by size {sizes[0]} into unequal segments {sizes}")
    where = f"module {owner!r}" if owner else "the model's own forward"
    attributes = _matching_attributes(module, sizes, as_int)
    if len(attributes) != 1:
        held = "no attribute of" if not attributes else f"several attributes ({', '.join(attributes)}) of"
        value = sizes[0] if as_int else sizes
        raise SplitRefusal(f"{label}, which splits them by {value}: {held} {where} holds those sizes, so the "
                           "cut cannot make the split follow it")
    return SplitPlan(owner, attributes[0], as_int, tuple(sizes))


def split_blocks(idxs: list[int], root_idxs: list[int], sizes: list[int] | tuple[int, ...]) -> list[list[int]]:
    """The producer channels (`root_idxs`) that reach each segment the split's inputs `idxs` fall in, per segment
    in segment order (segments they do not reach are left out).

    >>> split_blocks([0, 1, 2, 3], [0, 1, 2, 3], [2, 2])
    [[0, 1], [2, 3]]
    """
    offsets = _offsets(list(sizes))
    per_segment: dict[int, list[int]] = {}
    for idx, root in zip(idxs, root_idxs):
        segment = next(k for k in range(len(sizes)) if offsets[k] <= idx < offsets[k + 1])
        per_segment.setdefault(segment, []).append(root)
    return [sorted(per_segment[k]) for k in sorted(per_segment)]


def rewrite_split_sizes(model: nn.Module, plan: SplitPlan, node: Any) -> None:
    """After a cut: write the split's new sizes (Torch-Pruning's split op holds them) where the forward reads
    them, and its offsets where the index mapping reads them."""
    sizes = list(node.module.split_sizes)
    node.module.offsets = _offsets(sizes)
    if plan.attribute is None:
        return
    module = model.get_submodule(plan.owner) if plan.owner else model
    old = getattr(module, plan.attribute)
    value = sizes[0] if isinstance(old, int) else type(old)(sizes)
    setattr(module, plan.attribute, value)
