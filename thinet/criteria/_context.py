"""What a criterion sees: `CriterionContext`, and hooks on the consumer's input.

Two views of the producer's channels: the consumer's input (`channel_activations`,
as layer i+1 sees them: after BatchNorm, ReLU and any pooling), and the producer's
own post-ReLU output before any pooling (`post_relu_activations`, what APoZ counts).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import torch
from torch import nn

from thinet.criteria._activation import post_activation_hook
from thinet.models import find_layer, out_channels_of
from thinet.types import LayerPair, PruningError, check_keep_ratio, num_kept


def unpack_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`(x, y)` from a DataLoader batch, or `(x, None)` from a plain image tensor."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        labels = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        return batch[0], labels
    raise PruningError(f"a batch must be a tensor or an (images, labels) pair, got {type(batch).__name__}")


def as_channels(activation: torch.Tensor, num_channels: int, consumer: str) -> torch.Tensor:
    """View the consumer's input as N x C x (positions...).

    A Linear consumer after a flatten sees N x (C*h*w): that is C channels of h*w positions.
    """
    if activation.dim() >= 2 and activation.shape[1] == num_channels:
        return activation
    if activation.dim() == 2 and activation.shape[1] % num_channels == 0:
        return activation.reshape(activation.shape[0], num_channels, -1)
    raise PruningError(
        f"consumer {consumer!r} receives shape {tuple(activation.shape)}, which does not split into "
        f"{num_channels} producer channels")


@contextlib.contextmanager
def consumer_input_hook(consumer: nn.Module, *, require_grad: bool = False) -> Iterator[list[torch.Tensor]]:
    """Capture every input the consumer receives while the block runs.

    With `require_grad`, the captured input is a fresh leaf fed to the consumer in
    place of the original, so `torch.autograd.grad(loss, captured)` gives
    dLoss/dactivation without touching any parameter's `.grad`.

    >>> conv = nn.Conv2d(2, 3, 1)
    >>> with consumer_input_hook(conv) as seen:
    ...     _ = conv(torch.zeros(1, 2, 4, 4))
    >>> seen[0].shape
    torch.Size([1, 2, 4, 4])
    """
    seen: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        x = args[0]
        if require_grad:
            x = x.detach().requires_grad_(True)
            seen.append(x)
            return (x, *args[1:])
        seen.append(x.detach())
        return None

    handle = consumer.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run `model` in eval mode and give back the train/eval state of every submodule."""
    states = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in states:
            module.training = training


@dataclass
class CriterionContext:
    """Everything a criterion may look at to choose the channels of one layer pair.

    `batches` is re-iterable: a DataLoader of the selection subset (evaluation
    transform) yielding `(x, y)`, a list of such pairs, or a list of image tensors.

    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    >>> ctx = CriterionContext(model, LayerPair("0", "2"), [torch.randn(2, 3, 8, 8)], keep_ratio=0.5)
    >>> ctx.num_channels, ctx.n_keep
    (8, 4)
    >>> [a.shape for a in ctx.channel_activations()]
    [torch.Size([2, 8, 6, 6])]
    """

    model: nn.Module
    pair: LayerPair
    batches: Iterable[Any]
    keep_ratio: float
    seed: int = 0
    samples_per_image: int = 10
    device: torch.device | str | None = None
    example_inputs: torch.Tensor | None = field(default=None, repr=False)
    # The producer's channel unit (`thinet.surgery.ChannelUnit`) for a coupled step, else None.
    unit: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pair, LayerPair):
            raise PruningError(f"pair must be a LayerPair, got {self.pair!r}")
        check_keep_ratio(self.keep_ratio, f"layer {self.pair.producer!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise PruningError(f"seed {self.seed!r} must be an int")
        if isinstance(self.samples_per_image, bool) or not isinstance(self.samples_per_image, int) \
                or self.samples_per_image < 1:
            raise PruningError(f"samples_per_image {self.samples_per_image!r} must be a positive int")
        if isinstance(self.batches, torch.Tensor):
            # A plain N x C x H x W tensor is one batch, not N single images.
            self.batches = [self.batches]
        if iter(self.batches) is self.batches:
            # A generator would be empty for the second criterion run on it.
            raise PruningError(f"batches for layer {self.pair.producer!r} must be re-iterable (a DataLoader or a "
                               f"list), got the one-shot {type(self.batches).__name__}")
        out_channels_of(self.producer, self.pair.producer, "layer")
        find_layer(self.model, self.pair.consumer, "consumer")
        if self.device is None:
            param = next(self.model.parameters(), None)
            self.device = param.device if param is not None else torch.device("cpu")
        self.device = torch.device(self.device)

    @property
    def producer(self) -> nn.Module:
        return find_layer(self.model, self.pair.producer, "producer")

    @property
    def consumer(self) -> nn.Module:
        return find_layer(self.model, self.pair.consumer, "consumer")

    @property
    def num_channels(self) -> int:
        """C: the producer's output channels."""
        return out_channels_of(self.producer, self.pair.producer, "layer")

    @property
    def n_keep(self) -> int:
        """Channels a criterion must keep: `num_kept(C, keep_ratio)` (per group for a grouped unit)."""
        if self.unit is not None:
            return self.unit.n_keep(self.keep_ratio)
        return num_kept(self.num_channels, self.keep_ratio)

    def iter_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """`(x, y)` per batch on `self.device` (`y` is None for unlabelled images)."""
        for batch in self.batches:
            x, y = unpack_batch(batch)
            yield x.to(self.device), (y.to(self.device) if y is not None else None)

    def channel_activations(self) -> Iterator[torch.Tensor]:
        """The consumer's input per batch, as N x C x (positions...), model in eval mode, no grad."""
        with eval_mode(self.model), torch.no_grad(), consumer_input_hook(self.consumer) as seen:
            for x, _ in self.iter_batches():
                seen.clear()
                self.model(x)
                if len(seen) != 1:
                    raise PruningError(
                        f"consumer {self.pair.consumer!r} ran {len(seen)} times in one forward pass; expected once")
                yield as_channels(seen[0], self.num_channels, self.pair.consumer)

    def post_relu_activations(self) -> Iterator[torch.Tensor]:
        """The producer's own output after its BatchNorm and ReLU, before pooling, per batch, as
        N x C x (positions...), model in eval mode, no grad. PruningError, naming the layer and the
        module found instead, when no ReLU module runs on the producer's output (see `_activation.py`).
        """
        with eval_mode(self.model), torch.no_grad(), post_activation_hook(self.model, self.pair.producer) as trace:
            for x, _ in self.iter_batches():
                trace.start()
                self.model(x)
                if not trace.seen:
                    raise trace.error()
                if len(trace.seen) != 1:
                    raise PruningError(f"layer {self.pair.producer!r} ran {len(trace.seen)} times in one forward "
                                       "pass; expected once")
                out = trace.seen[0]
                yield out.reshape(out.shape[0], self.num_channels, -1)
