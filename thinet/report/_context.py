"""What the report builders know besides the result files: the config's name, its transfer experiments,
how differences are decided and each experiment's fine-tuning budget.

>>> ReportContext("default").transfer_experiments is None
True
>>> ReportContext("default").statistics.margin
0.3
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from thinet.report._verdict import StatsSettings


@dataclass(frozen=True)
class ReportContext:
    """`transfer_experiments`: labels of the experiments that belong in Table 4; None means
    "every experiment whose label starts with 'transfer'" (when no config is at hand).
    `timing_batch_size`: the batch of the forward/backward timings (config key data.timing_batch_size).
    `statistics`: the interval level, equivalence margin and correction (config key `statistics`).
    `budgets`: experiment -> its chains' fine-tuning budget in words (`thinet.report.finetune_budgets`),
    in config order; the budget figure's x axis.
    `refused`: the criteria the plan left out of an experiment because they cannot score its layers, as
    (experiment, criterion, layer, reason) (the workflow's `Plan.refused`); the criteria tables list them."""

    config: str
    transfer_experiments: frozenset[str] | None = None
    timing_batch_size: int = 32
    statistics: StatsSettings = field(default_factory=StatsSettings)
    budgets: Mapping[str, str] = field(default_factory=dict)
    refused: Sequence[tuple[str, str, str, str]] = ()

    def refused_in(self, experiments: Sequence[str]) -> list[str]:
        """One line per criterion left out of these experiments, saying which layer it cannot score and why.

        >>> ctx = ReportContext("demo", refused=(("e", "bn_scale", "conv1_1", "no BatchNorm on its output"),))
        >>> ctx.refused_in(["e"])
        ["Not run in e: bn_scale cannot score layer 'conv1_1' (no BatchNorm on its output)."]
        """
        return [f"Not run in {experiment}: {criterion} cannot score layer {layer!r} ({reason})."
                for experiment, criterion, layer, reason in self.refused if experiment in set(experiments)]
