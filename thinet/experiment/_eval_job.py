"""The workflow's evaluation job: one run's model on the evaluation split (or `data.final_eval_images`
of it), its params, FLOPs and forward/backward time; logged, with the model itself, into the MLflow
run that produced the model; written as a metrics row (phase `base` for the unpruned model, else
`final`) with a sidecar naming the MLflow run.
"""
from __future__ import annotations

import os
from pathlib import Path

from thinet.experiment._jobs import device_label, eval_loader, load_model, log, resolve_device
from thinet.experiment._metrics import base_row, write_rows
from thinet.experiment._offline import queue_beside
from thinet.experiment._spec import JobSpec
from thinet.experiment._tracking import Tracker, read_sidecar, write_sidecar
from thinet.models import example_inputs, input_size_of
from thinet.runtime import evaluate, model_counts, time_forward_backward


def run_eval_job(spec: JobSpec, model_file: str | os.PathLike, source_run: str | os.PathLike,
                 out: str | os.PathLike) -> None:
    """Evaluate the model in `model_file` for the run of `spec`; write its row to `out` (and `out`.json)."""
    run, data = spec.run, spec.data
    device = resolve_device(spec.device, "config key 'device'")
    model = load_model(model_file).to(device)
    size = input_size_of(model)
    result = evaluate(model, eval_loader(spec, data.final_eval_images), device=device)
    timing = time_forward_backward(model, size, batch_size=data.timing_batch_size, device=device,
                                   rounds=data.timing_rounds, min_run_time=data.timing_min_run_time)
    timing = {k: timing[k] for k in ("forward_ms", "backward_ms")}  # metrics.csv's columns
    phase = "base" if run.kind == "original" else "final"
    row = {**base_row(spec.config, run), "step": -1, "layer": "", "phase": phase, "top1": result["top1"],
           "top5": result["top5"], "loss": result["loss"], "eval_images": result["images"],
           **model_counts(model, size), **timing,
           "device": device_label(device)}
    log.info("%s (%s): %s", run.id, phase, row)

    tracker = Tracker.open(spec.mlflow.experiment, enabled=spec.mlflow.enabled,
                           queue=queue_beside(out, own_folder=False))
    run_id = read_sidecar(source_run) if tracker.enabled else ""
    if run_id:
        tracker.start_run(run.id, run_id=run_id)
        tracker.log_metrics(run_id, {f"{phase}_{k}": row[k] for k in
                                     ("top1", "top5", "loss", "params", "params_with_biases", "flops",
                                      "forward_ms", "backward_ms")})
        tracker.set_tags(run_id, {f"snakemake.eval.{run.id}": str(Path(out).resolve()),
                                  "thinet.variant": run.variant})
        if spec.mlflow.log_model:
            tracker.log_model(run_id, model.cpu().eval(), example_inputs(model, device="cpu").numpy(),
                              source=model_file)
        tracker.end_run(run_id)
    row["mlflow_run_id"] = tracker.resolve(run_id) if run_id else run_id
    write_rows([row], out)
    if run_id:
        tracker.log_artifact(run_id, out, "metrics")
    write_sidecar(Path(out).with_suffix(".json"), row["mlflow_run_id"], run=run.id, output=str(out), row=row)
