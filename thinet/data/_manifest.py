"""Verify a dataset's image files before any compute, and the manifest later jobs read instead of the listing.

The data step decodes every image of a split once (threads; PIL releases the GIL while
decoding), so a missing, truncated, empty or non-image file is found in minutes, not hours into a
training job. The manifest lists each verified file with its size and label; `dataset_from_manifest`
rebuilds the split from it (no index file is parsed again), and every read checks the file still
has its verified size, so a changed tree is an error that says to rerun the data step. With
`checksums=True` the manifest also holds each file's sha256, and rebuilding a split from it first
hashes every file again (threads, once per process and split): a change that kept the size is
found before any training, not when a batch reads it.

>>> import tempfile
>>> from thinet.data import get_dataset, make_fixture
>>> root = make_fixture("indoor67", tempfile.mkdtemp(), classes=2, per_class=2)
>>> entry = verify_split(get_dataset("indoor67", "train", root=root), progress=False)
>>> len(entry["files"]), entry["bad"]
(4, [])
"""
from __future__ import annotations

import functools
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from thinet.data._image_files import ImageFileDataset, load_rgb

CHECKSUM = "sha256"


def _check(path: Path, checksum: bool) -> tuple[int, str | None, str | None]:
    """(size, error or None, sha256 or None) of one image file, read once."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return -1, f"listed image {path} does not exist", None
    except OSError as err:
        return -1, f"cannot read image {path}: {err.strerror or err}", None
    if not data:
        return 0, f"cannot read image {path}: the file is empty (0 bytes)", None
    digest = hashlib.sha256(data).hexdigest() if checksum else None
    try:
        load_rgb(path, data)
    except ValueError as err:
        return len(data), str(err), digest
    return len(data), None, digest


def verify_split(dataset: Any, *, workers: int = 8, progress: bool = True,
                 checksums: bool = False) -> dict[str, Any] | None:
    """Read and decode every image of `dataset`; return its manifest entry (verified files and bad ones).

    Datasets held in arrays (Fashion-MNIST) have no files to verify: None.

    Each file record holds its path relative to the dataset root, its size, label and listing line
    (with `checksums`, its sha256 too); a bad one (missing, unreadable, empty, not an image) also its error.
    """
    if not isinstance(dataset, ImageFileDataset):
        return None
    paths = dataset.files
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(functools.partial(_check, checksum=checksums), paths, chunksize=64),
                            total=len(paths), disable=not progress, desc=f"verify {dataset.split}", mininterval=5))
    root = Path(dataset.root)
    entry: dict[str, Any] = {"root": str(root), "classes": list(dataset.classes),
                             "checksum": CHECKSUM if checksums else None, "files": [], "bad": []}
    for index, (path, (size, error, digest)) in enumerate(zip(paths, results)):
        record = {"path": os.path.relpath(path, root), "size": size, "target": int(dataset.targets[index]),
                  "listed_at": dataset.listed_at[index], **({CHECKSUM: digest} if checksums else {})}
        entry["bad" if error else "files"].append({**record, "error": error} if error else record)
    return entry


def unreadable_error(name: str, bad: list[dict[str, Any]]) -> ValueError:
    """The error listing every unreadable or missing file with the listing line that names it."""
    lines = "\n".join(f"  {b['listed_at']}: {b['error']}" for b in bad)
    return ValueError(f"dataset {name!r}: {len(bad)} unreadable image(s) (missing, empty, truncated or not an "
                      f"image); fix or remove them, or set "
                      f"config key 'datasets.{name}.skip_unreadable_images: true' to leave them out:\n{lines}")


# (manifest, split, manifest mtime) whose checksums this process has verified: each job builds a split
# several times (training, selection and evaluation loaders), and hashes it once.
_CHECKSUMS_VERIFIED: set[tuple[str, str, int]] = set()


def _verify_checksums(entry: dict[str, Any], root: Path, split: str, manifest: str, workers: int = 8) -> None:
    key = (str(Path(manifest).resolve()), split, os.stat(manifest).st_mtime_ns)
    if key in _CHECKSUMS_VERIFIED:
        return

    def changed(record: dict[str, Any]) -> str | None:
        path = root / record["path"]
        try:
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, CHECKSUM).hexdigest()
        except OSError as err:
            return f"  {record['listed_at']}: cannot read image {path}: {err.strerror or err}"
        if digest != record[CHECKSUM]:
            return f"  {record['listed_at']}: image {path} changed since the data step verified it ({CHECKSUM} differs)"
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems = [p for p in pool.map(changed, entry["files"], chunksize=64) if p]
    if problems:
        lines = "\n".join(problems)
        raise ValueError(f"{len(problems)} image(s) of the {split} split differ from the data manifest {manifest}; "
                         f"rerun the data step (delete {manifest}) to verify them again:\n{lines}")
    _CHECKSUMS_VERIFIED.add(key)


def dataset_from_manifest(entry: dict[str, Any], *, root: Path, split: str, train_transform: bool,
                          image_size: int | None, manifest: str, preprocessing: str = "torchvision") -> ImageFileDataset:
    """The split as the manifest verified it: its files, labels and sizes (bad files left out); when the
    manifest holds checksums, every file is hashed again first and a changed one is an error."""
    if entry.get("checksum"):
        _verify_checksums(entry, root, split, manifest)
    files = entry["files"]
    return ImageFileDataset([root / f["path"] for f in files], [f["target"] for f in files], entry["classes"],
                            split=split, root=root, train_transform=train_transform, image_size=image_size,
                            listed_at=[f["listed_at"] for f in files], sizes=[f["size"] for f in files],
                            manifest=manifest, preprocessing=preprocessing)
