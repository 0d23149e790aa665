"""Verify a dataset's image files before any compute, and the manifest later jobs read instead of the listing.

The data step decodes every image of a split once (threads; PIL releases the GIL while
decoding), so a truncated, empty or non-image file is found in minutes, not hours into a
training job. The manifest lists each verified file with its size and label; `dataset_from_manifest`
rebuilds the split from it (no index file is parsed again), and every read checks the file still
has its verified size, so a changed tree is an error that says to rerun the data step.

>>> import tempfile
>>> from thinet.data import get_dataset, make_fixture
>>> root = make_fixture("indoor67", tempfile.mkdtemp(), classes=2, per_class=2)
>>> entry = verify_split(get_dataset("indoor67", "train", root=root), progress=False)
>>> len(entry["files"]), entry["bad"]
(4, [])
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from thinet.data._image_files import ImageFileDataset, load_rgb


def _check(path: Path) -> tuple[int, str | None]:
    try:
        size = path.stat().st_size
    except OSError as err:
        return -1, f"cannot read image {path}: {err.strerror or err}"
    if size == 0:
        return 0, f"cannot read image {path}: the file is empty (0 bytes)"
    try:
        load_rgb(path)
    except ValueError as err:
        return size, str(err)
    return size, None


def verify_split(dataset: Any, *, workers: int = 8, progress: bool = True) -> dict[str, Any] | None:
    """Decode every image of `dataset`; return its manifest entry (verified files and bad ones).

    Datasets held in arrays (Fashion-MNIST) have no files to verify: None.

    Each file record holds its path relative to the dataset root, its size, label and listing line;
    a bad one also its error.
    """
    if not isinstance(dataset, ImageFileDataset):
        return None
    paths = dataset.files
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(_check, paths, chunksize=64), total=len(paths), disable=not progress,
                            desc=f"verify {dataset.split}", mininterval=5))
    root = Path(dataset.root)
    entry: dict[str, Any] = {"root": str(root), "classes": list(dataset.classes), "files": [], "bad": []}
    for index, (path, (size, error)) in enumerate(zip(paths, results)):
        record = {"path": os.path.relpath(path, root), "size": size, "target": int(dataset.targets[index]),
                  "listed_at": dataset.listed_at[index]}
        entry["bad" if error else "files"].append({**record, "error": error} if error else record)
    return entry


def unreadable_error(name: str, bad: list[dict[str, Any]]) -> ValueError:
    """The error listing every unreadable file with the listing line that names it."""
    lines = "\n".join(f"  {b['listed_at']}: {b['error']}" for b in bad)
    return ValueError(f"dataset {name!r}: {len(bad)} unreadable image(s); fix or remove them, or set "
                      f"config key 'data.skip_unreadable_images: true' to leave them out:\n{lines}")


def dataset_from_manifest(entry: dict[str, Any], *, root: Path, split: str, train_transform: bool,
                          image_size: int | None, manifest: str, preprocessing: str = "torchvision") -> ImageFileDataset:
    """The split as the manifest verified it: its files, labels and sizes (bad files left out)."""
    files = entry["files"]
    return ImageFileDataset([root / f["path"] for f in files], [f["target"] for f in files], entry["classes"],
                            split=split, root=root, train_transform=train_transform, image_size=image_size,
                            listed_at=[f["listed_at"] for f in files], sizes=[f["size"] for f in files],
                            manifest=manifest, preprocessing=preprocessing)
