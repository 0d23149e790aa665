"""What every workflow job shares: arguments, logging, threads, device, data loaders, model files
and the rows of the tidy metrics table (columns fixed by ARCHITECTURE.md).

Scripts in this folder import it as a sibling module (Python puts a script's folder on sys.path).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from thinet.atomic import write_text_atomic
from thinet.checkpoint import atomic_save, load_checkpoint
from thinet.distributed import dist_info

METRICS_COLUMNS = ("config", "experiment", "dataset", "model", "variant", "strategy", "criterion", "keep_ratio",
                   "seed", "step", "layer", "phase", "top1", "top5", "loss", "eval_images", "params", "flops",
                   "forward_ms", "backward_ms", "device", "mlflow_run_id")
# Per-step evaluations use the same fixed random subset of the evaluation split in every run.
EVAL_SUBSET_SEED = 0

log = logging.getLogger("thinet.workflow")


def job_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this job")
    parser.add_argument("--log", help="also write the job's log to this file")
    return parser


def start_job(args: argparse.Namespace) -> None:
    """Logging to stderr (+ the Snakemake log file) and torch's thread count from `threads`."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if getattr(args, "log", None) and dist_info().is_main:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(message)s")
    threads = getattr(args, "threads", None)
    if threads:
        torch.set_num_threads(max(1, int(threads)))


def load_spec(path: str | os.PathLike) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when present (this rank's GPU under torchrun), else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"config key 'device': {name!r} requested but CUDA is not available")
        info = dist_info()
        if info.enabled:
            device = torch.device("cuda", info.local_rank)
    return device


def device_label(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


# ---------------------------------------------------------------- data

def dataset(spec: Mapping[str, Any], split: str, *, train_transform: bool = False):
    from thinet.data import get_dataset

    ds = spec["dataset"]
    return get_dataset(ds["name"], split, root=ds["root"], train_transform=train_transform,
                       image_size=ds.get("image_size"))


def _random_subset(data, size: int | None, seed: int):
    if size is None or size >= len(data):
        return data
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:size]
    return Subset(data, sorted(order.tolist()))


def train_loader(spec: Mapping[str, Any], seed: int) -> DataLoader:
    """Shuffled, augmented training batches; `data.train_images` keeps a fixed random subset."""
    data_cfg = spec["data"]
    data = _random_subset(dataset(spec, "train", train_transform=True), data_cfg["train_images"], seed)
    return DataLoader(data, batch_size=data_cfg["batch_size"], shuffle=True, drop_last=len(data) > data_cfg["batch_size"],
                      num_workers=data_cfg["num_workers"], generator=torch.Generator().manual_seed(seed))


def eval_loader(spec: Mapping[str, Any], images: int | None) -> DataLoader:
    """The evaluation split ('val', the test split of Fashion-MNIST), or a fixed random subset of it."""
    data = _random_subset(dataset(spec, "val"), images, EVAL_SUBSET_SEED)
    return DataLoader(data, batch_size=spec["data"]["eval_batch_size"], shuffle=False,
                      num_workers=spec["data"]["num_workers"])


def selection_loader(spec: Mapping[str, Any], selection_file: str | os.PathLike) -> DataLoader:
    """The saved selection subset (training images, evaluation transform), in saved order."""
    saved = json.loads(Path(selection_file).read_text())
    data = Subset(dataset(spec, "train"), saved["indices"])
    return DataLoader(data, batch_size=64, shuffle=False, num_workers=spec["data"]["num_workers"])


# ---------------------------------------------------------------- models

def save_model(model: nn.Module, path: str | os.PathLike) -> None:
    """The whole module (pruned architectures differ from any constructor), atomically, on CPU."""
    atomic_save(model.to("cpu"), path)


def load_model(path: str | os.PathLike) -> nn.Module:
    stored = load_checkpoint(path)
    if isinstance(stored, Mapping) and isinstance(stored.get("model"), nn.Module):
        stored = stored["model"]
    if not isinstance(stored, nn.Module):
        raise ValueError(f"model file {str(path)!r} holds {type(stored).__name__}, not a whole nn.Module")
    return stored


def example_input(model: nn.Module, batch: int = 1) -> torch.Tensor:
    from thinet.models import input_size_of

    return torch.randn(batch, *input_size_of(model), generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- rows

def base_row(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The run-identifying columns of a metrics row."""
    run = spec["run"]
    original = run["kind"] == "original"
    return {"config": spec["config"], "experiment": run["experiment"], "dataset": run["dataset"],
            "model": run["model"], "variant": run["variant"], "strategy": "" if original else run.get("strategy", ""),
            "criterion": "" if original else run.get("criterion", ""),
            "keep_ratio": 1.0 if original else run.get("keep_ratio", ""), "seed": run.get("seed", 0)}


def write_rows(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """CSV with exactly METRICS_COLUMNS, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_COLUMNS, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k, "")) for k in METRICS_COLUMNS})
    write_text_atomic(path, buffer.getvalue())
