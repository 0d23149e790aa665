"""Name -> constructor table behind `create_model` (timm-style `register_model`)."""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

import torch.nn as nn

ModelFn = Callable[..., nn.Module]

_MODELS: dict[str, ModelFn] = {}

# Prefixes handled by thinet.models.sources rather than by the table.
PREFIXES = ("torchvision:", "timm:")

# The families of this folder. They build on torchvision's model classes, whose import costs seconds
# (torchvision.ops loads torch._dynamo), so they are imported on the first lookup of a name, not with
# the package: a command that only lists criteria or prints its help never pays for them.
FAMILIES = ("thinet.models.vgg", "thinet.models.small", "thinet.models.resnet_v1")
_families_loaded = False


def load_families() -> None:
    """Import the families of `FAMILIES` (registering their models), once."""
    global _families_loaded
    if not _families_loaded:
        for module in FAMILIES:
            importlib.import_module(module)
        _families_loaded = True


def register_model(name: str) -> Callable[[ModelFn], ModelFn]:
    """Decorator adding a constructor `fn(num_classes, *, pretrained, **kwargs)` under `name`.

    >>> @register_model("my_net")  # doctest: +SKIP
    ... def my_net(num_classes=1000, *, pretrained=False): ...
    """
    if ":" in name:
        raise ValueError(f"model name {name!r} may not contain ':' (reserved for {PREFIXES})")

    def decorate(fn: ModelFn) -> ModelFn:
        if name in _MODELS and _MODELS[name] is not fn:
            raise ValueError(f"model {name!r} is already registered by {_MODELS[name].__module__}")
        _MODELS[name] = fn
        return fn

    return decorate


def available_models() -> list[str]:
    """Registered model names, sorted (`torchvision:<name>` and `timm:<name>` work too)."""
    load_families()
    return sorted(_MODELS)


def get_constructor(name: str) -> ModelFn:
    load_families()
    if name not in _MODELS:
        raise ValueError(
            f"unknown model {name!r}; available: {', '.join(available_models())}, "
            f"or any torchvision/timm model as 'torchvision:<name>' / 'timm:<name>'"
        )
    return _MODELS[name]


def check_kwargs(name: str, fn: ModelFn, kwargs: dict[str, Any]) -> None:
    """Reject keyword arguments the constructor does not take, before building anything."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [p for p in params if p not in ("num_classes", "pretrained")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"model {name!r} got unexpected argument(s) {unknown}; it accepts {accepted or 'none'}"
        )
