"""The workflow's data jobs: verify every image of a dataset (writing a tiny fixture tree first for a CI
config's `fixture` entry) and write the manifest later jobs read; draw the selection subset ThiNet samples from
(§4.2: N images per class of the training split, evaluation transform) and save its indices.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from thinet.data import FIXTURE_MARKER, make_fixture, selection_subset, unreadable_error, verify_split
from thinet.experiment._jobs import log, spec_dataset
from thinet.runtime import atomic_write_json


def run_prepare_data_job(dataset: Mapping[str, Any], out: str | os.PathLike, *, workers: int = 8) -> None:
    """`dataset` is the config's datasets.<name> entry plus its 'name'; writes the data manifest.

    Every image of both splits is decoded once (`workers` threads); the manifest lists the verified
    files, which later jobs read instead of the listing. Unreadable files fail the job with the list
    of them, or with `skip_unreadable_images` are left out, listed under `unreadable`.
    """
    fixture = dataset.get("fixture")
    root = Path(dataset["root"])
    if fixture is not None and not (root / FIXTURE_MARKER).exists():
        log.info("writing a %s fixture at %s (%s)", dataset["name"], root, fixture)
        make_fixture(dataset["name"], root, **fixture)
    if not root.exists():
        raise FileNotFoundError(f"config key 'datasets.{dataset['name']}.root': {str(root)!r} does not exist")
    summary: dict[str, Any] = {"name": dataset["name"], "root": str(root.resolve()), "fixture": fixture is not None,
                               "verified": {}, "unreadable": []}
    start, checked = time.perf_counter(), 0
    for split in ("train", "val"):
        data = spec_dataset({"dataset": dataset}, split)
        entry = verify_split(data, workers=workers, progress=sys.stderr.isatty())
        if entry is not None:
            checked += len(entry["files"]) + len(entry["bad"])
            summary["unreadable"] += [{**bad, "split": split} for bad in entry.pop("bad")]
            summary["verified"][split] = entry
        summary[split] = {"images": len(data) if entry is None else len(entry["files"]), "classes": data.num_classes,
                          "in_channels": data.in_channels, "image_size": data.image_size}
    if summary["unreadable"] and not dataset.get("skip_unreadable_images"):
        raise unreadable_error(dataset["name"], summary["unreadable"])
    seconds = time.perf_counter() - start
    log.info("dataset %s: %d image files verified in %.1f s (%.0f files/s), %d unreadable left out; %s",
             dataset["name"], checked, seconds, checked / max(seconds, 1e-9), len(summary["unreadable"]),
             {k: summary[k] for k in ("train", "val")})
    atomic_write_json(summary, out)


def unreadable_count(spec: Mapping[str, Any]) -> int:
    """How many unreadable images the data step left out of the spec's dataset (an MLflow parameter)."""
    manifest = spec.get("manifest")
    return len(json.loads(Path(manifest).read_text()).get("unreadable", [])) if manifest else 0


def run_selection_job(selection: Mapping[str, Any], out: str | os.PathLike) -> None:
    """`selection`: dataset, root, image_size, per_class, seed; writes the chosen training indices."""
    spec = {"dataset": {"name": selection["dataset"], "root": selection["root"],
                        "image_size": selection.get("image_size")}, "manifest": selection.get("manifest")}
    subset = selection_subset(spec_dataset(spec, "train"), per_class=selection["per_class"], seed=selection["seed"])
    indices = [int(i) for i in subset.indices]
    log.info("selection subset: %d images (%d per class, seed %d)", len(indices), selection["per_class"],
             selection["seed"])
    atomic_write_json({**selection, "images": len(indices), "indices": indices}, out)
