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
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
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


@dataclass
class OutputPath:
    """What the forward pass runs on one layer's output: the first leaf module (`first`, as (name, module)),
    the BatchNorms it passes through (`path`), and how it ends: `relu` True when a ReLU comes after them, else
    `found`, what ran instead."""

    first: tuple[str, nn.Module] | None = None
    path: list[str] = field(default_factory=list)
    relu: bool = False
    found: str = "no module (a functional activation, or none at all)"


# model -> (example input shape, {layer name: OutputPath}): one forward pass answers every layer's checks.
_PATHS: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, dict[str, OutputPath]]]" = weakref.WeakKeyDictionary()


def output_paths(model: nn.Module, example_inputs: torch.Tensor) -> dict[str, OutputPath]:
    """For every leaf layer with parameters, what runs on its output (`OutputPath`), from one forward pass on
    `example_inputs` in eval mode, cached per model and input shape (the checks are structural: pruning
    changes no module's successor)."""
    cached = _PATHS.get(model)
    if cached is not None and cached[0] == tuple(example_inputs.shape):
        return cached[1]
    paths: dict[str, OutputPath] = {}
    tracked: list[tuple[Any, str]] = []  # (tensor on the way from a layer to its activation, that layer)

    def owner(tensor: Any) -> str | None:
        return next((layer for t, layer in reversed(tracked) if _same_tensor(tensor, t)), None)

    def before(name: str, module: nn.Module, args: tuple[Any, ...]) -> None:
        layer = owner(args[0]) if args else None
        if layer is None or paths[layer].relu or paths[layer].found != OutputPath.found:
            return
        path = paths[layer]
        if path.first is None:
            path.first = (name, module)
        if isinstance(module, RELU_LIKE):
            path.relu = True
        elif not isinstance(module, PASS_THROUGH):
            path.found = f"{name!r} ({type(module).__name__})"

    handles = []
    for name, module in model.named_modules():
        if name and next(module.children(), None) is None:
            handles.append(module.register_forward_pre_hook(lambda m, a, n=name: before(n, m, a)))
            handles.append(module.register_forward_hook(lambda m, a, o, n=name: _after(n, m, a, o)))

    def _after(name: str, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        layer = owner(args[0]) if args else None
        if layer is not None and isinstance(module, PASS_THROUGH) and not paths[layer].relu \
                and paths[layer].found == OutputPath.found:
            paths[layer].path.append(name)  # the BatchNorm carries the layer's channels on to its activation
            tracked.append((output, layer))
        if next(module.parameters(recurse=False), None) is not None and not isinstance(module, PASS_THROUGH):
            paths.setdefault(name, OutputPath())
            tracked.append((output, name))

    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(example_inputs)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    _PATHS[model] = (tuple(example_inputs.shape), paths)
    return paths


def _path_of(model: nn.Module, producer_name: str, example_inputs: torch.Tensor) -> OutputPath:
    find_layer(model, producer_name, "producer")
    return output_paths(model, example_inputs).get(producer_name, OutputPath())


def batchnorm_refusal(model: nn.Module, producer_name: str, example_inputs: Any) -> str | None:
    """Why the producer has no BatchNorm scale γ to rank its channels by, or None when it has one: the first
    module run on its output must be an affine BatchNorm (`output_paths`: one forward pass on `example_inputs`).

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1))
    >>> batchnorm_refusal(net, "0", torch.zeros(1, 1, 4, 4))
    "no BatchNorm on its output: the first module run on it is '1', a ReLU"
    """
    first = _path_of(model, producer_name, example_inputs).first
    if first is None:
        return "no BatchNorm on its output: no module runs on it"
    name, module = first
    if not isinstance(module, nn.modules.batchnorm._BatchNorm):
        return f"no BatchNorm on its output: the first module run on it is {name!r}, a {type(module).__name__}"
    if not module.affine:
        return f"its BatchNorm {name!r} has no scale γ (affine=False)"
    return None


def relu_refusal(model: nn.Module, producer_name: str, example_inputs: Any) -> str | None:
    """Why the producer has no post-ReLU output (what APoZ, HRank and CHIP read), or None when it has one
    (`output_paths`: one forward pass on `example_inputs`).

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.ReLU(), nn.Conv2d(2, 2, 1))
    >>> relu_refusal(net, "0", torch.zeros(1, 1, 4, 4)) is None
    True
    >>> relu_refusal(net, "3", torch.zeros(1, 1, 4, 4))
    "no ReLU module on its output: after '3' runs no module (a functional activation, or none at all); a post-ReLU output (what APoZ counts the zeros of) needs nn.ReLU or nn.ReLU6 right after the layer or its BatchNorm"
    """
    path = _path_of(model, producer_name, example_inputs)
    if path.relu:
        return None
    trace = ActivationTrace(producer_name)
    trace.path, trace.found = path.path, path.found
    return str(trace.error()).replace(f"layer {producer_name!r} has ", "", 1)


def first_module_on_output(model: nn.Module, producer_name: str,
                           example_inputs: torch.Tensor) -> tuple[str, nn.Module] | None:
    """(name, module) of the first leaf module the forward pass runs on the producer's output, or None
    (`output_paths`: one cached forward pass on `example_inputs`).

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.ReLU())
    >>> first_module_on_output(net, "0", torch.zeros(1, 1, 4, 4))[0]
    '1'
    """
    return _path_of(model, producer_name, example_inputs).first

