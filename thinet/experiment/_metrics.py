"""Rows of the tidy metrics table (`results/<config>/metrics.csv`, columns in ARCHITECTURE.md):
the run-identifying columns of a job, writing rows, and joining every job's rows into the table.

>>> import io, csv
>>> row = {"config": "demo", "phase": "base", "top1": 91.5}
>>> sorted(k for k, v in complete(row).items() if v != "")
['config', 'phase', 'top1']
"""
from __future__ import annotations

import csv
import io
import os
from typing import Any, Iterable, Mapping

from thinet.experiment._spec import RunSpec
from thinet.runtime import write_text_atomic
from thinet.types import METRICS_COLUMNS

# Whole-model rows first (base, final), then per-step rows.
_PHASE_ORDER = {"base": 0, "final": 1, "pruned": 2, "finetuned": 2}


def base_row(config: str, run: RunSpec) -> dict[str, Any]:
    """The run-identifying columns of a metrics row: the config's name and the run's settings (the
    unpruned model's row has no strategy or criterion, and keep ratio 1.0).

    >>> from thinet.experiment._spec import TrainingSpec
    >>> run = RunSpec(id="e-original", kind="original", hash="0123abcd", dataset="d", model="m", seed=0,
    ...               after="base-m", training=TrainingSpec(8, None, {}, "torchvision"), experiment="e",
    ...               variant="Original", strategy="s", criterion="c", keep_ratio=0.5)
    >>> base_row("demo", run)["strategy"], base_row("demo", run)["keep_ratio"]
    ('', 1.0)
    """
    original = run.kind == "original"
    return {"config": config, "experiment": run.experiment, "dataset": run.dataset, "model": run.model,
            "variant": run.variant, "strategy": "" if original else _or_empty(run.strategy),
            "criterion": "" if original else _or_empty(run.criterion),
            "keep_ratio": 1.0 if original else _or_empty(run.keep_ratio), "seed": run.seed}


def _or_empty(value: Any) -> Any:
    return "" if value is None else value


def complete(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` with exactly METRICS_COLUMNS (missing and None cells empty); an unknown column is an error."""
    unknown = sorted(set(row) - set(METRICS_COLUMNS))
    if unknown:
        raise ValueError(f"metrics row has column(s) {unknown} outside the schema {list(METRICS_COLUMNS)}")
    return {k: "" if row.get(k) is None else row.get(k, "") for k in METRICS_COLUMNS}


def write_rows(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """CSV with exactly METRICS_COLUMNS, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(complete(row) for row in rows)
    write_text_atomic(path, buffer.getvalue())


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of one job's CSV; columns other than METRICS_COLUMNS are an error naming the file."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != METRICS_COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames} differ from the metrics schema "
                             f"{list(METRICS_COLUMNS)}")
        return list(reader)


def aggregate_rows(inputs: Iterable[str | os.PathLike], out: str | os.PathLike,
                   extra: Iterable[Mapping[str, Any]] = ()) -> int:
    """Join the jobs' CSVs (and `extra` rows: those reused from an earlier run) into the tidy table in a
    stable order; returns the number of rows."""
    rows = [row for path in inputs for row in read_rows(path)] + [dict(row) for row in extra]
    rows.sort(key=lambda r: (_PHASE_ORDER[r["phase"]], r["experiment"], r["model"], r["variant"], r["seed"],
                             int(r["step"]), r["phase"] == "finetuned"))
    write_rows(rows, out)
    return len(rows)
