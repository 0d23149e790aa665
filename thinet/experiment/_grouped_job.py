"""The workflow's grouped job (gcos, TPAMI 2019, reconstructed: `thinet.grouping`): the `from` chain's
pruned model grouped into the run's g groups by the run's grouping (gcos or a baseline), sampled from
the same selection images ThiNet used; evaluated right after the conversion on the per-step evaluation
subset (a `pruned` row with step 0 in steps.csv: "just after conversion"), then fine-tuned with the
run's `train` schedule by the training job (`run_train_job`, which saves the model and run.json). The
script then evaluates the final model (the `final` row), as a chain's job does.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from thinet.experiment._jobs import (
    device_label,
    eval_loader,
    load_model,
    log,
    resolve_device,
    selection_loader,
)
from thinet.experiment._metrics import base_row, write_rows
from thinet.experiment._offline import queue_beside
from thinet.experiment._spec import JobSpec
from thinet.experiment._tracking import Tracker, read_sidecar
from thinet.experiment._train_job import run_train_job
from thinet.grouping import convert_model, plan_grouping
from thinet.models import example_inputs, input_size_of
from thinet.runtime import (
    DEFAULT_CHECKPOINT_MINUTES,
    dist_info,
    evaluate,
    model_counts,
    seed_everything,
    setup_distributed,
)

# The metrics of the converted, not yet fine-tuned model that go to the run's MLflow run.
_LOGGED = ("top1", "top5", "loss", "params", "params_with_biases", "flops")


def _log_converted(spec: JobSpec, run_id: str, row: dict[str, Any], out: str | os.PathLike) -> None:
    tracker = Tracker.open(spec.mlflow.experiment, enabled=spec.mlflow.enabled and bool(run_id),
                           queue=queue_beside(out))
    if tracker.enabled:
        tracker.start_run(spec.run.id, run_id=run_id)
        tracker.log_metrics(run_id, {f"pruned_{k}": row[k] for k in _LOGGED})
        tracker.end_run(run_id)


def run_grouped_job(spec: JobSpec, selection: str | os.PathLike, source: str | os.PathLike, out: str | os.PathLike, *,
                    checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES) -> None:
    """Group the model in `source` as the run of `spec` says, evaluate it, fine-tune it; writes the model,
    run.json and steps.csv (its `pruned` row) beside `out`."""
    run = spec.run
    seed_everything(run.seed)
    info = dist_info()
    device = setup_distributed(info, resolve_device(spec.device, "config key 'device'"))
    model = load_model(source).to(device)
    plan = plan_grouping(model, run.groups, example_inputs(model))
    for line in plan.lines():
        log.info("%s: %s", run.id, line)
    convert_model(model, run.groups, run.grouping, batches=selection_loader(spec, selection), seed=run.seed,
                  samples_per_image=spec.selection.samples_per_image, plan=plan, progress=log.info)
    result = evaluate(model, eval_loader(spec, spec.data.step_eval_images), device=device)
    row = {**base_row(spec.config, run), "step": 0, "layer": "", "phase": "pruned", "top1": result["top1"],
           "top5": result["top5"], "loss": result["loss"], "eval_images": result["images"],
           **model_counts(model, input_size_of(model)), "device": device_label(device)}
    log.info("%s just after grouping: %s", run.id, row)
    run_train_job(spec, out, checkpoint_minutes=checkpoint_minutes, model=model)
    if info.is_main:
        out_dir = Path(out).parent
        row["mlflow_run_id"] = read_sidecar(out_dir / "run.json")
        _log_converted(spec, row["mlflow_run_id"], row, out)
        write_rows([row], out_dir / "steps.csv")
