"""What the report builders know besides the result files: the config's name, its transfer experiments,
how differences are decided and each experiment's fine-tuning budget.

>>> ReportContext("default").transfer_experiments is None
True
>>> ReportContext("default").statistics.margin
0.3
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from thinet.report._verdict import StatsSettings


@dataclass(frozen=True)
class ReportContext:
    """`transfer_experiments`: labels of the experiments that belong in Table 4; None means
    "every experiment whose label starts with 'transfer'" (when no config is at hand).
    `timing_batch_size`: the batch of the forward/backward timings (config key data.timing_batch_size).
    `statistics`: the interval level, equivalence margin and correction (config key `statistics`).
    `budgets`: experiment -> its chains' fine-tuning budget in words (`thinet.report.finetune_budgets`),
    in config order; the budget figure's x axis."""

    config: str
    transfer_experiments: frozenset[str] | None = None
    timing_batch_size: int = 32
    statistics: StatsSettings = field(default_factory=StatsSettings)
    budgets: Mapping[str, str] = field(default_factory=dict)
