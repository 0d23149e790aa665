"""When a training loop saves its resumable state: every N minutes, and at once on SIGTERM/SIGINT.

A cluster preempts a job with SIGTERM (SLURM, then SIGKILL after its grace time); Ctrl-C is
SIGINT. The handler only notes the signal; the loop saves after the current step, then
`CheckpointTrigger.saved()` delivers the signal again with the previous handler, so the process
ends as it would have (killed by SIGTERM, KeyboardInterrupt for SIGINT). A second signal
before the save ends the process at once.

>>> trigger = CheckpointTrigger(minutes=10.0)
>>> with trigger:
...     trigger.due()
False
"""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Self

import torch
import torch.distributed as dist

DEFAULT_CHECKPOINT_MINUTES = 10.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class CheckpointTrigger:
    """A context manager: inside it, `due()` says whether to save now; `saved()` after each save.

    `minutes=None` saves only on a signal; `minutes=0` after every step (tests). Under
    `torch.distributed` every rank gets the same answer (rank 0 writes, all wait).
    """

    def __init__(self, minutes: float | None = DEFAULT_CHECKPOINT_MINUTES) -> None:
        if minutes is not None and (isinstance(minutes, bool) or not minutes >= 0):
            raise ValueError(f"checkpoint interval must be >= 0 minutes or None, got {minutes!r}")
        self.interval_s = None if minutes is None else 60.0 * minutes
        self.pending: int | None = None
        self._last = time.monotonic()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Self:
        self._last = time.monotonic()
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _note(self, signum: int, frame: Any) -> None:
        if self.pending is not None:  # asked twice: stop now
            self._restore()
            signal.raise_signal(signum)
            return
        self.pending = signum

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def due(self) -> bool:
        """True when a signal arrived or the interval has passed since the last save."""
        now = self.pending is not None or (
            self.interval_s is not None and time.monotonic() - self._last >= self.interval_s)
        if dist.is_available() and dist.is_initialized():
            flag = torch.tensor([float(now)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            now = bool(flag.item())
        return now

    def saved(self) -> None:
        """Restart the clock; if a signal asked for the save, deliver it again now."""
        self._last = time.monotonic()
        if self.pending is not None:
            signum, self.pending = self.pending, None
            self._restore()
            os.kill(os.getpid(), signum)
