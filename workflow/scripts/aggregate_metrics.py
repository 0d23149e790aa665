"""Concatenate per-run metric rows into the tidy table results/<config>/metrics.csv
(columns exactly as ARCHITECTURE.md; each input must already have them).

    python workflow/scripts/aggregate_metrics.py --out results/default/metrics.csv results/default/eval/*.csv
"""
from __future__ import annotations

import csv
import io

import jobkit


def main() -> None:
    parser = jobkit.job_parser(__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args()
    jobkit.start_job(args)
    rows = []
    for path in args.inputs:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != jobkit.METRICS_COLUMNS:
                raise ValueError(f"{path}: columns {reader.fieldnames} differ from the metrics schema "
                                 f"{list(jobkit.METRICS_COLUMNS)}")
            rows.extend(reader)
    # Whole-model rows first (base, final), then per-step rows, each in a stable order.
    order = {"base": 0, "final": 1, "pruned": 2, "finetuned": 2}
    rows.sort(key=lambda r: (order[r["phase"]], r["experiment"], r["model"], r["variant"], r["seed"],
                             int(r["step"]), r["phase"] == "finetuned"))
    jobkit.write_rows(rows, args.out)
    jobkit.log.info("metrics: %d rows from %d files -> %s", len(rows), len(args.inputs), args.out)


if __name__ == "__main__":
    main()
