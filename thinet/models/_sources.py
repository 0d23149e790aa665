"""Models from torchvision (`torchvision:<name>`) and timm (`timm:<name>`)."""
from __future__ import annotations

from typing import Any

import torch.nn as nn

TORCHVISION_INPUT = (3, 224, 224)


def replace_last_linear(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the model's last nn.Linear for a fresh one with `num_classes` outputs (in place)."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = (name, module)
    if last is None:
        raise ValueError(
            f"{type(model).__name__} has no nn.Linear head to resize to {num_classes} classes; "
            "create it with num_classes=1000 and replace the head yourself"
        )
    name, old = last
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))
    return model


def torchvision_model(name: str, num_classes: int, pretrained: bool, **kwargs: Any) -> nn.Module:
    """torchvision.models.get_model; pretrained weights come with 1000 classes, so the head is replaced after."""
    import torchvision

    if name not in torchvision.models.list_models():
        raise ValueError(
            f"unknown torchvision model {name!r} (from 'torchvision:{name}'); "
            "see torchvision.models.list_models()"
        )
    if pretrained:
        model = torchvision.models.get_model(name, weights="DEFAULT", **kwargs)
        if num_classes != 1000:
            replace_last_linear(model, num_classes)
    else:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    model.thinet_input_size = TORCHVISION_INPUT
    return model


def timm_model(name: str, num_classes: int, pretrained: bool, **kwargs: Any) -> nn.Module:
    """timm.create_model; the input size comes from the model's pretrained_cfg."""
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r} (from 'timm:{name}'); see timm.list_models()")
    model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, **kwargs)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    c, h, w = tuple(cfg.get("input_size", TORCHVISION_INPUT))
    # pretrained_cfg describes the released weights; an in_chans override changes the real input.
    model.thinet_input_size = (int(kwargs.get("in_chans", c)), int(h), int(w))
    return model


def prefixed_model(name: str, num_classes: int, pretrained: bool, **kwargs: Any) -> nn.Module:
    source, _, inner = name.partition(":")
    if not inner:
        raise ValueError(f"model name {name!r} lacks the model after '{source}:'")
    build = {"torchvision": torchvision_model, "timm": timm_model}[source]
    return build(inner, num_classes, pretrained, **kwargs)
