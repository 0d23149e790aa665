"""Finding a layer of a model by name and reading its channel counts: the one helper every
stage uses, so that a wrong name reads the same everywhere (with the nearest real names).

>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Linear(8, 2))
>>> out_channels_of(find_layer(net, "0")), in_channels_of(find_layer(net, "2"))
(8, 8)
>>> find_layer(net, "conv", "producer")
Traceback (most recent call last):
...
thinet.types.PruningError: producer layer 'conv' does not exist in Sequential
"""
from __future__ import annotations

import difflib

from torch import nn

from thinet.types import PruningError


def find_layer(model: nn.Module, name: str, role: str = "layer") -> nn.Module:
    """`model`'s submodule `name`, or PruningError naming the `role` and the nearest existing names."""
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return modules[name]
    near = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.5)
    hint = f"; near names: {', '.join(near)}" if near else ""
    raise PruningError(f"{role} layer {name!r} does not exist in {type(model).__name__}{hint}")


def _channel_count(module: nn.Module, attrs: tuple[str, str], problem: str) -> int:
    for attr in attrs:
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    raise PruningError(problem)


def out_channels_of(module: nn.Module, name: str = "?", role: str = "layer") -> int:
    """Output channels (filters) of a conv or linear layer; PruningError for a layer that has none."""
    return _channel_count(module, ("out_channels", "out_features"),
                          f"{role} {name!r} ({type(module).__name__}) has no output channels to prune")


def in_channels_of(module: nn.Module, name: str = "?", role: str = "layer") -> int:
    """Input channels of a conv or linear layer (a Linear after a flatten: its in_features)."""
    return _channel_count(module, ("in_channels", "in_features"),
                          f"{role} {name!r} ({type(module).__name__}) has no input channels")


def layer_biases(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of every bias of a convolution or fully-connected layer.

    These are what Caffe's VGG/ResNet solvers treat apart (twice the learning rate, no weight decay)
    and what the paper's #Param leaves out; BatchNorm's learned scale and shift are not among them.

    >>> [name for name, _ in layer_biases(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Linear(8, 2)))]
    ['0.bias', '2.bias']
    """
    found = []
    for prefix, module in model.named_modules():
        bias = getattr(module, "bias", None)
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) and isinstance(bias, nn.Parameter):
            found.append((f"{prefix}.bias" if prefix else "bias", bias))
    return found
