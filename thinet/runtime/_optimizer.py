"""The paper's optimizer (§4.2): SGD, momentum 0.9, weight decay 5e-4, and Caffe's bias rule.

Caffe's VGG-16 and ResNet solvers give every convolution and fully-connected bias twice the
learning rate and no weight decay (`lr_mult: 2, decay_mult: 0`); `OptimizerSettings(bias_lr_factor=2,
bias_weight_decay=False)` reproduces that. The defaults treat biases like every other parameter.

>>> from torch import nn
>>> opt = make_optimizer(nn.Linear(4, 2), 0.1, OptimizerSettings(bias_lr_factor=2.0, bias_weight_decay=False))
>>> [(g["lr"], g["weight_decay"], len(g["params"])) for g in opt.param_groups]
[(0.1, 0.0005, 1), (0.2, 0.0, 1)]
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
from torch import nn

from thinet.runtime._settings import settings_from_config

MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4


@dataclass(frozen=True)
class OptimizerSettings:
    """How the conv/linear biases are trained, relative to the other parameters."""

    bias_lr_factor: float = 1.0
    bias_weight_decay: bool = True

    def __post_init__(self) -> None:
        factor = self.bias_lr_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor < 0:
            raise ValueError(f"optimizer 'bias_lr_factor' must be a number >= 0, got {factor!r}")
        if not isinstance(self.bias_weight_decay, bool):
            raise ValueError(f"optimizer 'bias_weight_decay' must be true or false, got {self.bias_weight_decay!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | "OptimizerSettings" | None,
                    where: str = "optimizer") -> "OptimizerSettings":
        """From a config mapping (None: the defaults); an unknown key is an error naming `where.key`."""
        if config is None or isinstance(config, OptimizerSettings):
            return config or cls()
        return settings_from_config(cls, config, where, "an optimizer")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_optimizer(model: nn.Module, lr: float, settings: OptimizerSettings | None = None) -> torch.optim.SGD:
    """SGD with momentum 0.9 and weight decay 5e-4; the conv/linear biases in a second group per `settings`.

    The learning-rate scheduler multiplies each group's own rate, so the bias factor holds all along.
    """
    from thinet.models import layer_biases

    settings = settings or OptimizerSettings()
    biases = {id(p) for _, p in layer_biases(model)}
    weights = [p for p in model.parameters() if id(p) not in biases]
    bias_params = [p for p in model.parameters() if id(p) in biases]
    groups = [{"params": weights}]
    if bias_params:
        groups.append({"params": bias_params, "lr": lr * settings.bias_lr_factor,
                       "weight_decay": WEIGHT_DECAY if settings.bias_weight_decay else 0.0})
    return torch.optim.SGD(groups, lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
