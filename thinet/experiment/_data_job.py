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
from pathlib import Path
from typing import Any, Mapping

from thinet.data import FIXTURE_MARKER, get_dataset, make_fixture, selection_subset, unreadable_error, verify_split
from thinet.experiment._jobs import log, spec_dataset
from thinet.runtime import atomic_write_json


def _settings(dataset: Mapping[str, Any]) -> dict[str, bool]:
    # The dataset settings that change what a manifest holds.
    return {"skip_unreadable_images": bool(dataset.get("skip_unreadable_images")),
            "image_checksums": bool(dataset.get("image_checksums"))}


def verify_dataset(dataset: Mapping[str, Any], *, workers: int = 8) -> dict[str, Any]:
    """The manifest of `dataset` (the config's datasets.<name> entry plus its 'name'): every image of both
    splits read and decoded once (`workers` threads).

    Missing, empty, truncated and non-image files of both splits fail it together, each with its
    index line, or with `skip_unreadable_images` are left out and listed under `unreadable`. With
    `image_checksums`, each file's sha256 is recorded, which every job checks before it starts.
    """
    root = Path(dataset["root"])
    if not root.exists():
        raise FileNotFoundError(f"config key 'datasets.{dataset['name']}.root': {str(root)!r} does not exist")
    settings = _settings(dataset)
    summary: dict[str, Any] = {"name": dataset["name"], "root": str(root.resolve()),
                               "fixture": dataset.get("fixture") is not None, "settings": settings,
                               "verified": {}, "unreadable": []}
    start, checked = time.perf_counter(), 0
    for split in ("train", "val"):
        # Missing files are not an error here: verify_split lists them with the unreadable ones.
        data = get_dataset(dataset["name"], split, root=root, image_size=dataset.get("image_size"), check_files=False)
        entry = verify_split(data, workers=workers, progress=sys.stderr.isatty(), checksums=settings["image_checksums"])
        if entry is not None:
            checked += len(entry["files"]) + len(entry["bad"])
            summary["unreadable"] += [{**bad, "split": split} for bad in entry.pop("bad")]
            summary["verified"][split] = entry
        summary[split] = {"images": len(data) if entry is None else len(entry["files"]), "classes": data.num_classes,
                          "in_channels": data.in_channels, "image_size": data.image_size}
    if summary["unreadable"] and not settings["skip_unreadable_images"]:
        raise unreadable_error(dataset["name"], summary["unreadable"])
    seconds = time.perf_counter() - start
    log.info("dataset %s: %d image files verified in %.1f s (%.0f files/s), %d unreadable left out; %s",
             dataset["name"], checked, seconds, checked / max(seconds, 1e-9), len(summary["unreadable"]),
             {k: summary[k] for k in ("train", "val")})
    return summary


def run_prepare_data_job(dataset: Mapping[str, Any], out: str | os.PathLike, *, workers: int = 8) -> None:
    """`dataset` is the config's datasets.<name> entry plus its 'name'; writes the data manifest
    (`verify_dataset`), which later jobs read instead of the listing."""
    fixture = dataset.get("fixture")
    root = Path(dataset["root"])
    if fixture is not None and not (root / FIXTURE_MARKER).exists():
        log.info("writing a %s fixture at %s (%s)", dataset["name"], root, fixture)
        make_fixture(dataset["name"], root, **fixture)
    atomic_write_json(verify_dataset(dataset, workers=workers), out)


def _made_for(manifest: str | os.PathLike | None, dataset: Mapping[str, Any]) -> bool:
    """Whether the file `manifest` is a manifest of `dataset` as configured now."""
    if not manifest or not Path(manifest).is_file():
        return False
    saved = json.loads(Path(manifest).read_text())
    return (saved.get("name") == dataset["name"] and saved.get("root") == str(Path(dataset["root"]).resolve())
            and saved.get("settings") == _settings(dataset))


@contextlib.contextmanager
def checked_data(spec: Mapping[str, Any], fallback: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """`spec` with the data manifest its job reads: the data step's (`spec["manifest"]`) when it is there
    and was made for this dataset and settings, else the same verification done now and written to
    `fallback`, which is removed when the block succeeds (a rerun after a failure reuses it).

    >>> with checked_data(spec, "models/default/vgg.pt.data.json") as spec:  # doctest: +SKIP
    ...     train(..., train_loader(spec, seed))
    """
    fallback = Path(fallback)
    own = not _made_for(spec.get("manifest"), spec["dataset"])
    if own and not _made_for(fallback, spec["dataset"]):
        where = f"no data manifest {spec['manifest']} yet" if spec.get("manifest") else "no data manifest in the spec"
        log.info("%s: verifying dataset %s here (%s)", where, spec["dataset"]["name"], fallback)
        atomic_write_json(verify_dataset(spec["dataset"]), fallback)
    yield {**spec, "manifest": str(fallback) if own else spec["manifest"]}
    if own:
        fallback.unlink(missing_ok=True)


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
