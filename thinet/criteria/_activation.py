"""The producer's own activation: the output of the ReLU that runs on layer i's output (after its
BatchNorm, if any), before pooling or anything else between it and layer i+1.

APoZ (Hu et al., 2016) counts the zeros of exactly this tensor. It is found by following the
producer's output through the leaf modules the forward pass runs: a BatchNorm on it passes it on,
a ReLU (or ReLU6) on it is the activation. When any other module runs on it first, or none does (a
functional `F.relu` is invisible to module hooks, or the layer has no activation), a PruningError
names the layer and what ran instead: the post-ReLU output is not defined there, and counting zeros
of a pre-activation output would silently rank every channel alike.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from thinet.models import find_layer
from thinet.types import PruningError

# Modules that carry the producer's output on to its activation.
PASS_THROUGH: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._BatchNorm,)
# Activations whose zeros are APoZ's zeros.
RELU_LIKE: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


def _same_tensor(candidate: Any, tracked: torch.Tensor) -> bool:
    # `is` covers Sequential and `self.relu(self.bn(self.conv(x)))`; the storage check covers a
    # new Python wrapper of the same tensor.
    return isinstance(candidate, torch.Tensor) and (candidate is tracked or (
        candidate.data_ptr() == tracked.data_ptr() and candidate.shape == tracked.shape))


class ActivationTrace:
    """Per forward pass: the producer's post-ReLU outputs (`seen`) and, when none came, why."""

    def __init__(self, producer: str) -> None:
        self.producer = producer
        self.seen: list[torch.Tensor] = []
        self.tracked: torch.Tensor | None = None
        self.path: list[str] = []
        self.found = "no module (a functional activation, or none at all)"

    def start(self) -> None:
        self.seen.clear()
        self.tracked, self.path = None, []

    def error(self) -> PruningError:
        after = " -> ".join(repr(n) for n in [self.producer, *self.path])
        return PruningError(
            f"layer {self.producer!r} has no ReLU module on its output: after {after} runs {self.found}; a "
            f"post-ReLU output (what APoZ counts the zeros of) needs nn.ReLU or nn.ReLU6 right after the layer "
            f"or its BatchNorm")

    def on_leaf(self, name: str, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self.tracked is None or not args or not _same_tensor(args[0], self.tracked):
            return
        if isinstance(module, RELU_LIKE):
            self.seen.append(output.detach().clone())
            self.tracked = None
        elif isinstance(module, PASS_THROUGH):
            self.tracked = output
            self.path.append(name)
        else:
            self.tracked = None
            self.found = f"{name!r} ({type(module).__name__})"


@contextlib.contextmanager
def post_activation_hook(model: nn.Module, producer_name: str) -> Iterator[ActivationTrace]:
    """Record the producer's post-ReLU output of each forward pass (call `trace.start()` before each).

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 1))
    >>> with post_activation_hook(net.eval(), "0") as trace:
    ...     trace.start()
    ...     _ = net(torch.randn(1, 1, 4, 4))
    >>> trace.seen[0].shape  # before the pooling
    torch.Size([1, 2, 4, 4])
    """
    producer = find_layer(model, producer_name, "producer")
    trace = ActivationTrace(producer_name)

    def on_producer(_module: nn.Module, _args: tuple[Any, ...], output: Any) -> None:
        trace.tracked, trace.path = output, []

    def leaf_hook(name: str):
        return lambda module, args, output: trace.on_leaf(name, module, args, output)

    handles = [producer.register_forward_hook(on_producer)]
    handles += [m.register_forward_hook(leaf_hook(n)) for n, m in model.named_modules()
                if n and m is not producer and next(m.children(), None) is None]
    try:
        yield trace
    finally:
        for handle in handles:
            handle.remove()
