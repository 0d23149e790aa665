"""Models by name (timm-style registry) for the ThiNet suite.

Names: the registered `vgg16`, `vgg16_gap`, `resnet50_v1`, `vgg16_small`, `resnet_small`,
and any `torchvision:<name>` / `timm:<name>`. Every model carries `thinet_input_size`
(C, H, W), read by `input_size_of`. The families (`vgg.py`, `small.py`, `resnet_v1.py`, listed in
`_registry.FAMILIES`) are imported on the first lookup of a name, so importing this package does
not import torchvision.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Callable

import torch
import torch.nn as nn

from thinet.models._checkpoint import load_state_dict_into, read_checkpoint
from thinet.models._layers import find_layer, in_channels_of, layer_biases, out_channels_of
from thinet.models._registry import (
    PREFIXES,
    available_models,
    check_kwargs,
    get_constructor,
    register_model,
)
from thinet.models._sources import TORCHVISION_INPUT, prefixed_model, replace_last_linear

# Imported on first use (`__getattr__`): the families import torchvision's model classes (seconds), the
# Caffe reader protobuf. The registry imports the families on the first lookup of a name.
_LAZY = {
    "VGGGap": "thinet.models.vgg", "init_weights": "thinet.models.vgg", "vgg_conv_names": "thinet.models.vgg",
    "CAFFE_MODELS": "thinet.models._caffe_resnet", "convert_caffemodel": "thinet.models._caffe_resnet",
    "read_caffemodel": "thinet.models._caffemodel",
}

__all__ = [
    "CAFFE_MODELS", "PREFIXES", "VGGGap", "available_models", "convert_caffemodel", "create_model", "example_inputs",
    "find_layer", "get_constructor", "in_channels_of", "init_weights", "input_size_of", "layer_biases",
    "out_channels_of", "read_caffemodel", "read_checkpoint", "register_model", "replace_last_linear", "vgg_conv_names",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'thinet.models' has no attribute {name!r}")


def create_model(
    name: str,
    num_classes: int = 1000,
    *,
    pretrained: bool = False,
    checkpoint: str | os.PathLike | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a model by name; optionally load weights from `checkpoint`.

    `checkpoint` may hold a state_dict, a dict with key "model" (a state_dict), or a whole
    pickled nn.Module (as a pruned model must be saved); a whole module is returned as is.

    >>> model = create_model("vgg16_small", num_classes=10, width_mult=0.25)
    >>> input_size_of(model)
    (1, 32, 32)
    >>> create_model("torchvision:resnet18", num_classes=5).fc.out_features
    5
    """
    build = _builder(name, kwargs)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"create_model({name!r}): num_classes must be a positive int, got {num_classes!r}")
    if checkpoint is None:
        return build(num_classes, pretrained)
    stored = read_checkpoint(checkpoint)
    if isinstance(stored, nn.Module):
        if not hasattr(stored, "thinet_input_size"):
            # Building on the meta device costs no memory and tells the input size.
            with torch.device("meta"):
                stored.thinet_input_size = input_size_of(build(num_classes, False))
        return stored
    model = build(num_classes, pretrained)
    load_state_dict_into(model, stored, checkpoint)
    return model


def _builder(name: str, kwargs: dict[str, Any]) -> Callable[[int, bool], nn.Module]:
    """Resolve `name` (and check kwargs) before any model is built."""
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {name!r}")
    if name.startswith(PREFIXES):
        return lambda num_classes, pretrained: prefixed_model(name, num_classes, pretrained, **kwargs)
    fn = get_constructor(name)
    check_kwargs(name, fn, kwargs)
    return lambda num_classes, pretrained: fn(num_classes, pretrained=pretrained, **kwargs)


def example_inputs(model: nn.Module, batch: int = 2, *, size: tuple[int, int, int] | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """The tensor a model is traced with (dependency graph, ONNX, MLflow's input example): zeros of
    `batch` x `size` (default: the model's `input_size_of`), on `device` (default: the model's).

    Two images, not one: a batch of one lets some graphs collapse a dimension while tracing.

    >>> example_inputs(create_model("vgg16_small", 10)).shape
    torch.Size([2, 1, 32, 32])
    """
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
    return torch.zeros(batch, *(size or input_size_of(model)), device=device)


def input_size_of(model: nn.Module) -> tuple[int, int, int]:
    """The (C, H, W) a model expects: its `thinet_input_size`, else 3x224x224.

    >>> input_size_of(nn.Conv2d(3, 8, 3))
    (3, 224, 224)
    """
    size = getattr(model, "thinet_input_size", TORCHVISION_INPUT)
    return tuple(int(s) for s in size)  # type: ignore[return-value]
