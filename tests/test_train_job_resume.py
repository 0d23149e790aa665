"""A killed training job's rerun continues its MLflow run and its running loss (issue 25, item 3)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from job_specs import base_run, job_spec
from thinet.experiment import JobSpec, run_train_job
from thinet.experiment import _train_job

ITERATIONS = 10  # 40 images in batches of 8: 5 steps per epoch, logged at steps 5 and 10


class _Killed(Exception):
    pass


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    """One folder for the tests' default store (results/mlflow.db; made once: seconds) and dataset."""
    from thinet.data import make_fixture

    folder = tmp_path_factory.mktemp("train_job")
    make_fixture("fashion_mnist", folder / "fmnist", per_class=4, seed=0)
    return folder


@pytest.fixture
def spec(shared, monkeypatch, request) -> JobSpec:
    monkeypatch.chdir(shared)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = shared / "fmnist"
    run = base_run(train={"iterations": ITERATIONS, "lr": 0.01})
    return JobSpec.from_dict(job_spec(run, {"name": "fashion_mnist", "root": str(root)},
                                      mlflow={"enabled": True, "experiment": request.node.name, "log_model": False}))


def _runs(experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    from thinet.experiment._tracking import tracking_uri

    client = MlflowClient(tracking_uri())
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id])


def _curve(run) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    from thinet.experiment._tracking import tracking_uri

    history = MlflowClient(tracking_uri()).get_metric_history(run.info.run_id, "train_loss")
    return sorted((m.step, m.value) for m in history)


def test_a_killed_training_job_reruns_into_the_same_mlflow_run_and_loss_interval(spec, tmp_path, monkeypatch):
    run_train_job(spec, tmp_path / "whole" / "model.pt", checkpoint_minutes=None)
    (reference,) = _runs(spec.mlflow.experiment)
    assert [step for step, _ in _curve(reference)] == [5, ITERATIONS]

    spec = replace(spec, mlflow=replace(spec.mlflow, experiment="killed"))
    out = tmp_path / "killed" / "model.pt"
    log_progress = _train_job._log_progress

    def killed_at_the_last_log(tracker, run_id, step, metrics):
        if step == ITERATIONS:  # the state on disk holds step 9: the interval 6-10 is half done
            raise _Killed
        log_progress(tracker, run_id, step, metrics)

    monkeypatch.setattr(_train_job, "_log_progress", killed_at_the_last_log)
    with pytest.raises(_Killed):
        run_train_job(spec, out, checkpoint_minutes=0)  # a save after every step
    assert (out.parent / f"train_state-{spec.run.hash}.pt").exists()
    monkeypatch.setattr(_train_job, "_log_progress", log_progress)
    run_train_job(spec, out, checkpoint_minutes=0)

    (resumed,) = _runs("killed")  # one run, not one per attempt
    assert resumed.info.status == "FINISHED"
    assert _curve(resumed) == _curve(reference)  # step 10's loss covers steps 6-10, as uninterrupted
    from thinet.experiment import read_sidecar

    assert read_sidecar(out.parent / "run.json") == resumed.info.run_id
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.pt", "run.json"]  # state and marker gone


def test_a_rerun_with_no_state_to_resume_ends_the_earlier_run_killed(spec, tmp_path, monkeypatch):
    out = tmp_path / "m" / "model.pt"
    log_progress = _train_job._log_progress

    def killed_before_any_save(*_args):
        raise _Killed

    monkeypatch.setattr(_train_job, "_log_progress", killed_before_any_save)
    with pytest.raises(_Killed):
        run_train_job(spec, out, checkpoint_minutes=None)  # first log at step 5, before any save
    (out.parent / f"train_state-{spec.run.hash}.pt").unlink(missing_ok=True)  # as a kill before the save
    monkeypatch.setattr(_train_job, "_log_progress", log_progress)
    run_train_job(spec, out, checkpoint_minutes=None)
    statuses = sorted(r.info.status for r in _runs(spec.mlflow.experiment))
    assert statuses == ["FINISHED", "KILLED"]  # none left RUNNING; the new run holds the whole curve
