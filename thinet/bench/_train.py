"""`thinet bench train`: the suite's training loop against a bare PyTorch SGD loop.

Both loops train their own copy of the same model (vgg16_small) on the same
pre-built in-memory batches (batch 128 by default), timed in alternating
blocks after a warm-up; the median images/s of each is reported with their
ratio. The target is a ratio of at least 0.90: the per-step work `train` adds
(learning-rate schedule, loss/accuracy accumulation, seeding, the epoch-end
history record) must cost under 10 % of a bare loop. Checkpointing and the
`log` callback are *not* measured: the timed `train` runs without a checkpoint
path or a log function (a checkpoint is written once per epoch, and a block of
a few steps that resumed from its own previous checkpoint would not train at
all). On CUDA both loops run in fp32 without channels_last, so only the loop
overhead differs.

    >>> r = run_train_bench(steps=1, batch_size=4, repeats=1)  # doctest: +SKIP
"""
from __future__ import annotations

import copy
import statistics
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from thinet.bench._selection import timed
from thinet.models import create_model, input_size_of
from thinet.runtime import MOMENTUM, WEIGHT_DECAY, Schedule, train

TARGET_RATIO = 0.90


def _model(name: str, seed: int) -> tuple[nn.Module, tuple[int, int, int]]:
    torch.manual_seed(seed)
    model = create_model(name, 10)
    return model, input_size_of(model)


def _bare_loop(model: nn.Module, batches: list, lr: float) -> None:
    """The reference: nothing but the SGD step, as a PyTorch tutorial writes it."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    model.train()
    for images, labels in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()


def run_train_bench(*, steps: int = 10, batch_size: int = 128, repeats: int = 3, model_name: str = "vgg16_small",
                    device: str | torch.device = "cpu", seed: int = 0) -> dict[str, Any]:
    """Median images/s of the suite's `train` and of a bare loop, measured side by side.

    >>> r = run_train_bench(steps=1, batch_size=4, repeats=1)  # doctest: +SKIP
    >>> sorted(r)  # doctest: +SKIP
    ['bare_images_per_s', 'batch_size', 'device', 'model', 'ratio', 'repeats', 'steps', 'suite_images_per_s']
    """
    for name, value in (("steps", steps), ("batch_size", batch_size), ("repeats", repeats)):
        if value < 1:
            raise ValueError(f"bench train: {name} must be at least 1, got {value}")
    device = torch.device(device)
    base, size = _model(model_name, seed)
    suite_model, bare_model = copy.deepcopy(base).to(device), copy.deepcopy(base).to(device)
    generator = torch.Generator().manual_seed(seed)
    batches = [(torch.randn(batch_size, *size, generator=generator).to(device),
                torch.randint(0, 10, (batch_size,), generator=generator).to(device)) for _ in range(steps)]
    schedule = Schedule(iterations=steps, lr=0.01)

    def suite() -> None:
        train(suite_model, batches, schedule, device=device, amp=False, channels_last=False, seed=seed,
              progress=False)

    def bare() -> None:
        _bare_loop(bare_model, batches, schedule.lr)

    suite(), bare()  # warm-up: allocator, kernels, lazy imports
    times: dict[str, list[float]] = {"suite": [], "bare": []}
    for r in range(repeats):
        order = (("suite", suite), ("bare", bare)) if r % 2 == 0 else (("bare", bare), ("suite", suite))
        for name, fn in order:
            times[name].append(timed(fn, device)[0])
    images = steps * batch_size
    suite_ips = images / statistics.median(times["suite"])
    bare_ips = images / statistics.median(times["bare"])
    return {"model": model_name, "device": str(device), "batch_size": batch_size, "steps": steps,
            "repeats": repeats, "suite_images_per_s": suite_ips, "bare_images_per_s": bare_ips,
            "ratio": suite_ips / bare_ips}
