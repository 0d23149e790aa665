"""`thinet bench selection`: Gram-based greedy selection vs one Gram product vs literal Algorithm 1,
and the forward greedy of the TPAMI version (`thinet_forward`) on the same X̂.

Targets (from the project brief): select_channels ≤ 1.5× one X̂ᵀX̂ product, and
literal Algorithm 1 ≥ 20× slower than select_channels, both choosing the same channels.
The literal Algorithm 1 runs in the samples' own dtype (float32), like the fast path's
X̂ᵀX̂; `literal_float64=True` adds a float64 run, labelled, for reference.

    >>> res = run_selection_bench(m=400, channels=16, keep_ratio=0.5, repeats=1)
    >>> res["same_channels"]
    True
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from thinet.selection import (
    algorithm1_literal,
    select_channels,
    select_channels_forward,
)


def correlated_samples(m: int, channels: int, seed: int = 0, device: str | torch.device = "cpu") -> torch.Tensor:
    """Float32 m×C samples with correlated channels: low rank (C/8) plus noise, uneven channel scales.

    >>> correlated_samples(10, 4, seed=1).shape
    torch.Size([10, 4])
    """
    gen = torch.Generator().manual_seed(seed)
    rank = max(1, channels // 8)
    basis = torch.randn(m, rank, generator=gen)
    mix = torch.randn(rank, channels, generator=gen)
    scales = torch.rand(channels, generator=gen) * 2 + 0.1
    x = (basis @ mix + 0.5 * torch.randn(m, channels, generator=gen)) * scales
    return x.to(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """Seconds taken by `fn()` (CUDA work included) and its result."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


def median_time(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, object]:
    """Median seconds over `repeats` calls after one warm-up call, and the last result."""
    _, result = timed(fn, device)
    times = []
    for _ in range(repeats):
        seconds, result = timed(fn, device)
        times.append(seconds)
    return statistics.median(times), result


def run_selection_bench(m: int = 100_000, channels: int = 512, keep_ratio: float = 0.5, *, repeats: int = 3,
                        seed: int = 0, literal: bool = True, literal_float64: bool = False,
                        device: str | torch.device = "cpu") -> dict:
    """Time on the same float32 X̂: (a) one X̂ᵀX̂, (b) select_channels with least squares, (c) the forward
    greedy `thinet_forward` with least squares, (d) literal Algorithm 1 in float32 (and, optionally, float64)."""
    dev = torch.device(device)
    x_hat = correlated_samples(m, channels, seed, dev)
    gram_s, _ = median_time(lambda: x_hat.T @ x_hat, dev, repeats)
    select_s, selection = median_time(lambda: select_channels(x_hat, keep_ratio, layer="bench"), dev, repeats)
    forward_s, _ = median_time(lambda: select_channels_forward(x_hat, keep_ratio, layer="bench"), dev, repeats)
    result = {"m": m, "channels": channels, "keep_ratio": keep_ratio, "device": str(dev), "dtype": str(x_hat.dtype),
              "gram_product_s": gram_s, "select_channels_s": select_s, "ratio_select_over_gram": select_s / gram_s,
              "thinet_forward_s": forward_s, "ratio_forward_over_select": forward_s / select_s}
    if literal:
        literal_s, removed = timed(lambda: algorithm1_literal(x_hat, keep_ratio, dtype=x_hat.dtype), dev)
        result.update(literal_algorithm1_float32_s=literal_s, ratio_literal_float32_over_select=literal_s / select_s,
                      ratio_literal_float32_over_forward=literal_s / forward_s,
                      same_channels_float32=bool(torch.equal(removed, selection.removed)))
    if literal and literal_float64:
        literal64_s, removed64 = timed(lambda: algorithm1_literal(x_hat, keep_ratio, dtype=torch.float64), dev)
        result.update(literal_algorithm1_float64_s=literal64_s, ratio_literal_float64_over_select=literal64_s / select_s,
                      same_channels_float64=bool(torch.equal(removed64, selection.removed)))
    result["same_channels"] = all(v for k, v in result.items() if k.startswith("same_channels_"))
    return result


def print_results(result: dict) -> None:
    """One `name: value` line per figure."""
    for name, value in result.items():
        print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")
