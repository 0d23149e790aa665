"""The workflow's data jobs: verify every image of a dataset (writing a tiny fixture tree first for a CI
config's `fixture` entry) and write the manifest later jobs read; draw the selection subset ThiNet samples from
(§4.2: N images per class of the training split, evaluation transform) and save its indices.

Every job reads a dataset through a manifest: the data step's, or, for the jobs that must not wait for
the data step (rules pretrain_base and pretrain_scratch have no input made by a job, so that a fresh
clone does not retrain its committed models), the same verification done by the job itself when the data
step's manifest is not there yet (`checked_data`).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from thinet.data import FIXTURE_MARKER, get_dataset, make_fixture, selection_subset, unreadable_error, verify_split
from thinet.experiment._jobs import dataset_split, log
from thinet.experiment._spec import CompareLayerSpec, DatasetSpec, JobSpec, SelectionJobSpec
from thinet.runtime import atomic_write_json


# A job spec that names a dataset and its manifest (`checked_data`).
WithData = TypeVar("WithData", JobSpec, CompareLayerSpec)


def _settings(dataset: DatasetSpec) -> dict[str, bool]:
    # The dataset settings that change what a manifest holds.
    return {"skip_unreadable_images": bool(dataset.skip_unreadable_images),
            "image_checksums": bool(dataset.image_checksums)}


def verify_dataset(dataset: DatasetSpec, *, workers: int = 8) -> dict[str, Any]:
    """The manifest of `dataset` (the config's datasets.<name> entry plus its 'name'): every image of both
    splits read and decoded once (`workers` threads).

    Missing, empty, truncated and non-image files of both splits fail it together, each with its
    index line, or with `skip_unreadable_images` are left out and listed under `unreadable`. With
    `image_checksums`, each file's sha256 is recorded, which every job checks before it starts.
    """
    root = Path(dataset.root)
    if not root.exists():
        raise FileNotFoundError(f"config key 'datasets.{dataset.name}.root': {str(root)!r} does not exist")
    settings = _settings(dataset)
    summary: dict[str, Any] = {"name": dataset.name, "root": str(root.resolve()),
                               "fixture": dataset.fixture is not None, "settings": settings,
                               "verified": {}, "unreadable": []}
    start, checked = time.perf_counter(), 0
    for split in ("train", "val"):
        # Missing files are not an error here: verify_split lists them with the unreadable ones.
        data = get_dataset(dataset.name, split, root=root, image_size=dataset.image_size, check_files=False)
        entry = verify_split(data, workers=workers, progress=sys.stderr.isatty(), checksums=settings["image_checksums"])
        if entry is not None:
            checked += len(entry["files"]) + len(entry["bad"])
            summary["unreadable"] += [{**bad, "split": split} for bad in entry.pop("bad")]
            summary["verified"][split] = entry
        summary[split] = {"images": len(data) if entry is None else len(entry["files"]), "classes": data.num_classes,
                          "in_channels": data.in_channels, "image_size": data.image_size}
    if summary["unreadable"] and not settings["skip_unreadable_images"]:
        raise unreadable_error(dataset.name, summary["unreadable"])
    seconds = time.perf_counter() - start
    log.info("dataset %s: %d image files verified in %.1f s (%.0f files/s), %d unreadable left out; %s",
             dataset.name, checked, seconds, checked / max(seconds, 1e-9), len(summary["unreadable"]),
             {k: summary[k] for k in ("train", "val")})
    return summary


def run_prepare_data_job(dataset: DatasetSpec, out: str | os.PathLike, *, workers: int = 8) -> None:
    """`dataset` is the config's datasets.<name> entry plus its 'name'; writes the data manifest
    (`verify_dataset`), which later jobs read instead of the listing."""
    fixture = dataset.fixture
    root = Path(dataset.root)
    if fixture is not None and not (root / FIXTURE_MARKER).exists():
        log.info("writing a %s fixture at %s (%s)", dataset.name, root, fixture)
        make_fixture(dataset.name, root, **fixture)
    atomic_write_json(verify_dataset(dataset, workers=workers), out)


def _made_for(manifest: str | os.PathLike | None, dataset: DatasetSpec) -> bool:
    """Whether the file `manifest` is a manifest of `dataset` as configured now."""
    if not manifest or not Path(manifest).is_file():
        return False
    saved = json.loads(Path(manifest).read_text())
    return (saved.get("name") == dataset.name and saved.get("root") == str(Path(dataset.root).resolve())
            and saved.get("settings") == _settings(dataset))


@contextlib.contextmanager
def checked_data(spec: WithData, fallback: str | os.PathLike) -> Iterator[WithData]:
    """`spec` with the data manifest its job reads: the data step's (`spec.manifest`) when it is there
    and was made for this dataset and settings, else the same verification done now and written to
    `fallback`, which is removed when the block succeeds (a rerun after a failure reuses it).

    >>> with checked_data(spec, "models/default/vgg.pt.data.json") as spec:  # doctest: +SKIP
    ...     train(..., train_loader(spec, seed))
    """
    fallback = Path(fallback)
    own = not _made_for(spec.manifest, spec.dataset)
    if own and not _made_for(fallback, spec.dataset):
        where = f"no data manifest {spec.manifest} yet" if spec.manifest else "no data manifest in the spec"
        log.info("%s: verifying dataset %s here (%s)", where, spec.dataset.name, fallback)
        atomic_write_json(verify_dataset(spec.dataset), fallback)
    yield replace(spec, manifest=str(fallback)) if own else spec
    if own:
        fallback.unlink(missing_ok=True)


def unreadable_count(manifest: str | os.PathLike | None) -> int:
    """How many unreadable images the data step left out of a dataset, by its `manifest` (an MLflow parameter).

    >>> unreadable_count(None)
    0
    """
    return len(json.loads(Path(manifest).read_text()).get("unreadable", [])) if manifest else 0


def run_selection_job(selection: SelectionJobSpec, out: str | os.PathLike) -> None:
    """`selection`: dataset, root, image_size, per_class, seed; writes the chosen training indices."""
    dataset = DatasetSpec(name=selection.dataset, root=selection.root, image_size=selection.image_size)
    train = dataset_split(dataset, "train", manifest=selection.manifest)
    subset = selection_subset(train, per_class=selection.per_class, seed=selection.seed)
    indices = [int(i) for i in subset.indices]
    log.info("selection subset: %d images (%d per class, seed %d)", len(indices), selection.per_class,
             selection.seed)
    atomic_write_json({**selection.to_dict(), "images": len(indices), "indices": indices}, out)
