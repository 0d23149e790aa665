"""The workflow's pruning-chain job: every layer of the run's strategy, in order, selected by the run's
criterion, pruned and fine-tuned (`thinet.pipeline.prune_chain`), then the final fine-tune. One
checkpoint per layer lives in the run's work folder, so a killed job restarts at the first
unfinished layer.

MLflow: a parent run for the chain (kept across restarts: its id is stored in the work folder) and
a child run per layer step with the fine-tuning curve and the step's evaluations. Writes the model,
steps.csv (rows `pruned` per step and `finetuned` per fine-tuned step, on the fixed evaluation subset)
and run.json.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from thinet.criteria import load_criterion_modules
from thinet.experiment._data_job import unreadable_count
from thinet.experiment._jobs import (
    device_label, eval_loader, load_model, log, resolve_device, save_model, selection_loader, train_loader,
)
from thinet.experiment._metrics import base_row, write_rows
from thinet.experiment._offline import queue_beside
from thinet.experiment._spec import JobSpec
from thinet.experiment._tracking import Tracker, write_sidecar
from thinet.models import example_inputs, input_size_of
from thinet.pipeline import prune_chain
from thinet.runtime import (
    DEFAULT_CHECKPOINT_MINUTES,
    atomic_write_json, barrier, dist_info, evaluate, model_counts, seed_everything, setup_distributed,
)
from thinet.strategies import get_strategy

PHASES = ("pruned", "finetuned")


class StepTracker:
    """A child MLflow run per layer step; evaluations are also kept as JSON in the work folder."""

    def __init__(self, tracker: Tracker, parent: str, workdir: Path, steps, loader, device) -> None:
        self.tracker, self.parent, self.workdir = tracker, parent, workdir
        self.steps, self.loader, self.device = steps, loader, device
        self.child = ""

    def child_for(self, index: int) -> str:
        layer = self.steps[index].pair.producer
        found = self.tracker.find_child(self.parent, "thinet.step", str(index))
        return self.tracker.start_run(f"step {index:03d} {layer}", parent=self.parent, run_id=found,
                                      params={"step": index, "layer": layer,
                                              "keep_ratio": self.steps[index].keep_ratio},
                                      tags={"thinet.step": str(index), "thinet.layer": layer})

    def evaluate(self, model, phase: str, index: int) -> dict[str, Any]:
        if phase == "pruned":
            self.child = self.child_for(index)
        result = evaluate(model, self.loader, device=self.device)
        result.update(model_counts(model, input_size_of(model)), layer=self.steps[index].pair.producer,
                      mlflow_run_id=self.tracker.resolve(self.child))
        if dist_info().is_main:
            atomic_write_json(result, self.workdir / f"eval_{index:03d}_{phase}.json")
        self.tracker.log_metrics(self.child, {f"{phase}_{k}": v for k, v in result.items()
                                              if k in ("top1", "top5", "loss", "params", "params_with_biases", "flops")})
        self.tracker.log_metrics(self.parent, {f"{phase}_top1": result["top1"], "params": result["params"],
                                               "flops": result["flops"]}, step=index)
        if phase == "finetuned" or not self.tuned(index):
            self.tracker.end_run(self.child)
        log.info("step %d %s %s: top1 %.2f%%, params %d, flops %d", index, result["layer"], phase,
                 result["top1"], result["params"], result["flops"])
        return result

    def tuned(self, index: int) -> bool:
        """Whether fine-tuning (and a `finetuned` evaluation) follows step `index`."""
        return self.steps[index].finetune_after or index == len(self.steps) - 1

    def log_training(self, step: int, metrics: dict[str, float]) -> None:
        self.tracker.log_metrics(self.child, metrics, step)


def step_rows(spec: JobSpec, workdir: Path, steps, device_name: str) -> list[dict[str, Any]]:
    """Rows `pruned` for every step and `finetuned` for the steps fine-tuned (ResNet: each block's last)."""
    rows = []
    for index, step in enumerate(steps):
        tuned = step.finetune_after or index == len(steps) - 1
        for phase in PHASES if tuned else PHASES[:1]:
            path = workdir / f"eval_{index:03d}_{phase}.json"
            if not path.exists():
                raise FileNotFoundError(f"chain step {index} has no '{phase}' evaluation ({path}); "
                                        f"remove the work folder {workdir} to redo the chain")
            res = json.loads(path.read_text())
            rows.append({**base_row(spec.config, spec.run), "step": index, "layer": res["layer"], "phase": phase,
                         "top1": res["top1"], "top5": res["top5"], "loss": res["loss"], "eval_images": res["images"],
                         "params": res["params"], "params_with_biases": res["params_with_biases"],
                         "flops": res["flops"], "device": device_name,
                         "mlflow_run_id": res["mlflow_run_id"]})
    return rows


def parent_run(tracker: Tracker, spec: JobSpec, workdir: Path, out: str) -> str:
    """The chain's MLflow run; a restarted chain goes on logging into the same one."""
    run = spec.run
    marker = workdir / "mlflow_run.json"
    known = json.loads(marker.read_text())["mlflow_run_id"] if marker.exists() else None
    run_id = tracker.start_run(run.id, run_id=known or None, params={
        "config": spec.config, "experiment": run.experiment, "model": run.model, "dataset": run.dataset,
        "strategy": run.strategy, "criterion": run.criterion, "keep_ratio": run.keep_ratio,
        "seed": run.seed, "finetune": run.finetune, "selection": spec.selection.to_dict(),
        "data": spec.data.to_dict(), "unreadable_images_skipped": unreadable_count(spec.manifest)},
        tags={"snakemake.output": str(Path(out).resolve()), "thinet.kind": "chain", "thinet.config": spec.config,
              "thinet.hash": run.hash, "thinet.workdir": str(workdir.resolve())})
    if run_id and not known:
        atomic_write_json({"mlflow_run_id": run_id}, marker)
    return run_id


def run_chain_job(spec: JobSpec, selection: str | os.PathLike, source: str | os.PathLike, out: str | os.PathLike, *,
                  checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES) -> None:
    """One pruning chain of the workflow: the run's strategy at its rate, layer by layer with its criterion
    (`thinet.pipeline.prune_chain`), then the final fine-tune; writes the model, steps.csv and run.json
    beside `out`. The per-layer checkpoints in the run's work folder let a killed job resume."""
    run = spec.run
    load_criterion_modules(list(spec.criteria_modules))
    seed_everything(run.seed)
    info = dist_info()
    device = setup_distributed(info, resolve_device(spec.device, "config key 'device'"))
    model = load_model(source)
    example = example_inputs(model)
    steps = get_strategy(run.strategy)(model, run.keep_ratio, example)
    plan = run.finetune_plan()
    workdir = Path(spec.work_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    tracker = Tracker.open(spec.mlflow.experiment, enabled=spec.mlflow.enabled and info.is_main,
                           queue=queue_beside(out))
    parent = parent_run(tracker, spec, workdir, out)
    steps_tracker = StepTracker(tracker, parent, workdir, steps, eval_loader(spec, spec.data.step_eval_images), device)
    log.info("chain %s: %d steps (%s), work folder %s", run.id, len(steps),
             ", ".join(s.pair.producer for s in steps), workdir)
    model = prune_chain(model, steps, criterion=run.criterion, selection_batches=selection_loader(
        spec, selection), finetune=plan, train_loader=train_loader(spec, run.seed), workdir=workdir,
        seed=run.seed, device=device, example_inputs=example, evaluate_fn=steps_tracker.evaluate,
        log=steps_tracker.log_training, samples_per_image=spec.selection.samples_per_image,
        settings={"run": run.id, "hash": run.hash, "model": run.model, "dataset": run.dataset},
        amp=spec.amp, optimizer=run.training.optimizer, reestimate_bn=run.reestimate_bn,
        checkpoint_minutes=checkpoint_minutes)
    if info.is_main:
        out_dir = Path(out).parent
        write_rows(step_rows(spec, workdir, steps, device_label(device)), out_dir / "steps.csv")
        if parent:
            tracker.log_artifact(parent, out_dir / "steps.csv", "metrics")
        save_model(model, out)
        write_sidecar(out_dir / "run.json", tracker.resolve(parent), run=run.id, output=str(out),
                      work_dir=str(workdir))
    tracker.end_run(parent)
    barrier(info)
