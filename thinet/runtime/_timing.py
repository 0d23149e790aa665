"""Forward / backward wall time of models at a fixed batch size (Tables 1 and 3: batch 32), measured
with PyTorch's own `torch.utils.benchmark.Timer.blocked_autorange`.

The Timer handles warm-up (its block-size estimate), accelerator synchronisation and the spread of
the replicates; we report the median and the interquartile range (IQR) of each pass. Several models
are measured *interleaved* (round 1: A, B, C; round 2: A, B, C; ...), their rounds merged per model,
so that a machine that slows down for a while slows every model alike and their ratios stay
comparable. Every model is timed on a deep copy, so the caller's model (and its BatchNorm
statistics) is untouched.

>>> from torch import nn
>>> t = time_forward_backward(nn.Conv2d(3, 4, 3), (3, 8, 8), batch_size=2, rounds=1, min_run_time=0.01)
>>> t["forward_ms"] > 0 and t["backward_ms"] > 0 and t["forward_iqr_ms"] >= 0
True
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from thinet.runtime._training import resolve_amp

if TYPE_CHECKING:
    from torch.utils import benchmark
# torch.utils.benchmark is imported where a model is timed: it imports torch.utils.cpp_extension, which
# looks for a CUDA toolkit (and warns "No CUDA runtime is found" on a machine without one).

PASSES = ("forward", "backward")


def check_input_size(input_size: Sequence[int]) -> tuple[int, int, int]:
    """`input_size` as a (channels, height, width) tuple of positive ints, or ValueError naming it."""
    if len(input_size) != 3 or any(int(s) < 1 for s in input_size):
        raise ValueError(f"input_size must be (channels, height, width), got {tuple(input_size)!r}")
    return tuple(int(s) for s in input_size)  # type: ignore[return-value]


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """Off unless `amp`; on CUDA the training loop's dtype (`resolve_amp`), on the CPU bfloat16."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=resolve_amp(True, device) if device.type == "cuda" else torch.bfloat16)


class _Probe:
    """One model on the timing device, measured pass by pass with a `torch.utils.benchmark.Timer`."""

    def __init__(self, name: str, model: nn.Module, x: torch.Tensor, amp: bool, threads: int,
                 channels_last: bool) -> None:
        self.model = copy.deepcopy(model).to(x.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.x, self.amp, self.name, self.threads = x, amp, name, threads

    def measure(self, pass_: str, min_run_time: float) -> benchmark.Measurement:
        """Forward: inference (eval mode, no autograd). Backward: the gradient pass alone of the sum of the
        outputs in train mode, over one graph built (untimed) for this measurement and retained across
        its runs, then dropped, so only one model's activations are held at a time."""
        from torch.utils import benchmark

        if pass_ == "forward":
            stmt, scope = "forward()", {"forward": self.forward}
        else:
            stmt, scope = "loss.backward(retain_graph=True)", {"loss": self.graph()}
        timer = benchmark.Timer(stmt, globals=scope, num_threads=self.threads, label=pass_, description=self.name)
        return timer.blocked_autorange(min_run_time=min_run_time)

    def forward(self) -> None:
        self.model.eval()
        with torch.no_grad(), autocast(self.x.device, self.amp):
            self.model(self.x)

    def graph(self) -> torch.Tensor:
        self.model.train()
        self.model.zero_grad(set_to_none=True)
        with autocast(self.x.device, self.amp):
            return self.model(self.x).float().sum()


def time_models(models: Mapping[str, nn.Module], input_size: Sequence[int], *, batch_size: int = 32,
                device: str | torch.device | None = None, rounds: int = 5, min_run_time: float = 0.2,
                threads: int | None = None, channels_last: bool = False, amp: bool = False, seed: int = 0,
                progress: Callable[[str], None] | None = None) -> dict[str, dict[str, float]]:
    """Time every model of `models` ({name: model}) interleaved; {name: timing} as `time_forward_backward`.

    Each of `rounds` rounds runs `blocked_autorange(min_run_time)` on every model's forward, then
    backward, in turn; the rounds of a model are merged before the median and IQR are taken.

    >>> from torch import nn
    >>> t = time_models({"a": nn.Conv2d(3, 4, 3), "b": nn.Conv2d(3, 8, 3)}, (3, 8, 8), batch_size=2,
    ...                 rounds=2, min_run_time=0.01)
    >>> sorted(t), sorted(t["a"])
    (['a', 'b'], ['backward_iqr_ms', 'backward_ms', 'forward_iqr_ms', 'forward_ms', 'threads'])
    """
    size = check_input_size(input_size)
    _check_counts(batch_size=batch_size, rounds=rounds, **({} if threads is None else {"threads": threads}))
    if not min_run_time > 0:
        raise ValueError(f"min_run_time must be > 0 seconds, got {min_run_time!r}")
    if not models:
        raise ValueError("time_models: no model to time")
    if device is None:
        param = next(next(iter(models.values())).parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    threads = torch.get_num_threads() if threads is None else threads
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, *size, generator=generator).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    probes = {name: _Probe(name, model, x, amp, threads, channels_last) for name, model in models.items()}
    measured: dict[str, dict[str, list[benchmark.Measurement]]] = {n: {p: [] for p in PASSES} for n in probes}
    for round_ in range(rounds):
        for name, probe in probes.items():
            if progress:
                progress(f"round {round_ + 1}/{rounds}: {name}")
            for pass_ in PASSES:
                measured[name][pass_].append(probe.measure(pass_, min_run_time))
    return {name: _summary(by_pass, threads) for name, by_pass in measured.items()}


def _summary(by_pass: Mapping[str, list[benchmark.Measurement]], threads: int) -> dict[str, Any]:
    from torch.utils import benchmark

    result: dict[str, Any] = {}
    for pass_, rounds in by_pass.items():
        (merged,) = benchmark.Measurement.merge(rounds)
        result[f"{pass_}_ms"] = merged.median * 1e3
        result[f"{pass_}_iqr_ms"] = merged.iqr * 1e3
    result["threads"] = threads
    return result


def time_forward_backward(model: nn.Module, input_size: Sequence[int], *, batch_size: int = 32,
                          device: str | torch.device | None = None, rounds: int = 3, min_run_time: float = 0.1,
                          threads: int | None = None, channels_last: bool = False, amp: bool = False,
                          seed: int = 0) -> dict[str, float]:
    """`{"forward_ms", "forward_iqr_ms", "backward_ms", "backward_iqr_ms", "threads"}` of one model.

    Forward is timed in eval mode without autograd; backward is the gradient pass alone (its
    forward untimed), in train mode, of the sum of the outputs. Milliseconds per pass of a batch of
    `batch_size` random images of `input_size`; `threads` defaults to torch's current thread count.
    """
    return time_models({"model": model}, input_size, batch_size=batch_size, device=device, rounds=rounds,
                       min_run_time=min_run_time, threads=threads, channels_last=channels_last, amp=amp,
                       seed=seed)["model"]
