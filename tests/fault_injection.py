"""Kill the workflow mid-training (SIGKILL and SIGTERM to its whole process group, as a node loss or a
preemption would), rerun it each time, and check that it ends with an uninterrupted run's results and
a complete MLflow record. Run by workflow/scripts/ci_workflow.sh; exit status 1 on any difference.

    python tests/fault_injection.py [--kills 3] [--seed 0]

The run is config/smoke.yaml with config/ci/smoke_preempt.yaml over it (the ResNet base trains 3
epochs of 128 batches with `data.num_workers: 2`, no timed save), under the name `smoke_fault`, for
the base's evaluation and one ThiNet chain from it. First the same targets run uninterrupted under
`smoke_fault_reference`. Then each kill starts (or continues) the run, waits until the base's training
log shows a step (so the kill lands mid-training: a SIGTERM's save is mid-epoch, a SIGKILL falls back
to the last epoch end), waits a random 0-1.5 s more, kills, and clears Snakemake's lock
(`snakemake --unlock`, as after a lost node). A last rerun completes it. Then:
  - every row of the targets equals the reference's but for the columns that differ between any two
    runs: `config` (the name), `mlflow_run_id`, `forward_ms`, `backward_ms` (wall-clock timings);
  - no MLflow run of the experiment is left RUNNING (unfinished), every row's run is FINISHED (none
    lost), and each of those runs holds every metric step its reference run holds (no lost points).
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = "smoke_fault"
REFERENCE = f"{NAME}_reference"
CONFIGS = ("config/smoke.yaml", "config/ci/smoke_preempt.yaml")
KILLED_LOG = "logs/base/base-resnet.log"  # the long training job, where the kills land
TARGETS = ("eval/resnet_thinet-original.csv", "eval/resnet_thinet-thinet-r0.5-s0.csv",
           "chain/resnet_thinet-thinet-r0.5-s0/steps.csv")
VARYING = {"config", "mlflow_run_id", "forward_ms", "backward_ms"}
STEP_LINE = re.compile(r" step (\d+):")
UNFINISHED = {"RUNNING", "SCHEDULED"}


def snakemake(name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *(f"results/{name}/{t}" for t in TARGETS), "--cores", "2",
            "--configfile", *CONFIGS, "--config", f"name={name}", *extra]


def complete(name: str, *extra: str) -> None:
    """Run the targets to the end; on failure, show the end of Snakemake's output and stop."""
    done = subprocess.run(snakemake(name, *extra), check=False, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-6000:])
        raise SystemExit(f"fault_injection: FAILED: the run {name} exited {done.returncode}")


def rows(name: str) -> list[dict[str, str]]:
    out = []
    for target in TARGETS:
        with (ROOT / "results" / name / target).open(newline="") as handle:
            out += [{k: v for k, v in row.items() if k not in VARYING} for row in csv.DictReader(handle)]
    return out


def run_ids(name: str) -> set[str]:
    ids = set()
    for target in TARGETS:
        with (ROOT / "results" / name / target).open(newline="") as handle:
            ids |= {row["mlflow_run_id"] for row in csv.DictReader(handle)}
    return ids


def kill_once(rng: random.Random, signum: int) -> str:
    """Start (or continue) the run; once the training log shows a step, wait 0-1.5 s and send `signum` to
    the process group. Returns what happened, for the log line."""
    log = ROOT / "results" / NAME / KILLED_LOG
    log.unlink(missing_ok=True)  # the job writes it afresh: a step line in it is this attempt's
    proc = subprocess.Popen(snakemake(NAME, "--rerun-incomplete"), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (log.exists() and STEP_LINE.search(log.read_text())):
        if proc.poll() is not None:
            return "the run ended before its training logged a step"
        time.sleep(0.1)
    time.sleep(rng.uniform(0.0, 1.5))
    steps = STEP_LINE.findall(log.read_text())
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
    subprocess.run(snakemake(NAME, "--unlock"), cwd=ROOT, check=True, capture_output=True)
    return f"killed after training step {steps[-1]} was logged, rerunning"


def mlflow_problems() -> list[str]:
    """Unfinished runs of the fault run's experiment, rows whose run is not FINISHED, and metric steps
    of the reference's runs missing from the fault run's (matched by run name)."""
    from mlflow.tracking import MlflowClient

    from thinet.experiment import tracking_uri

    client = MlflowClient(tracking_uri(ROOT / "results"))

    def runs(name: str) -> dict:
        experiment = client.get_experiment_by_name(f"thinet-{name}")
        if experiment is None:
            raise SystemExit(f"fault_injection: no MLflow experiment thinet-{name} in {tracking_uri(ROOT / 'results')}")
        return {r.info.run_id: r for r in client.search_runs([experiment.experiment_id], max_results=10000)}

    fault, reference = runs(NAME), runs(REFERENCE)
    problems = [f"run {r.info.run_name} ({i}) is {r.info.status}" for i, r in fault.items() if r.info.status in UNFINISHED]
    by_name = {r.info.run_name: r for r in reference.values() if r.info.run_id in run_ids(REFERENCE)}
    for run_id in sorted(run_ids(NAME)):
        run = fault.get(run_id)
        if run is None or run.info.status != "FINISHED":
            problems.append(f"the results name run {run_id}, which is {'missing' if run is None else run.info.status}")
            continue
        ref = by_name.get(run.info.run_name)
        for key in sorted(ref.data.metrics) if ref else []:
            want = {m.step for m in client.get_metric_history(ref.info.run_id, key)}
            have = {m.step for m in client.get_metric_history(run_id, key)}
            if want - have:
                problems.append(f"run {run.info.run_name} ({run_id}) lost metric {key} at steps {sorted(want - have)[:10]}")
    statuses = [r.info.status for r in fault.values()]
    print(f"fault_injection: MLflow experiment thinet-{NAME}: {len(fault)} runs, "
          + ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses))))
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    signals = [signal.SIGKILL, signal.SIGTERM] + [rng.choice((signal.SIGKILL, signal.SIGTERM))
                                                  for _ in range(args.kills - 2)]
    rng.shuffle(signals)
    start = time.time()
    subprocess.run(["rm", "-rf", f"results/{NAME}", f"results/{REFERENCE}"], cwd=ROOT, check=True)
    complete(REFERENCE)
    print(f"fault_injection: uninterrupted reference in {time.time() - start:.0f} s", flush=True)
    for signum in signals:
        print(f"fault_injection: {signal.Signals(signum).name}: {kill_once(rng, signum)}", flush=True)
    complete(NAME, "--rerun-incomplete")
    reference, final = rows(REFERENCE), rows(NAME)
    problems = mlflow_problems()
    print(f"fault_injection: seed {args.seed}, {len(final)} result rows, {time.time() - start:.0f} s in all")
    if final != reference:
        diff = [(a, b) for a, b in zip(reference, final) if a != b][:3]
        problems.append(f"the results differ from the uninterrupted run's ({len(reference)} vs {len(final)} rows); "
                        f"first differences: {diff}")
    for problem in problems:
        print(f"fault_injection: FAILED: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("fault_injection: results equal the uninterrupted run's; every MLflow run finished, none lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
