"""The workflow's training job: build the run's model (`_builders`: a base model, a GAP head, another
run's architecture from scratch, a model carried to this dataset) and train it with the run's
schedule; log an MLflow run (training curve) and write its id beside the model. Runs under torchrun.

A killed job's rerun resumes from its training state and logs into the same MLflow run (its id is
kept beside the state, `mlflow_run-<hash>.json`, until the model is saved).
"""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from thinet.experiment._builders import build_run_model
from thinet.experiment._data_job import unreadable_count
from thinet.experiment._pretrain_job import check_pretrained
from thinet.experiment._jobs import load_model, log, resolve_device, save_model, spec_dataset, train_loader
from thinet.experiment._offline import queue_beside
from thinet.experiment._spec import JobSpec
from thinet.experiment._tracking import Tracker, job_run, write_sidecar
from thinet.runtime import DEFAULT_CHECKPOINT_MINUTES, barrier, dist_info, seed_everything, setup_distributed, train


def _log_progress(tracker: Tracker, run_id: str, step: int, metrics: dict) -> None:
    tracker.log_metrics(run_id, {f"train_{k}": v for k, v in metrics.items()}, step)
    log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))


def run_train_job(spec: JobSpec, out: str | os.PathLike, source: str | os.PathLike | None = None, *,
                  checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES, model: nn.Module | None = None) -> None:
    """Build and train the model of the run of `spec` (starting from the model file `source` when the run
    starts from another run's model); save it to `out` with run.json beside it. A job that builds its
    model itself (the grouped job: `_grouped_job.py`) passes it as `model`."""
    run = spec.run
    if run.pretrain or run.kept:
        check_pretrained(run)
    seed_everything(run.seed)
    if model is None:
        model = build_run_model(run, spec_dataset(spec, "train"), None if source is None else load_model(source))
    schedule = None if run.kept else run.train  # a kept model was trained by its own rule
    info = dist_info()
    tracker = Tracker.open(spec.mlflow.experiment, enabled=spec.mlflow.enabled and info.is_main,
                           queue=queue_beside(out))
    out_dir = Path(out).parent
    state, marker = out_dir / f"train_state-{run.hash}.pt", out_dir / f"mlflow_run-{run.hash}.json"
    params = {k: v for k, v in run.to_dict().items() if k not in ("id", "hash", "source_hash")}
    run_id = job_run(tracker, marker, run.id, resume=state.exists(),
                     params={"config": spec.config, **params,
                             "unreadable_images_skipped": unreadable_count(spec.manifest)},
                     tags={"snakemake.output": str(Path(out).resolve()), "thinet.kind": run.kind,
                           "thinet.config": spec.config, "thinet.hash": run.hash})
    try:
        if schedule:
            device = setup_distributed(info, resolve_device(spec.device, "config key 'device'"))
            loader = train_loader(spec, run.seed)
            log.info("training %s (%s) for %s on %s", run.id, run.kind, schedule, device)
            history = train(model, loader, schedule, device=device, amp=spec.amp, seed=run.seed,
                            optimizer=run.training.optimizer, checkpoint_path=state,
                            checkpoint_minutes=checkpoint_minutes,
                            log=lambda step, m: _log_progress(tracker, run_id, step, m), desc=run.id)
            if history:
                log.info("last training record: %s", history[-1])
        if info.is_main:
            save_model(model, out)
            write_sidecar(out_dir / "run.json", tracker.resolve(run_id), run=run.id, output=str(out))
            state.unlink(missing_ok=True)
            marker.unlink(missing_ok=True)
    except Exception:
        tracker.end_run(run_id, status="FAILED")  # a rerun that resumes reopens it
        raise
    tracker.end_run(run_id)
    barrier(info)
