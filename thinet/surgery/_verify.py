"""Checking a cut: the pruned model must equal the *masked reference*, or the step is undone.

The masked reference is the unpruned model with the input of each layer whose inputs were cut
multiplied by mask·ŵ (zero for a removed channel, the consumer's scale for a kept one; ones for a
squeeze-and-excitation reduce conv), and, where a criterion refits the consumer itself (Channel
Pruning's least squares, `Selection.consumer_weight`), the consumer carrying that refit. When the analysis was right, removing the channels and
masking them are the same function, so every layer's output agrees to rounding; when an operation between producer and consumer
mixes channels, they part. One forward pass of each on a few images decides: the model outputs
are compared, and each leaf module's output through a per-channel fingerprint (its sums), which
also names the first layer that differs (and checks the layers whose output the random
initialisation hides, such as a residual branch behind a BatchNorm with zero gain).

    >>> import copy, torch
    >>> from torch import nn
    >>> from thinet.types import LayerPair, Selection
    >>> from thinet.surgery import prune_pair
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3)).eval()
    >>> x, reference = torch.randn(2, 3, 8, 8), copy.deepcopy(net)
    >>> sel = Selection.from_keep(torch.arange(4), 8)
    >>> net = prune_pair(net, LayerPair("0", "2"), sel, example_inputs=x)
    >>> verify_cut(net, reference, LayerPair("0", "2"), sel, x)  # passes silently
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from thinet.models import find_layer
from thinet.surgery._units import ChannelUnit
from thinet.types import LayerPair, PruningError, Selection

# Relative error ‖pruned − reference‖ / ‖reference‖ beyond which a cut is not exact. Rounding alone
# stays near 1e-6 in float32 (the model matrix of tests/test_units.py); the mixing operations the
# issue lists part by 1e-3 to 1e-1.
VERIFY_RTOL = 1e-4
# Images the check runs on: the cut is structural, a few images show any mixing.
VERIFY_IMAGES = 8


class CutNotExact(PruningError):
    """A cut whose pruned model differs from its masked reference; the model was restored."""


def _unit_of(cut: ChannelUnit | LayerPair, num_channels: int) -> ChannelUnit:
    if isinstance(cut, ChannelUnit):
        return cut
    return ChannelUnit(cut.producer, (cut.producer,), (cut.consumer,), (), num_channels)


def input_masks(cut: ChannelUnit | LayerPair, selection: Selection) -> dict[str, torch.Tensor]:
    """Per-channel factor on the input of each layer whose inputs the cut removes (length C, or the width of
    the concatenation the layer reads): mask·ŵ on a consumer, the 0/1 mask on a squeeze-and-excitation reduce.

    >>> from thinet.types import LayerPair, Selection
    >>> input_masks(LayerPair("a", "b"), Selection.from_keep(torch.tensor([1]), 3))["b"].tolist()
    [0.0, 1.0, 0.0]
    """
    channels = selection.num_channels
    unit = _unit_of(cut, channels)
    scales = selection.consumer_scales or {}
    masks = {}
    for name in unit.consumers:
        offset, width = unit.window(name) or (0, channels)
        first, count = unit.span(name)  # a consumer behind a split reads channels first .. first+count-1
        factor = torch.ones(width, dtype=torch.float64)  # the other parts of a concatenation pass unchanged
        factor[offset:offset + count] = 0.0
        inside = (selection.keep >= first) & (selection.keep < first + count)
        factor[offset + selection.keep[inside] - first] = scales.get(name, selection.scale).to(torch.float64)[inside]
        masks[name] = factor
    for name in unit.reduces:  # a squeeze-and-excitation reduce conv loses inputs, not outputs
        offset, width = unit.window(name) or (0, channels)
        factor = torch.ones(width, dtype=torch.float64)
        factor[offset:offset + channels] = 0.0
        factor[offset + selection.keep] = 1.0
        masks[name] = factor
    return masks


@contextmanager
def masked(model: nn.Module, cut: ChannelUnit | LayerPair, selection: Selection) -> Iterator[nn.Module]:
    """`model` as the masked reference of a cut, while the context lasts: each layer whose inputs the cut
    removes sees its input multiplied by mask·ŵ (`input_masks`). The same function as the pruned model
    (`verify_cut` checks it after every cut) without cutting anything.

    >>> from torch import nn
    >>> from thinet.types import LayerPair, Selection
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1))
    >>> with masked(net, LayerPair("0", "1"), Selection.from_keep(torch.arange(4), 4)) as same:
    ...     same is net
    True
    """
    with _refit_written(model, cut, selection), _masked(model, input_masks(cut, selection)):
        yield model


@contextmanager
def _refit_written(model: nn.Module, cut: ChannelUnit | LayerPair, selection: Selection) -> Iterator[None]:
    """While the context lasts, the consumer carries the criterion's refit weight and bias on its kept
    columns (`Selection.consumer_weight`, Channel Pruning's), as the pruned model does; then its own again."""
    if selection.consumer_weight is None and selection.consumer_bias is None:
        yield
        return
    from thinet.surgery._cut import write_consumer_refit

    if not isinstance(cut, LayerPair):
        raise PruningError(f"a refit consumer weight applies to a plain pair, not to the unit {cut.describe()}")
    producer, consumer = find_layer(model, cut.producer, "producer"), find_layer(model, cut.consumer, "consumer")
    saved = {name: p.detach().clone() for name, p in consumer.named_parameters(recurse=False)}
    write_consumer_refit(producer, consumer, selection)
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                getattr(consumer, name).copy_(value)


def _masking_hook(layer: nn.Module, factor: torch.Tensor):
    def hook(_module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        # A Linear reads channel c in in_features / C contiguous columns (after a flatten), on its last axis.
        axis = x.dim() - 1 if isinstance(layer, nn.Linear) else 1
        per = factor.repeat_interleave(x.shape[axis] // factor.numel()).to(dtype=x.dtype, device=x.device)
        shape = [1] * x.dim()
        shape[axis] = -1
        return (x * per.view(shape),) + tuple(args[1:])
    return hook


@contextmanager
def _masked(reference: nn.Module, masks: dict[str, torch.Tensor]) -> Iterator[None]:
    handles = []
    try:
        for name, factor in masks.items():
            layer = find_layer(reference, name, "layer")
            handles.append(layer.register_forward_pre_hook(_masking_hook(layer, factor)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _outputs(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _outputs(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _outputs(v)]
    return []


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    want = want.double()
    return float((got.double() - want).norm() / want.norm().clamp_min(1e-30))


def _fingerprint(output: torch.Tensor) -> torch.Tensor:
    """Per image and channel: the sum, the sum of magnitudes and the sum of squares over the other axes (N×C×3).

    A few numbers per channel instead of the whole map, so every layer of a large model can be
    compared; a change of the values moves the sums but by a coincidence.
    """
    y = output.detach().double()
    y = y.reshape(y.shape[0], y.shape[1], -1) if y.dim() > 2 else y.reshape(y.shape[0], -1, 1)
    return torch.stack([y.sum(-1), y.abs().sum(-1), (y * y).sum(-1)], -1)


def _fingerprint_error(got: torch.Tensor, want: torch.Tensor) -> float:
    # The sums are measured against the sums of magnitudes: rounding moves them by eps relative to those.
    sums = float((got[..., 0] - want[..., 0]).norm() / want[..., 1].norm().clamp_min(1e-30))
    return max(sums, _relative_error(got[..., 1:], want[..., 1:]))


class _Recorder:
    """Forward hooks: each leaf module's (name, output fingerprint) in call order; the innermost module
    running when a pass fails."""

    def __init__(self, model: nn.Module) -> None:
        self.outputs: list[tuple[str, torch.Tensor]] = []
        self.running: list[str] = []
        self._handles = []
        for name, module in model.named_modules():
            if name:
                leaf = not any(True for _ in module.children())
                self._handles.append(module.register_forward_pre_hook(lambda _m, _a, n=name: self.running.append(n)))
                self._handles.append(module.register_forward_hook(
                    lambda _m, _a, out, n=name, leaf=leaf: self._left(n, out, leaf)))

    def _left(self, name: str, output: Any, leaf: bool) -> None:
        if self.running:
            self.running.pop()
        tensors = _outputs(output)
        if leaf and tensors and tensors[0].dim() >= 1 and tensors[0].is_floating_point():
            self.outputs.append((name, _fingerprint(tensors[0])))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _run(model: nn.Module, images: torch.Tensor, recorder: _Recorder) -> list[torch.Tensor]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            return _outputs(model(images))
    finally:
        recorder.remove()
        for module, training in modes.items():
            module.training = training


def _first_parting(pruned: _Recorder, reference: _Recorder, keep: torch.Tensor, channels: int,
                   tolerance: float) -> tuple[str, float] | None:
    """The first leaf module (call order) whose output differs from the reference's on the kept channels."""
    for (name, got), (ref_name, want) in zip(pruned.outputs, reference.outputs):
        if name != ref_name:
            return None  # the call sequences differ; the final outputs are all that can be compared
        if got.shape != want.shape:
            if want.shape[1] != channels or got.shape[1] != keep.numel() or got.shape[0] != want.shape[0]:
                continue
            want = want[:, keep.to(want.device)]
        error = _fingerprint_error(got, want)
        if error > tolerance:
            return name, error
    return None


def restore(model: nn.Module, reference: nn.Module) -> None:
    """Make `model` (in place, the same object) the `reference` copy taken before the cut."""
    model.__dict__.update(reference.__dict__)


def verify_cut(model: nn.Module, reference: nn.Module, cut: ChannelUnit | LayerPair, selection: Selection,
               batches: Iterable | torch.Tensor, *, tolerance: float = VERIFY_RTOL, where: str = "") -> None:
    """Raise `CutNotExact`, after restoring `model` to `reference`, unless the cut is exact.

    `reference` is a deep copy of `model` taken just before the cut of `cut` (a `ChannelUnit`
    or a plain `LayerPair`) with `selection`; `batches` the step's selection images (the first
    `VERIFY_IMAGES` of the first batch are used). `where` prefixes the message (e.g. the chain step).
    """
    from thinet.sampling import first_images

    unit = _unit_of(cut, selection.num_channels)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    images = first_images(batches, VERIFY_IMAGES).to(device)
    masks = input_masks(unit, selection)
    prefix = f"{where}: " if where else ""
    described = unit.describe()

    def fail(message: str) -> None:
        restore(model, reference)
        raise CutNotExact(f"{prefix}the cut of {described} {message}; the step was undone (the model is as "
                          "before it). Turn the check off (verify_cuts=False, --no-verify-cuts) only to "
                          "inspect the damage.")

    pruned_rec, reference_rec = _Recorder(model), _Recorder(reference)
    try:
        got = _run(model, images, pruned_rec)
    except Exception as err:  # noqa: BLE001 - a pruned model that cannot run is the clearest failure
        layer = pruned_rec.running[-1] if pruned_rec.running else "?"
        fail(f"leaves a model whose forward pass fails in layer {layer!r} ({type(err).__name__}: {err})")
    with _refit_written(reference, cut, selection), _masked(reference, masks):
        want = _run(reference, images, reference_rec)
    if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
        fail("changes the model's output shape")
    error = max((_relative_error(g, w) for g, w in zip(got, want)), default=0.0)
    parting = _first_parting(pruned_rec, reference_rec, selection.keep, selection.num_channels, tolerance)
    if error <= tolerance and parting is None:
        return
    at = f"at layer {parting[0]!r} (relative error {parting[1]:.2e} there)" if parting else "at the model output"
    fail(f"is not exact: the pruned model parts from the masked reference (the unpruned model with each "
         f"consumer's input multiplied by mask·ŵ) {at}, by {error:.2e} at the output (tolerance {tolerance:g}); "
         f"an operation between {unit.producer!r} and its consumers mixes channels")
