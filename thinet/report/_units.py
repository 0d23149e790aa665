"""Readable units for parameter and FLOP counts, chosen once per table or axis.

>>> count_unit([30_940_000_000], "flops"), count_unit([41_000], "params")
(('B', 1000000000.0), ('K', 1000.0))
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

# (label, divisor), largest first; the paper writes M/B for 10^6/10^9.
_UNITS = (("B", 1e9), ("M", 1e6), ("K", 1e3))
_SMALLEST = {"params": "K", "flops": "K"}
_LARGEST = {"params": "M", "flops": "B"}


def count_unit(values: Iterable[float], kind: str) -> tuple[str, float]:
    """The largest unit (at most M for parameters, B for FLOPs) in which the largest value is at least 1."""
    if kind not in _LARGEST:
        raise ValueError(f"unknown count kind {kind!r}; expected one of {sorted(_LARGEST)}")
    numbers = pd.to_numeric(pd.Series(list(values), dtype="float64"), errors="coerce").dropna()
    top = float(numbers.abs().max()) if len(numbers) else 0.0
    allowed = [u for u in _UNITS if u[1] <= dict(_UNITS)[_LARGEST[kind]]]
    for label, divisor in allowed:
        if top >= divisor or label == _SMALLEST[kind]:
            return label, divisor
    raise AssertionError("unreachable: the smallest unit always matches")
