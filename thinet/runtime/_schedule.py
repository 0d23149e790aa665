"""A training budget and its learning-rate curve (paper §4.2–4.3).

A schedule is one of `epochs` (fractional allowed) or `iterations`, a start
learning rate, and optionally an end rate: the rate then decays geometrically
from `lr` to `lr_end` over the budget (the paper's "1e-3 to 1e-5").

>>> s = Schedule.from_config({"epochs": 12, "lr": 1e-3, "lr_end": 1e-5})
>>> s.total_steps(steps_per_epoch=100)
1200
>>> round(s.lr_at(0, 1200), 8), round(s.lr_at(1199, 1200), 8)
(0.001, 1e-05)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

_KEYS = ("epochs", "iterations", "lr", "lr_end")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Schedule:
    """Training budget (exactly one of `epochs`/`iterations`) and learning rate(s)."""

    epochs: float | None = None
    iterations: int | None = None
    lr: float = 1e-3
    lr_end: float | None = None

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.iterations is None):
            raise ValueError(f"schedule needs exactly one of 'epochs' or 'iterations', got "
                             f"epochs={self.epochs!r}, iterations={self.iterations!r}")
        if self.epochs is not None and (not _is_number(self.epochs) or self.epochs <= 0):
            raise ValueError(f"schedule 'epochs' must be a positive number, got {self.epochs!r}")
        if self.iterations is not None and (
                isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 1):
            raise ValueError(f"schedule 'iterations' must be a positive int, got {self.iterations!r}")
        if not _is_number(self.lr) or self.lr <= 0:
            raise ValueError(f"schedule 'lr' must be a positive number, got {self.lr!r}")
        if self.lr_end is not None and (not _is_number(self.lr_end) or self.lr_end <= 0):
            raise ValueError(f"schedule 'lr_end' must be a positive number, got {self.lr_end!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | "Schedule", where: str = "schedule") -> "Schedule":
        """Build from a config mapping; unknown keys are an error naming `where.key`."""
        if isinstance(config, Schedule):
            return config
        if not isinstance(config, Mapping):
            raise ValueError(f"{where} must be a mapping with keys {list(_KEYS)}, got {config!r}")
        unknown = sorted(set(config) - set(_KEYS))
        if unknown:
            raise ValueError(f"{where}.{unknown[0]} is not a schedule key (known: {', '.join(_KEYS)})")
        try:
            return cls(**dict(config))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps in the budget; a fractional epoch rounds up to whole batches."""
        if self.iterations is not None:
            return self.iterations
        if steps_per_epoch < 1:
            raise ValueError("the training data yields no batches (steps_per_epoch = 0)")
        return max(1, math.ceil(self.epochs * steps_per_epoch - 1e-9))

    def lr_factor(self, step: int, total: int) -> float:
        """Multiplier of `lr` at optimizer step `step` (0-based) of `total`."""
        if self.lr_end is None or total <= 1:
            return 1.0
        progress = min(step, total - 1) / (total - 1)
        return (self.lr_end / self.lr) ** progress

    def lr_at(self, step: int, total: int) -> float:
        return self.lr * self.lr_factor(step, total)
