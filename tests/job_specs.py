"""Job specs for the tests, complete as the workflow writes them (`workflow/rules/common.smk`), from the few
settings a test cares about: `thinet.experiment.JobSpec` refuses a spec that lacks a key.

>>> from thinet.experiment import JobSpec
>>> JobSpec.from_dict(job_spec(base_run(), {"name": "fashion_mnist", "root": "fmnist"})).run.kind
'base'
"""
from __future__ import annotations

import copy
from typing import Any

from thinet.experiment import CompareLayerSpec

DATA = {"batch_size": 8, "eval_batch_size": 20, "num_workers": 0, "train_images": None, "step_eval_images": 64,
        "final_eval_images": None, "timing_batch_size": 2, "timing_rounds": 1, "timing_min_run_time": 0.01,
        "preprocessing": "torchvision"}
TRAINING = {"batch_size": 8, "train_images": None, "optimizer": {}, "preprocessing": "torchvision"}
SELECTION = {"per_class": 2, "samples_per_image": 2}
MLFLOW = {"enabled": False, "experiment": "test", "log_model": False}


def base_run(**changes: Any) -> dict[str, Any]:
    """A `base` run of vgg16_small on fashion_mnist, as build_plan writes it, with `changes`."""
    run = {"id": "base-vgg", "kind": "base", "base": "vgg", "model": "vgg16_small", "dataset": "fashion_mnist",
           "model_args": {"width_mult": 0.0625, "batch_norm": False, "head": "fc"}, "pretrained": False,
           "checkpoint": None, "gap": False, "train": None, "seed": 0, "after": None,
           "training": copy.deepcopy(TRAINING), "hash": "0123abcd"}
    return {**run, **changes}


def original_run(**changes: Any) -> dict[str, Any]:
    """The `original` variant of experiment 'exp' (the base model evaluated), with `changes`."""
    run = {"kind": "original", "experiment": "exp", "dataset": "fashion_mnist", "model": "vgg16_small",
           "after": "base-vgg", "strategy": "", "criterion": "", "keep_ratio": 1.0, "seed": 0,
           "training": copy.deepcopy(TRAINING), "train": None, "checkpoint": None, "id": "exp-original",
           "variant": "Original", "source_hash": "0123abcd", "hash": "4567cdef"}
    return {**run, **changes}


def job_spec(run: dict[str, Any], dataset: dict[str, Any], *, data: dict[str, Any] | None = None,
             **top: Any) -> dict[str, Any]:
    """A job spec of `run` on `dataset` (a `datasets.<name>` entry plus its name); `data` updates DATA, and
    `top` sets other top-level keys (device, amp, mlflow, manifest, work_dir, ...)."""
    spec = {"config": "test", "run": run, "source": None, "dataset": dataset, "data": {**DATA, **(data or {})},
            "selection": dict(SELECTION), "device": "cpu", "amp": False, "mlflow": dict(MLFLOW),
            "output_dir": "out", "manifest": None, "criteria_modules": []}
    return {**spec, **top}


def compare_spec(dataset: dict[str, Any], compare: dict[str, Any], **top: Any) -> CompareLayerSpec:
    """A compare-layer job spec on `dataset` with `compare` (layer, keep_ratio, seed, criteria)."""
    spec = {"config": "test", "compare_layer": {"after": "base-vgg", "selection": "s", **compare},
            "model": "vgg16_small", "dataset": dataset, "data": dict(DATA), "selection": dict(SELECTION),
            "device": "cpu", "manifest": None, "criteria_modules": []}
    return CompareLayerSpec.from_dict({**spec, **top})
