"""The workflow's data jobs: check that a dataset loads (writing a tiny fixture tree first for a CI
config's `fixture` entry) and record its size; draw the selection subset ThiNet samples from
(§4.2: N images per class of the training split, evaluation transform) and save its indices.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from thinet.data import FIXTURE_MARKER, make_fixture, selection_subset
from thinet.experiment._jobs import log, spec_dataset
from thinet.runtime import atomic_write_json


def run_prepare_data_job(dataset: Mapping[str, Any], out: str | os.PathLike) -> None:
    """`dataset` is the config's datasets.<name> entry plus its 'name'; writes a summary of both splits."""
    fixture = dataset.get("fixture")
    root = Path(dataset["root"])
    if fixture is not None and not (root / FIXTURE_MARKER).exists():
        log.info("writing a %s fixture at %s (%s)", dataset["name"], root, fixture)
        make_fixture(dataset["name"], root, **fixture)
    if not root.exists():
        raise FileNotFoundError(f"config key 'datasets.{dataset['name']}.root': {str(root)!r} does not exist")
    summary: dict[str, Any] = {"name": dataset["name"], "root": str(root.resolve()), "fixture": fixture is not None}
    for split in ("train", "val"):
        data = spec_dataset({"dataset": dataset}, split)
        summary[split] = {"images": len(data), "classes": data.num_classes, "in_channels": data.in_channels,
                          "image_size": data.image_size}
    log.info("dataset %s: %s", dataset["name"], summary)
    atomic_write_json(summary, out)


def run_selection_job(selection: Mapping[str, Any], out: str | os.PathLike) -> None:
    """`selection`: dataset, root, image_size, per_class, seed; writes the chosen training indices."""
    spec = {"dataset": {"name": selection["dataset"], "root": selection["root"],
                        "image_size": selection.get("image_size")}}
    subset = selection_subset(spec_dataset(spec, "train"), per_class=selection["per_class"], seed=selection["seed"])
    indices = [int(i) for i in subset.indices]
    log.info("selection subset: %d images (%d per class, seed %d)", len(indices), selection["per_class"],
             selection["seed"])
    atomic_write_json({**selection, "images": len(indices), "indices": indices}, out)
