"""What a workflow run logged to MLflow, checked through the MLflow client against the run's own outputs.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python .ci/mlflow_server_check_runs.py results/smoke_restart

Expected (read from the results folder, no number typed here):
  * the experiment holds exactly the runs the `run.json` sidecars name (one per trained model and chain)
    and the chains' step runs (their children), every one FINISHED: none lost, none left RUNNING, no
    stray run of a restarted job;
  * each `base`/`final` row of metrics.csv: its run holds `<phase>_<column>` for every number the row has
    (top1, top5, loss, params, params_with_biases, flops, forward_ms, backward_ms), equal to the row;
  * each `pruned`/`finetuned` row: its step run holds `<phase>_<column>` likewise; a fine-tuned step's run
    holds its fine-tuning curve (`train_loss`);
  * each run that trained (its spec has a `train` schedule and is not `kept`) holds `train_loss`.
A run created while the server was away is named in the results by its placeholder (`offline-...`);
after `thinet mlflow-sync` the placeholder is read as the run it was replayed into (offline_run_ids).
Exits 1 listing every problem.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

NUMBERS = ("top1", "top5", "loss", "params", "params_with_biases", "flops", "forward_ms", "backward_ms")


def check(results: Path, experiment: str) -> tuple[list[str], dict[str, int]]:
    from thinet.experiment import offline_run_ids  # first: it turns MLflow's telemetry off, see _tracking.py
    from mlflow.tracking import MlflowClient

    replayed = offline_run_ids(results)  # placeholder -> run id, for runs created while the server was away

    client = MlflowClient()  # MLFLOW_TRACKING_URI
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return [f"no experiment {experiment!r} at {client.tracking_uri}"], {}
    runs = {r.info.run_id: r for r in client.search_runs([found.experiment_id], max_results=5000)}
    problems: list[str] = []

    sidecars = {}
    for path in sorted(results.glob("*/*/run.json")):
        sidecar = json.loads(path.read_text())
        sidecars[sidecar["run"]] = replayed.get(sidecar["mlflow_run_id"], sidecar["mlflow_run_id"])
    tops = set(sidecars.values())
    children = {rid for rid, r in runs.items() if r.data.tags.get("mlflow.parentRunId") in tops}
    for name, rid in sorted(sidecars.items()):
        if rid not in runs:
            problems.append(f"{name}: its run {rid} (run.json) is not in the store")
    for rid, run in sorted(runs.items()):
        if rid not in tops | children:
            problems.append(f"stray run {run.info.run_name!r} ({rid}, {run.info.status}): no output names it")
        if run.info.status != "FINISHED":
            problems.append(f"run {run.info.run_name!r} ({rid}) is {run.info.status}, not FINISHED")

    rows = list(csv.DictReader(open(results / "metrics.csv", newline="")))
    checked = 0
    for row in rows:
        rid, phase, what = row["mlflow_run_id"], row["phase"], f"metrics.csv row {row['variant']!r} {row['phase']}"
        rid = replayed.get(rid, rid)
        run = runs.get(rid)
        if run is None:
            problems.append(f"{what} (step {row['step']}): its run {rid!r} is not in the store")
            continue
        for column in NUMBERS:
            if row[column] == "":
                continue
            logged = run.data.metrics.get(f"{phase}_{column}")
            if logged is None:
                problems.append(f"{what}: run {run.info.run_name!r} lacks metric {phase}_{column}")
            elif not math.isclose(logged, float(row[column]), rel_tol=1e-9, abs_tol=1e-12):
                problems.append(f"{what}: {phase}_{column} is {logged} in MLflow, {row[column]} in metrics.csv")
            checked += 1
        if phase == "finetuned" and "train_loss" not in run.data.metrics:
            problems.append(f"{what}: step run {run.info.run_name!r} holds no fine-tuning curve (train_loss)")

    for spec_file in sorted((results / "specs").glob("*.json")):
        spec = json.loads(spec_file.read_text())
        run = spec.get("run") or {}
        if run.get("train") and not run.get("kept") and run.get("id") in sidecars:
            rid = sidecars[run["id"]]
            if rid in runs and "train_loss" not in runs[rid].data.metrics:
                problems.append(f"{run['id']}: trained, but its run holds no train_loss curve")
    return problems, {"runs": len(runs), "top-level runs": len(tops), "step runs": len(children),
                      "runs replayed from offline queues": len(replayed), "metrics.csv rows": len(rows),
                      "metric values compared": checked}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="results/<config name>")
    parser.add_argument("--experiment", help="MLflow experiment (default thinet-<config name>)")
    args = parser.parse_args()
    problems, counts = check(args.results, args.experiment or f"thinet-{args.results.name}")
    for problem in problems:
        print(f"mlflow check: {problem}", file=sys.stderr)
    print("mlflow check: " + ", ".join(f"{v} {k}" for k, v in counts.items())
          + (f"; {len(problems)} PROBLEM(S)" if problems else "; all FINISHED, every expected metric there"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
