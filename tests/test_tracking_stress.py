"""Many writers: 16 job processes logging at once lose nothing, in the default sqlite store (this test)
and through an MLflow tracking server (`.ci/check_mlflow_server` runs this file as a script).

    python tests/test_tracking_stress.py --experiment stress-ci   # against $MLFLOW_TRACKING_URI
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

WRITERS = 16
LOGS_PER_WRITER = 6  # bounded: the whole test stays well under a minute on 2 cores
METRICS = ("loss", "top1")


def _init(folder: str, experiment: str) -> None:
    from thinet.experiment import init_tracking

    os.chdir(folder)
    init_tracking(experiment, True, "mlflow.json")  # as the workflow's mlflow_store rule, before any job


def _job(folder: str, experiment: str, index: int, start) -> None:
    from thinet.experiment import Tracker

    os.chdir(folder)
    tracker = Tracker.open(experiment)
    start.wait()  # every writer hits the store at the same moment
    run_id = tracker.start_run(f"job {index}", params={"index": index})
    for step in range(LOGS_PER_WRITER):
        tracker.log_metrics(run_id, {"loss": index + step / 100, "top1": float(step)}, step=step)
    tracker.end_run(run_id)


def run_writers(folder: str, experiment: str) -> list[int | None]:
    """Create the store and `experiment` once, then WRITERS processes log at the same moment; their exit codes."""
    # Imported once here, so that the forked writers start at once (not 16 imports of torch on 2 cores);
    # thinet.experiment first: it turns MLflow's telemetry off before mlflow is imported (_tracking.py).
    import thinet.experiment  # noqa: F401
    import mlflow.tracking  # noqa: F401

    ctx = multiprocessing.get_context("fork")
    init = ctx.Process(target=_init, args=(folder, experiment))
    init.start()
    init.join(120)
    if init.exitcode != 0:
        raise RuntimeError(f"creating the store and experiment {experiment!r} failed (exit code {init.exitcode})")
    start = ctx.Barrier(WRITERS)
    jobs = [ctx.Process(target=_job, args=(folder, experiment, i, start)) for i in range(WRITERS)]
    began = time.perf_counter()
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(300)
    print(f"stress: {WRITERS} writers ran {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return [job.exitcode for job in jobs]


def lost(folder: str, experiment: str) -> list[str]:
    """What the store lacks of what the writers logged (read back through the MLflow client): [] when nothing."""
    from mlflow.tracking import MlflowClient

    from thinet.experiment._tracking import tracking_uri

    cwd = os.getcwd()
    os.chdir(folder)  # the default store lives under the folder
    try:
        client = MlflowClient(tracking_uri())
        found = client.get_experiment_by_name(experiment)
        runs = client.search_runs([found.experiment_id], max_results=1000) if found else []
        problems = []
        by_name = {run.info.run_name: run for run in runs}
        if sorted(by_name) != sorted(f"job {i}" for i in range(WRITERS)) or len(runs) != WRITERS:
            problems.append(f"runs {sorted(r.info.run_name for r in runs)}, expected job 0 .. job {WRITERS - 1}")
        for name, run in sorted(by_name.items()):
            if run.info.status != "FINISHED":
                problems.append(f"{name}: status {run.info.status}")
            index = int(name.split()[1])
            for metric in METRICS:
                steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))
                if steps != list(range(LOGS_PER_WRITER)):
                    problems.append(f"{name}: {metric} at steps {steps}, expected 0..{LOGS_PER_WRITER - 1}")
            if run.data.params.get("index") != str(index):
                problems.append(f"{name}: param index {run.data.params.get('index')!r}")
        return problems
    finally:
        os.chdir(cwd)


def test_sixteen_concurrent_jobs_lose_no_run_and_no_metric(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the default sqlite store under tmp_path
    assert run_writers(str(tmp_path), "stress") == [0] * WRITERS
    assert lost(str(tmp_path), "stress") == []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", required=True, help="a new experiment name (the store may hold others)")
    parser.add_argument("--folder", default=".", help="working folder of the writers (the default store's root)")
    args = parser.parse_args()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or "the default sqlite store"
    codes = run_writers(args.folder, args.experiment)
    problems = [f"writer {i} exited with {code}" for i, code in enumerate(codes) if code != 0]
    problems += lost(args.folder, args.experiment)
    for problem in problems:
        print(f"stress: LOST: {problem}", file=sys.stderr)
    print(f"stress: {WRITERS} concurrent writers through {uri}: {WRITERS} runs x {len(METRICS)} metrics x "
          f"{LOGS_PER_WRITER} steps {'all present and FINISHED' if not problems else 'NOT all there'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
