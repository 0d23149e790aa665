"""Forward / backward wall time of a model at a fixed batch size (Tables 1 and 3: batch 32).

Measured like Caffe's `time` command: warm-up passes, then the median of
several timed passes, synchronising CUDA around each. Runs on a deep copy, so
the caller's model (and its BatchNorm statistics) is untouched.

>>> from torch import nn
>>> t = time_forward_backward(nn.Conv2d(3, 4, 3), (3, 8, 8), batch_size=2, warmup=1, repeats=2)
>>> t["forward_ms"] > 0 and t["backward_ms"] > 0
True
"""
from __future__ import annotations

import copy
import statistics
import time
from typing import Callable, Sequence

import torch
from torch import nn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(run: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def time_forward_backward(model: nn.Module, input_size: Sequence[int], *, batch_size: int = 32,
                          device: str | torch.device | None = None, warmup: int = 3,
                          repeats: int = 10, seed: int = 0) -> dict[str, float]:
    """`{"forward_ms", "backward_ms"}`: median milliseconds per pass over `repeats` timed passes.

    Forward is timed in eval mode without autograd; backward is the gradient
    pass alone (its forward untimed), in train mode, of the sum of the outputs.
    """
    if len(input_size) != 3 or any(int(s) < 1 for s in input_size):
        raise ValueError(f"input_size must be (channels, height, width), got {tuple(input_size)!r}")
    for name, value, least in (("batch_size", batch_size, 1), ("warmup", warmup, 0), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    probe = copy.deepcopy(model).to(device)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, *map(int, input_size), generator=generator).to(device)

    probe.eval()

    def forward() -> None:
        with torch.no_grad():
            probe(x)

    forward_ms = _median_ms(forward, device, warmup, repeats)

    probe.train()

    def backward_timed() -> float:
        probe.zero_grad(set_to_none=True)
        out = probe(x).sum()
        _sync(device)
        start = time.perf_counter()
        out.backward()
        _sync(device)
        return (time.perf_counter() - start) * 1e3

    for _ in range(warmup):
        backward_timed()
    backward_ms = statistics.median(backward_timed() for _ in range(repeats))
    return {"forward_ms": forward_ms, "backward_ms": backward_ms}
