"""The aggregate job: every run's rows joined into metrics.csv, the table of runs beside it, and rows of an
earlier complete run of the same config reused instead of recomputed (config key `reuse`).

A results folder holds, beside `metrics.csv`, `runs.csv`: one line per evaluated run with its id, the
content hash of its settings (`hash`, the same digest that names its work folder) and the columns that
identify its rows in metrics.csv. Given a copy of both files of an earlier run (`reuse: {metrics:, runs:}`),
the plan marks every run whose id *and* hash are listed there as reused: Snakemake does not schedule it,
and the aggregate takes its rows from the earlier metrics.csv. A run whose settings changed has another
hash and runs again. This is how an arm (a new criterion, a new network) is added to a finished verdict
at the cost of the arm alone; the README says which rows of a results folder were reused from where.

>>> _normalised({"experiment": "e", "dataset": "d", "model": "m", "variant": "x r=0.5", "strategy": "s",
...              "criterion": "x", "keep_ratio": "0.5", "seed": "3"})
('e', 'd', 'm', 'x r=0.5', 's', 'x', 0.5, 3)
"""
from __future__ import annotations

import csv
import io
import os
from typing import Any, Iterable, Mapping

from thinet.experiment._metrics import base_row, read_rows
from thinet.experiment._spec import JobSpec, RunSpec
from thinet.runtime import write_text_atomic

IDENTITY = ("experiment", "dataset", "model", "variant", "strategy", "criterion", "keep_ratio", "seed")
RUNS_COLUMNS = ("run_id", "hash", *IDENTITY)


def identity(config: str, run: RunSpec) -> tuple:
    """The columns that tell a run's rows in metrics.csv, normalised (rate as float, seed as int)."""
    return _normalised(base_row(config, run))


def _normalised(row: Mapping[str, Any]) -> tuple:
    values = []
    for key in IDENTITY:
        value = row[key]
        if key == "keep_ratio":
            value = float(value)
        elif key == "seed":
            value = int(value)
        else:
            value = str(value)
        values.append(value)
    return tuple(values)


def write_runs_table(specs: Mapping[str, JobSpec], out: str | os.PathLike) -> int:
    """`runs.csv` (RUNS_COLUMNS) from the job specs of every evaluated run (by their file), written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RUNS_COLUMNS)
    for path in sorted(specs):
        spec = specs[path]
        writer.writerow([spec.run.id, spec.run.hash, *identity(spec.config, spec.run)])
    write_text_atomic(out, buffer.getvalue())
    return len(specs)


def read_runs_table(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """run id -> its line of a runs.csv; a file with other columns is an error naming it."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != RUNS_COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames} are not those of a runs table {list(RUNS_COLUMNS)}")
        return {line["run_id"]: line for line in reader}


def reusable_runs(plan_runs: Mapping[str, Mapping[str, Any]], evaluated: Iterable[str],
                  runs_table: str | os.PathLike) -> list[str]:
    """The evaluated runs of the plan listed in `runs_table` with the same hash (same settings)."""
    earlier = read_runs_table(runs_table)
    return [run_id for run_id in evaluated
            if run_id in earlier and earlier[run_id]["hash"] == plan_runs[run_id]["hash"]]


def reused_rows(metrics: str | os.PathLike, identities: Iterable[tuple]) -> list[dict[str, str]]:
    """The rows of an earlier metrics.csv that belong to the runs of `identities`; a run with no row there is
    an error naming it (the earlier run was not complete)."""
    wanted = set(identities)
    rows = [row for row in read_rows(metrics) if _normalised(row) in wanted]
    missing = wanted - {_normalised(row) for row in rows}
    if missing:
        first = dict(zip(IDENTITY, sorted(missing, key=str)[0]))
        raise ValueError(f"{metrics}: no rows for {len(missing)} reused run(s), e.g. {first}; reuse only the "
                         "metrics.csv of a complete run with its runs.csv")
    return rows


def run_aggregate_job(inputs: Iterable[str | os.PathLike], out: str | os.PathLike, runs_out: str | os.PathLike,
                      specs: Iterable[str | os.PathLike], reuse_metrics: str | os.PathLike | None = None,
                      reused_specs: Iterable[str | os.PathLike] = ()) -> tuple[int, int]:
    """metrics.csv from the jobs' row files plus the rows of the reused runs (found in `reuse_metrics` by the
    identity in their specs), and runs.csv from every evaluated run's spec; returns (rows, reused rows)."""
    from thinet.experiment._metrics import aggregate_rows

    read = {str(path): JobSpec.from_file(path) for path in specs}  # every spec checked before anything is written
    reused = [JobSpec.from_file(path) for path in reused_specs]
    extra: list[dict[str, str]] = []
    if reused:
        if reuse_metrics is None:
            raise ValueError("reused runs given without the earlier metrics.csv they come from")
        extra = reused_rows(reuse_metrics, [identity(spec.config, spec.run) for spec in reused])
    count = aggregate_rows(inputs, out, extra=extra)
    write_runs_table(read, runs_out)
    return count, len(extra)
