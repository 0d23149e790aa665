"""Explicit seeds: one entry point that seeds every RNG, and derived seeds for sub-tasks.

Every random choice in the suite flows from a seed the user gave; sub-tasks
(a pruning step, a fine-tuning phase) get their own stream via `derive_seed`, so
changing one step's work never shifts another step's random numbers.

>>> from thinet.runtime import seed_everything, derive_seed
>>> seed_everything(0)
>>> derive_seed(0, "step", 3) == derive_seed(0, "step", 3) != derive_seed(1, "step", 3)
True
"""
from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy and torch (CPU and every CUDA device)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed {seed!r} must be an int")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed derived from `seed` and labels, stable across runs and platforms."""
    text = "/".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def rng_state() -> dict[str, Any]:
    """Every global RNG state, to store in a checkpoint."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured (CUDA states only where CUDA is present)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
