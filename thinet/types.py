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
    `finetune_after` is False where the recipe prunes the next layer before fine-tuning
    (ResNet: conv1 and conv2 of a bottleneck, then one fine-tuning per block, §4.3).
    `coupled` lets the step cut the producer's whole channel unit
    (`thinet.surgery.find_unit`: grouped convs, a depthwise stage, SE gates, shared
    channels) instead of requiring exactly one plain consumer.
    """

    pair: LayerPair
    keep_ratio: float
    group_end: bool = False
    finetune_after: bool = True
    coupled: bool = False


@dataclass
class Selection:
    """The outcome of a channel choice for one layer pair.

    `keep` and `removed` are sorted, disjoint LongTensors covering `range(C)`;
    `scale` holds one factor per kept channel (ThiNet's w-hat, Eq. 7), ones when
    the criterion does not rescale. `consumer_scales` (consumer name -> factors)
    is set when a channel unit has several consumers, each refitted on its own.

    `consumer_weight` (and `consumer_bias`) carry a criterion's own refit of the consumer
    (Channel Pruning's least squares, He et al. 2017): the consumer's whole weight on the
    kept input channels, shaped as after the cut (`weight[:, kept columns]`), and its new
    bias. The surgery writes them in place of the kept columns (and the bias) before
    cutting; `scale` is then applied on top of them, so such a criterion returns ones.
    Only a plain producer/consumer pair takes them.
    """

    keep: torch.Tensor
    removed: torch.Tensor
    scale: torch.Tensor
    consumer_scales: dict[str, torch.Tensor] | None = None
    consumer_weight: torch.Tensor | None = None
    consumer_bias: torch.Tensor | None = None

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


def _check_indices(idx: object, label: str, num_channels: int, where: str, ordered: bool) -> None:
    if not isinstance(idx, torch.Tensor) or idx.dim() != 1 or idx.dtype.is_floating_point or idx.dtype.is_complex \
            or idx.dtype == torch.bool:
        got = f"dtype {idx.dtype}, shape {tuple(idx.shape)}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise PruningError(f"{where}: {label} must be a 1-D integer tensor, got {got}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_channels):
        raise PruningError(f"{where}: {label} index out of range [0, {num_channels}): {idx.tolist()}")
    if ordered and idx.numel() > 1 and not bool((idx[1:] > idx[:-1]).all()):
        raise PruningError(f"{where}: {label} indices must be sorted and unique, got {idx.tolist()}")
    if torch.unique(idx).numel() != idx.numel():
        raise PruningError(f"{where}: {label} has duplicate channels: {idx.tolist()}")


def check_selection(keep: torch.Tensor, num_channels: int, where: str, *, removed: torch.Tensor | None = None,
                    scale: torch.Tensor | None = None, n_keep: int | None = None) -> None:
    """PruningError naming `where` unless `keep` (and `removed`, `scale` when given) is a valid choice
    among `num_channels` channels: the one check of a channel choice, wherever one is made or used.

    With `removed` the indices must be sorted, as in a `Selection`; a criterion's raw answer (no
    `removed`) may list the kept channels in any order. `n_keep` demands exactly that many kept.

    >>> check_selection(torch.tensor([2, 0]), 4, "demo", n_keep=2)
    >>> check_selection(torch.tensor([0, 0]), 4, "demo")
    Traceback (most recent call last):
    ...
    thinet.types.PruningError: demo: keep has duplicate channels: [0, 0]
    """
    ordered = removed is not None
    _check_indices(keep, "keep", num_channels, where, ordered)
    if removed is not None:
        _check_indices(removed, "removed", num_channels, where, ordered)
    if n_keep is not None and keep.numel() != n_keep:
        raise PruningError(f"{where}: kept {keep.numel()} channels; expected exactly {n_keep} of {num_channels}")
    if keep.numel() == 0:
        raise PruningError(f"{where}: keeps no channel")
    if removed is not None and (keep.numel() + removed.numel() != num_channels or torch.isin(keep, removed).any()):
        raise PruningError(f"{where}: keep ({keep.numel()}) and removed ({removed.numel()}) must split "
                           f"range({num_channels}) into disjoint parts")
    if scale is not None:
        if not isinstance(scale, torch.Tensor) or scale.shape != keep.shape:
            shape = tuple(scale.shape) if isinstance(scale, torch.Tensor) else type(scale).__name__
            count = scale.numel() if isinstance(scale, torch.Tensor) else "no"
            raise PruningError(f"{where}: scale has shape {shape}: {count} scale factors for {keep.numel()} kept "
                               "channels")
        if not bool(torch.isfinite(scale).all()):
            raise PruningError(f"{where}: scale has non-finite values {scale.tolist()}")


def num_kept(num_channels: int, keep_ratio: float) -> int:
    """Channels kept at rate r (the paper's r is the fraction *kept*): int(C*r), at least 1.

    A tiny epsilon absorbs binary rounding (10 * 0.7 == 6.999...).

    >>> num_kept(64, 0.5), num_kept(10, 0.7), num_kept(3, 0.1)
    (32, 7, 1)
    """
    return max(1, int(num_channels * keep_ratio + 1e-9))


def check_keep_ratio(keep_ratio: float, where: str) -> float:
    """`keep_ratio` as a float, or PruningError naming `where` (a layer, a strategy) unless 0 < r ≤ 1.

    The one check of a rate, used wherever one enters the engine.

    >>> check_keep_ratio(0.5, "layer 'conv1'")
    0.5
    >>> check_keep_ratio(1.5, "layer 'conv1'")
    Traceback (most recent call last):
    ...
    thinet.types.PruningError: keep_ratio 1.5 for layer 'conv1': keep_ratio must be in (0, 1], the fraction of channels kept
    """
    # NaN fails both comparisons; bool is an int but never a rate.
    if isinstance(keep_ratio, bool) or not isinstance(keep_ratio, (int, float)) or not 0 < keep_ratio <= 1:
        raise PruningError(f"keep_ratio {keep_ratio!r} for {where}: keep_ratio must be in (0, 1], the fraction "
                           "of channels kept")
    return float(keep_ratio)


# The result files' columns (ARCHITECTURE.md): written by the experiment layer, read by the report.
def grouped_strategy(strategy: str, groups: int) -> str:
    """The `strategy` cell of a grouped run's rows (gcos, `thinet.grouping`): its source chain's strategy
    and g, so that runs at different g never pair up.

    >>> grouped_strategy("vgg16_conv", 2), split_grouped_strategy("vgg16_conv/g2"), split_grouped_strategy("auto")
    ('vgg16_conv/g2', ('vgg16_conv', 2), None)
    """
    return f"{strategy}/g{groups}"


def split_grouped_strategy(value: str) -> tuple[str, int] | None:
    """(source strategy, g) of a grouped run's `strategy` cell, None for any other row."""
    head, sep, tail = str(value).rpartition("/g")
    return (head, int(tail)) if sep and head and tail.isdigit() else None


METRICS_COLUMNS = (
    "config", "experiment", "dataset", "model", "variant", "strategy", "criterion", "keep_ratio", "seed",
    "step", "layer", "phase", "top1", "top5", "loss", "eval_images", "params", "params_with_biases", "flops",
    "forward_ms", "backward_ms", "device", "mlflow_run_id",
)
COMPARE_LAYER_COLUMNS = (
    "config", "dataset", "model", "layer", "keep_ratio", "seed", "criterion", "top1", "top5", "eval_images",
)
ARCH_TABLE_COLUMNS = ("model", "params_M", "params_with_biases_M", "flops_B", "size_MB", "paper_params_M",
                      "paper_flops_B")
# The paper's model size: float32 weights in the #Param convention, 1 MB = 2^20 bytes (§4.2: ThiNet-Tiny
# "only takes 5.05MB", 1.32 M parameters).
BYTES_PER_PARAM = 4
BYTES_PER_MB = 2 ** 20


def size_mb(params: float) -> float:
    """Model size in MB (2^20 bytes) of `params` float32 parameters, as the paper counts it.

    >>> round(size_mb(1_323_184), 2)  # ThiNet-Tiny, §4.2: 5.05 MB
    5.05
    """
    return params * BYTES_PER_PARAM / BYTES_PER_MB
# Added after ARCH_TABLE_COLUMNS when the architectures are timed (`thinet arch-table --timing`).
ARCH_TIMING_COLUMNS = (
    "flops_ratio", "forward_ms", "forward_iqr_ms", "backward_ms", "backward_iqr_ms", "forward_speedup",
    "backward_speedup", "paper_forward_ms", "paper_backward_ms", "paper_forward_speedup", "paper_backward_speedup",
    "timing_device", "timing_batch_size", "timing_image_size", "timing_threads", "timing_amp", "timing_channels_last",
)


class PruningError(ValueError):
    """Raised on bad input before anything is computed or modified; the message names the culprit."""
