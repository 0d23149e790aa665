"""The application layer shared by the `thinet` commands and the workflow jobs: devices, data
loaders, model files, and the plumbing of one job (arguments, logging, threads); its spec is `_spec.py`.

>>> resolve_device("cpu")
device(type='cpu')
>>> make_loader(list(range(10)), batch_size=4).batch_size
4
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from thinet.data import get_dataset
from thinet.experiment._spec import DatasetSpec, JobSpec
from thinet.models import read_checkpoint
from thinet.runtime import DEFAULT_CHECKPOINT_MINUTES, atomic_save, dist_info

# Per-step evaluations use the same fixed random subset of the evaluation split in every run.
EVAL_SUBSET_SEED = 0
# The selection images (§4.2) are read in batches of this size; it does not change the samples.
SELECTION_BATCH_SIZE = 64

log = logging.getLogger("thinet.workflow")


# ---------------------------------------------------------------- devices

def resolve_device(name: str | None, what: str = "--device") -> torch.device:
    """`None`/'auto' is CUDA when present, else CPU; under torchrun, this rank's GPU.

    `what` names the setting in errors (a flag, or a config key).
    """
    if name is None or name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"{what} {name!r} is not a device (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what} {name!r}: CUDA is not available on this machine")
        info = dist_info()
        if info.enabled:
            device = torch.device("cuda", info.local_rank)
    return device


def device_label(device: torch.device) -> str:
    """'cpu', or the GPU's name (as the metrics table records it)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


# ---------------------------------------------------------------- data

def make_loader(dataset: Dataset, batch_size: int, *, workers: int = 0, shuffle: bool = False,
                seed: int | None = None, drop_last: bool = False) -> DataLoader:
    """A DataLoader; with `seed`, the shuffling order comes from its own generator (else torch's global RNG).

    No persistent workers: each epoch then seeds its workers from the global RNG, which the
    training checkpoint restores, so a resumed run sees the same crops.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, drop_last=drop_last,
                      generator=generator, pin_memory=torch.cuda.is_available())


def random_subset(data: Dataset, size: int | None, seed: int) -> Dataset:
    """A fixed random subset of `size` items (in index order), or `data` itself when it is no larger."""
    if size is None or size >= len(data):
        return data
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:size]
    return Subset(data, sorted(order.tolist()))


def dataset_split(dataset: DatasetSpec, split: str, *, preprocessing: str = "torchvision",
                  manifest: str | os.PathLike | None = None, augment: bool = False) -> Dataset:
    """The split of `dataset` (a `DatasetSpec`: name, root, image_size), read with `preprocessing`, from the
    data step's `manifest` when given.

    >>> # dataset_split(DatasetSpec("fashion_mnist", "data/fmnist"), "val").num_classes -> 10
    """
    return get_dataset(dataset.name, split, root=dataset.root, train_transform=augment, image_size=dataset.image_size,
                       preprocessing=preprocessing, manifest=manifest)


def spec_dataset(spec: JobSpec, split: str, *, augment: bool = False) -> Dataset:
    """The split of a job's dataset, read with the config's `data.preprocessing`, from the data step's
    manifest (`spec.manifest`) when the spec names one."""
    return dataset_split(spec.dataset, split, preprocessing=spec.data.preprocessing, manifest=spec.manifest,
                         augment=augment)


def train_loader(spec: JobSpec, seed: int) -> DataLoader:
    """Shuffled, augmented training batches; `data.train_images` keeps a fixed random subset."""
    cfg = spec.data
    data = random_subset(spec_dataset(spec, "train", augment=True), cfg.train_images, seed)
    return make_loader(data, cfg.batch_size, workers=cfg.num_workers, shuffle=True, seed=seed,
                       drop_last=len(data) > cfg.batch_size)


def eval_loader(spec: JobSpec, images: int | None) -> DataLoader:
    """The evaluation split ('val', the test split of Fashion-MNIST), or a fixed random subset of it."""
    data = random_subset(spec_dataset(spec, "val"), images, EVAL_SUBSET_SEED)
    return make_loader(data, spec.data.eval_batch_size, workers=spec.data.num_workers)


def selection_loader(spec: JobSpec, selection_file: str | os.PathLike) -> DataLoader:
    """The saved selection subset (training images, evaluation transform), in saved order."""
    saved = json.loads(Path(selection_file).read_text())
    data = Subset(spec_dataset(spec, "train"), saved["indices"])
    return make_loader(data, SELECTION_BATCH_SIZE, workers=spec.data.num_workers)


# ---------------------------------------------------------------- model files

def save_model(model: nn.Module, path: str | os.PathLike) -> None:
    """The whole module (a pruned architecture fits no constructor), on CPU, atomically."""
    atomic_save(model.to("cpu"), path)


def load_model(path: str | os.PathLike) -> nn.Module:
    """The whole module stored at `path` (as `save_model` writes it); a state_dict is an error naming the file."""
    stored = read_checkpoint(path)
    if not isinstance(stored, nn.Module):
        raise ValueError(f"model file {str(path)!r} holds a state_dict, not a whole model: give the model name too")
    return stored


# ---------------------------------------------------------------- one workflow job

def job_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every workflow job takes: `--threads`, `--log` and `--checkpoint-minutes`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this job")
    parser.add_argument("--log", help="also write the job's log to this file")
    parser.add_argument("--checkpoint-minutes", type=float, default=DEFAULT_CHECKPOINT_MINUTES,
                        help="minutes between resumable saves inside a training epoch (0: every step)")
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


def job_args(description: str, *required: str, optional: tuple[str, ...] = (),
             inputs: bool = False) -> argparse.Namespace:
    """Parse a workflow job's command line (the `required` and `optional` flags, with `inputs` one or more
    input files as `args.inputs`, plus `--threads` and `--log`) and start the job (`start_job`).

    >>> # args = job_args(__doc__, "--spec", "--out"); run_eval_job(load_spec(args.spec), ...)
    """
    parser = job_parser(description)
    for flag in required:
        parser.add_argument(flag, required=True)
    for flag in optional:
        parser.add_argument(flag)
    if inputs:
        parser.add_argument("inputs", nargs="+")
    args = parser.parse_args()
    start_job(args)
    return args
