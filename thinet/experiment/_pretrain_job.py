"""Models trained once and kept as files, like published models: a base with `pretrain`
(`bases.<name>.pretrain`) and a scratch variant with `kept` (Table 1's "Train from scratch").

The default config starts from converged bases that take longer to train than the whole experiment
on a CPU, so, as the paper starts from published VGG-16/ResNet-50 weights, it starts from weights
this workflow's own rules `pretrain_base` and `pretrain_scratch` produced and that are committed under
`models/<config>/`: `<name>.pt` (a state_dict), `<name>.json` (how it was trained, its test accuracy,
the file's sha256) and `<name>.log` (the training log). `snakemake --forcerun pretrain_base`
(`pretrain_scratch`) trains them again. The jobs that load them refuse a file whose record does not
match the config or whose checksum is wrong.

These rules have no input made by a job (a fresh clone would otherwise retrain the committed models), so
they may start before the data step: they read its manifest when it is there, else verify the data the
same way themselves (`checked_data`).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from thinet.experiment._builders import build_run_model, pruned_architecture, scratch_model
from thinet.experiment._data_job import checked_data
from thinet.experiment._jobs import eval_loader, log, resolve_device, spec_dataset, train_loader
from thinet.experiment._spec import JobSpec, RunSpec
from thinet.runtime import (
    DEFAULT_CHECKPOINT_MINUTES, atomic_save, atomic_write_json, evaluate, seed_everything, train,
)

# What shapes the weights: a record that differs in any of these is another model.
RECORDED = {"base": ("model", "model_args", "dataset", "seed", "pretrain", "training"),
            "scratch": ("model", "model_args", "gap", "dataset", "strategy", "keep_ratio", "seed", "train",
                        "training")}
# Where a kept model's settings live in the config, and the rule that retrains it.
_ORIGIN = {"base": ("bases.{base}", "pretrain_base"), "scratch": ("experiments.{experiment} (variant {id})",
                                                                   "pretrain_scratch")}


def record_path(model_file: str | os.PathLike) -> Path:
    return Path(model_file).with_suffix(".json")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_pretrain_job(spec: JobSpec, out: str | os.PathLike, *,
                     checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES) -> None:
    """Train the kept model of `spec` from random initialisation (a base with its `pretrain` schedule, a
    kept scratch variant with its `train` schedule), evaluate it on the whole evaluation split, and write
    the state_dict to `out` with its record beside it."""
    run = spec.run
    with checked_data(spec, f"{out}.data.json") as spec:
        seed_everything(run.seed)
        data = spec_dataset(spec, "train")
        if run.kind == "scratch":
            model = scratch_model(pruned_architecture(run, data), run.seed)
            schedule = run.train
        else:
            model = build_run_model(replace(run, checkpoint=None), data, None)
            schedule = run.pretrain
        device = resolve_device(spec.device, "config key 'device'")
        result, seconds = _train_and_evaluate(model, spec, schedule, run.seed, device, Path(f"{out}.train_state.pt"),
                                              checkpoint_minutes, f"pretrain {run.id}")
    atomic_save({k: v.cpu() for k, v in model.state_dict().items()}, out)
    atomic_write_json({**_recorded(run), "top1": result["top1"],
                       "top5": result["top5"], "loss": result["loss"], "eval_images": result["images"],
                       "train_seconds": round(seconds, 1), "device": str(device), "sha256": sha256_of(out)},
                      record_path(out))


def run_convergence_check(spec: JobSpec, model_file: str | os.PathLike, out: str | os.PathLike, *,
                          checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES) -> dict[str, Any]:
    """Is the kept base converged? Train it once more with its whole `pretrain` schedule (twice the
    epochs in all; the data order from seed + 1, so the second pass does not repeat the first) and write
    its top-1 before and after, and the gain, to the JSON file `out`. The kept file is not changed.

    A base counts as converged when the gain is below 0.3 pp (docs/regenerate-the-paper.md, "The bases").
    """
    run = replace(spec.run, checkpoint=str(model_file))
    record = check_pretrained(run)
    with checked_data(spec, f"{out}.data.json") as spec:
        seed_everything(run.seed + 1)
        model = build_run_model(run, spec_dataset(spec, "train"), None)
        device = resolve_device(spec.device, "config key 'device'")
        before = evaluate(model, eval_loader(spec, None), device=device)
        log.info("%s as kept: %s", run.id, before)
        after, seconds = _train_and_evaluate(model, spec, run.pretrain, run.seed + 1, device,
                                             Path(f"{out}.train_state.pt"), checkpoint_minutes,
                                             f"pretrain again {run.id}")
    report = {"base": run.base, "model_file": str(model_file), "sha256": record["sha256"],
              "pretrain": run.pretrain, "top1_before": before["top1"], "top1_after": after["top1"],
              "gain_pp": round(after["top1"] - before["top1"], 2), "train_seconds": round(seconds, 1)}
    log.info("%s trained once more: %s", run.id, report)
    atomic_write_json(report, out)
    return report


def _train_and_evaluate(model: Any, spec: JobSpec, schedule: Mapping[str, Any], seed: int, device: Any, state: Path,
                        checkpoint_minutes: float, desc: str) -> tuple[dict[str, Any], float]:
    """`model` trained in place with `schedule`, then its result on the whole evaluation split, and the
    training seconds."""
    log.info("%s (%s) for %s on %s", desc, spec.run.model, schedule, device)
    start = time.perf_counter()
    train(model, train_loader(spec, seed), schedule, device=device, amp=spec.amp, seed=seed,
          optimizer=spec.run.training.optimizer, checkpoint_path=state, checkpoint_minutes=checkpoint_minutes,
          log=lambda step, m: log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in m.items())),
          desc=desc)
    seconds = time.perf_counter() - start
    result = evaluate(model, eval_loader(spec, None), device=device)
    log.info("%s: %s", desc, result)
    state.unlink(missing_ok=True)
    return result, seconds


def _recorded(run: RunSpec) -> dict[str, Any]:
    """The settings of `run` that shape a kept model's weights (`RECORDED`), as the config gives them."""
    settings = run.to_dict()
    return {key: settings.get(key) for key in RECORDED[run.kind]}


def check_pretrained(run: RunSpec) -> dict[str, Any]:
    """The kept file of `run` (a base with `pretrain`, a `kept` scratch variant) is the one the config
    describes: its record matches and its checksum holds. Returns the record.

    >>> # check_pretrained(replace(spec.run, checkpoint="models/smoke/vgg.pt"))["sha256"] -> '3f0c...'
    """
    path, record_file = Path(run.checkpoint), record_path(run.checkpoint)
    where, rule = _ORIGIN[run.kind]
    where = where.format(base=run.base, experiment=run.experiment, id=run.id)
    hint = f"retrain it with `snakemake --forcerun {rule}` (or restore the committed file)"
    if not record_file.exists():
        raise ValueError(f"{path}: no record {record_file} beside it; {hint}")
    record = json.loads(record_file.read_text())
    recorded = RECORDED[run.kind]
    expected = json.loads(json.dumps(_recorded(run)))
    for key in recorded:
        if record.get(key) != expected[key]:
            raise ValueError(f"{path} was trained with {key}={record.get(key)!r}, but config key "
                             f"'{where}' now gives {expected[key]!r}; {hint}")
    if sha256_of(path) != record["sha256"]:
        raise ValueError(f"{path}: sha256 differs from {record_file} (a damaged or replaced file); {hint}")
    return record
