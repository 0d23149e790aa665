"""Many writers: 16 job processes logging at once to the default sqlite MLflow store lose nothing."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3

WRITERS = 16
LOGS_PER_WRITER = 6  # bounded: the whole test stays well under a minute on 2 cores


def _init(folder: str) -> None:
    from thinet.experiment import init_tracking

    os.chdir(folder)
    init_tracking("stress", True, "mlflow.json")  # as the workflow's mlflow_store rule, before any job


def _job(folder: str, index: int, start) -> None:
    from thinet.experiment import Tracker

    os.chdir(folder)
    tracker = Tracker.open("stress")
    start.wait()  # every writer hits the store at the same moment
    run_id = tracker.start_run(f"job {index}", params={"index": index})
    for step in range(LOGS_PER_WRITER):
        tracker.log_metrics(run_id, {"loss": index + step / 100, "top1": float(step)}, step=step)
    tracker.end_run(run_id)


def test_sixteen_concurrent_jobs_lose_no_run_and_no_metric(tmp_path):
    import mlflow.tracking  # noqa: F401  (imported once here, so the forked writers start at once)

    ctx = multiprocessing.get_context("fork")
    init = ctx.Process(target=_init, args=(str(tmp_path),))
    init.start()
    init.join(60)
    assert init.exitcode == 0
    start = ctx.Barrier(WRITERS)
    jobs = [ctx.Process(target=_job, args=(str(tmp_path), i, start)) for i in range(WRITERS)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(120)
    assert [job.exitcode for job in jobs] == [0] * WRITERS
    with sqlite3.connect(tmp_path / "results" / "mlflow.db") as db:
        runs = db.execute("SELECT name, status FROM runs").fetchall()
        metrics = db.execute("SELECT COUNT(*), COUNT(DISTINCT run_uuid) FROM metrics").fetchone()
    assert sorted(runs) == sorted((f"job {i}", "FINISHED") for i in range(WRITERS))
    assert metrics == (WRITERS * LOGS_PER_WRITER * 2, WRITERS)
