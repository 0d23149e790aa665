"""Kill the smoke workflow at random moments (SIGKILL and SIGTERM to its whole process group, as a
node loss or a preemption would), rerun it each time, and check that the final metrics.csv equals an
uninterrupted run's. Run by workflow/scripts/ci_workflow.sh after its smoke run, which is the reference.

    python tests/fault_injection.py --reference results/smoke/metrics.csv [--kills 3] [--seed 0]

The run is config/smoke.yaml under the name `smoke_fault` with `checkpoint_minutes: 0` (a resumable
save after every training step, so a SIGKILL loses at most one step). Columns that differ between any
two runs (the config name, MLflow run ids, wall-clock timings) are left out of the comparison.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = "smoke_fault"
VARYING = {"config", "mlflow_run_id", "forward_ms", "backward_ms"}


def snakemake(*extra: str) -> list[str]:
    return ["snakemake", "--cores", "2", "--configfile", "config/smoke.yaml",
            "--config", f"name={NAME}", "checkpoint_minutes=0", *extra]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return [{k: v for k, v in row.items() if k not in VARYING} for row in csv.DictReader(handle)]


def kill_once(delay: float, signum: int) -> bool:
    """Start (or continue) the run, send `signum` to its process group after `delay` s; False if it ended first."""
    proc = subprocess.Popen(snakemake("--rerun-incomplete"), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        pass
    os.killpg(proc.pid, signum)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:  # a SIGTERM not honoured within a cluster's grace time
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(1)
    try:  # jobs of the group still finishing their save after snakemake itself ended
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    subprocess.run(snakemake("--unlock"), cwd=ROOT, check=True, capture_output=True)
    return True


def mlflow_runs() -> tuple[int, int]:
    """(runs, finished runs) of the fault run's MLflow experiment in the default sqlite store."""
    with sqlite3.connect(ROOT / "results" / "mlflow.db") as db:
        return db.execute("SELECT COUNT(*), SUM(r.status = 'FINISHED') FROM runs r JOIN experiments e "
                          "ON r.experiment_id = e.experiment_id WHERE e.name = ?", (f"thinet-{NAME}",)).fetchone()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="metrics.csv of an uninterrupted smoke run")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--window", type=float, nargs=2, default=(10.0, 30.0),
                        help="each kill comes this many seconds (uniform) after its run starts (Snakemake itself starts in about 10 s; the smoke run then takes about 130 s on 2 quiet cores)")
    args = parser.parse_args()
    reference = rows(args.reference)
    rng = random.Random(args.seed)
    signals = [signal.SIGKILL, signal.SIGTERM] + [rng.choice((signal.SIGKILL, signal.SIGTERM))
                                                  for _ in range(args.kills - 2)]
    rng.shuffle(signals)
    subprocess.run(["rm", "-rf", f"results/{NAME}"], cwd=ROOT, check=True)
    start, survived = time.time(), 0
    for signum in signals:
        delay = rng.uniform(*args.window)
        killed = kill_once(delay, signum)
        survived += killed
        print(f"fault_injection: {signal.Signals(signum).name} after {delay:.1f} s: "
              f"{'killed, rerunning' if killed else 'the run had already ended'}", flush=True)
    subprocess.run(snakemake("--rerun-incomplete"), cwd=ROOT, check=True)
    final = rows(ROOT / "results" / NAME / "metrics.csv")
    runs, finished = mlflow_runs()
    print(f"fault_injection: seed {args.seed}, {survived} kills survived, {len(final)} metric rows, "
          f"{runs} MLflow runs logged ({finished} finished), {time.time() - start:.0f} s in all")
    if final != reference:
        diff = [(a, b) for a, b in zip(reference, final) if a != b][:3]
        print(f"fault_injection: FAILED: metrics.csv differs from the uninterrupted run "
              f"({len(reference)} vs {len(final)} rows); first differences: {diff}", file=sys.stderr)
        return 1
    print("fault_injection: metrics.csv equals the uninterrupted run's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
