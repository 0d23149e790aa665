"""What the report builders know besides the result files: the config's name and its transfer experiments.

>>> ReportContext("default").transfer_experiments is None
True
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportContext:
    """`transfer_experiments`: labels of the experiments that belong in Table 4; None means
    "every experiment whose label starts with 'transfer'" (when no config is at hand).
    `timing_batch_size`: the batch of the forward/backward timings (config key data.timing_batch_size)."""

    config: str
    transfer_experiments: frozenset[str] | None = None
    timing_batch_size: int = 32
