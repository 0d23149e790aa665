"""Build a model for one run and train it: a base model (`base`: from scratch, pretrained or a
checkpoint), a GAP head on another run's model (`gap`), another run's architecture from random
init (`scratch`), or a checkpoint carried to this dataset with a new classifier (`transfer`).
Logs an MLflow run (training curve) and writes its id beside the model. Runs under torchrun too.

    python workflow/scripts/train_model.py --spec results/default/specs/base-vgg.json \
        --out results/default/base/base-vgg/model.pt --threads 1
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

import jobkit
from thinet import distributed
from thinet.seeding import derive_seed, seed_everything
from thinet.tracking import Tracker, write_sidecar
from thinet.training import train

Builder = Callable[[dict, Any, Any], nn.Module]  # (spec, dataset, args) -> model
BUILDERS: dict[str, Builder] = {}


def builder(kind: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        BUILDERS[kind] = fn
        return fn
    return register


@builder("base")
def build_base(spec: dict, data, args) -> nn.Module:
    from thinet.models import create_model, input_size_of

    run = spec["run"]
    model = create_model(run["model"], num_classes=data.num_classes, pretrained=run["pretrained"],
                         checkpoint=run["checkpoint"], **run["model_args"])
    if run["gap"]:
        from thinet.strategies import to_gap
        model = to_gap(model, data.num_classes)
    want = (data.in_channels, data.image_size, data.image_size)
    if tuple(input_size_of(model)) != want:
        raise ValueError(f"config key 'bases.{run['base']}.model_args': model {run['model']} takes input "
                         f"{tuple(input_size_of(model))} but dataset {run['dataset']} gives {want}; "
                         f"set in_chans/input_size or datasets.{run['dataset']}.image_size")
    return model


@builder("gap")
def build_gap(spec: dict, data, args) -> nn.Module:
    from thinet.strategies import to_gap

    return to_gap(jobkit.load_model(args.source), data.num_classes)


@builder("scratch")
def build_scratch(spec: dict, data, args) -> nn.Module:
    """The source's (pruned) architecture with every parameter drawn anew from the run's seed."""
    model = copy.deepcopy(jobkit.load_model(args.source))
    torch.manual_seed(derive_seed(spec["run"]["seed"], "scratch-init"))
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model


@builder("transfer")
def build_transfer(spec: dict, data, args) -> nn.Module:
    from thinet.models.sources import replace_last_linear

    return replace_last_linear(jobkit.load_model(spec["run"]["checkpoint"]), data.num_classes)


def log_progress(tracker: Tracker, run_id: str, step: int, metrics: dict) -> None:
    tracker.log_metrics(run_id, {f"train_{k}": v for k, v in metrics.items()}, step)
    jobkit.log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))


def main() -> None:
    parser = jobkit.job_parser(__doc__)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--source", help="model file of the run this one starts from (gap, scratch)")
    args = parser.parse_args()
    jobkit.start_job(args)
    spec = jobkit.load_spec(args.spec)
    run = spec["run"]
    seed_everything(run["seed"])
    data = jobkit.dataset(spec, "train")
    model = BUILDERS[run["kind"]](spec, data, args)
    schedule = run["train"]
    info = distributed.dist_info()
    tracker = Tracker.open(spec["mlflow"]["experiment"], enabled=spec["mlflow"]["enabled"] and info.is_main)
    out_dir = Path(args.out).parent
    run_id = tracker.start_run(run["id"], params={"config": spec["config"], **{k: v for k, v in run.items()
                               if k not in ("id", "hash", "source_hash")}},
                               tags={"snakemake.output": str(Path(args.out).resolve()), "thinet.kind": run["kind"],
                                     "thinet.config": spec["config"], "thinet.hash": run["hash"]})
    if schedule:
        device = distributed.setup(info, jobkit.resolve_device(spec["device"]))
        loader = jobkit.train_loader(spec, run["seed"])
        jobkit.log.info("training %s (%s) for %s on %s", run["id"], run["kind"], schedule, device)
        history = train(model, loader, schedule, device=device, amp=spec["amp"], seed=run["seed"],
                        checkpoint_path=out_dir / f"train_state-{run['hash']}.pt",
                        log=lambda step, m: log_progress(tracker, run_id, step, m),
                        desc=run["id"])
        if history:
            jobkit.log.info("last training record: %s", history[-1])
    if info.is_main:
        jobkit.save_model(model, args.out)
        write_sidecar(out_dir / "run.json", run_id, run=run["id"], output=str(args.out))
        (out_dir / f"train_state-{run['hash']}.pt").unlink(missing_ok=True)
    tracker.end_run(run_id)
    distributed.barrier(info)


if __name__ == "__main__":
    main()
