"""`thinet bench selection`: Gram-based greedy selection vs one Gram product vs literal Algorithm 1.

Targets (from the project brief): select_channels ≤ 1.5× one X̂ᵀX̂ product, and
literal Algorithm 1 ≥ 20× slower than select_channels, both choosing the same channels.

    >>> res = run_selection_bench(m=400, channels=16, keep_ratio=0.5, repeats=1)
    >>> res["same_channels"]
    True
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from thinet.selection import algorithm1_literal, select_channels


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
                        seed: int = 0, literal: bool = True, device: str | torch.device = "cpu") -> dict:
    """Time (a) one X̂ᵀX̂, (b) select_channels with least squares, (c) literal Algorithm 1, on the same X̂."""
    dev = torch.device(device)
    x_hat = correlated_samples(m, channels, seed, dev)
    gram_s, _ = median_time(lambda: x_hat.T @ x_hat, dev, repeats)
    select_s, selection = median_time(lambda: select_channels(x_hat, keep_ratio, layer="bench"), dev, repeats)
    result = {"m": m, "channels": channels, "keep_ratio": keep_ratio, "device": str(dev),
              "gram_product_s": gram_s, "select_channels_s": select_s, "ratio_select_over_gram": select_s / gram_s}
    if literal:
        literal_s, removed = timed(lambda: algorithm1_literal(x_hat, keep_ratio), dev)
        result.update(literal_algorithm1_s=literal_s, ratio_literal_over_select=literal_s / select_s,
                      same_channels=bool(torch.equal(removed, selection.removed)))
    return result


def print_results(result: dict) -> None:
    """One `name: value` line per figure."""
    for name, value in result.items():
        print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")
