"""A training budget and its learning-rate curve (paper §4.2–4.3).

A schedule is one of `epochs` (fractional allowed) or `iterations`, a start
learning rate, and optionally an end rate reached by `lr_schedule`:
- `step` (default): two equal drops, at one third and two thirds of the budget. The paper's
  "learning rate from 1e-3 to 1e-5" is Caffe's step policy: 1e-3, then 1e-4, then 1e-5;
- `exp`: geometric decay at every iteration, from `lr` at the first step to `lr_end` at the last;
- `cosine`: half a cosine from `lr` to `lr_end`.
Without `lr_end` the rate stays at `lr`.

>>> s = Schedule.from_config({"epochs": 12, "lr": 1e-3, "lr_end": 1e-5})
>>> s.total_steps(steps_per_epoch=100)
1200
>>> [round(s.lr_at(i, 1200), 8) for i in (0, 399, 400, 800, 1199)]
[0.001, 0.001, 0.0001, 1e-05, 1e-05]
>>> e = Schedule(epochs=12, lr=1e-3, lr_end=1e-5, lr_schedule="exp")
>>> round(e.lr_at(0, 1200), 8), round(e.lr_at(1199, 1200), 8)
(0.001, 1e-05)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from thinet.runtime._settings import settings_from_config

LR_SCHEDULES = ("step", "exp", "cosine")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Schedule:
    """Training budget (exactly one of `epochs`/`iterations`) and learning rate(s)."""

    epochs: float | None = None
    iterations: int | None = None
    lr: float = 1e-3
    lr_end: float | None = None
    lr_schedule: str = "step"

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
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"schedule 'lr_schedule' must be one of {', '.join(LR_SCHEDULES)}, "
                             f"got {self.lr_schedule!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | "Schedule", where: str = "schedule") -> "Schedule":
        """Build from a config mapping; unknown keys are an error naming `where.key`."""
        if isinstance(config, Schedule):
            return config
        return settings_from_config(cls, config, where, "a schedule")

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
        ratio = self.lr_end / self.lr
        step = min(max(step, 0), total - 1)
        if self.lr_schedule == "step":  # drops after 1/3 and 2/3 of the steps; the last third runs at lr_end
            return ratio ** ((3 * step // total) / 2)
        progress = step / (total - 1)
        if self.lr_schedule == "exp":
            return ratio ** progress
        return ratio + (1.0 - ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def lr_at(self, step: int, total: int) -> float:
        return self.lr * self.lr_factor(step, total)
