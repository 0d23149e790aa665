"""Datasets of image files on disk (ImageNet, CUB-200, Indoor-67): index-file parsing and the item loader."""
from __future__ import annotations

import io
import os
import posixpath
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from thinet.data._base import ClassificationDataset
from thinet.data._transforms import IMAGENET_CROP, imagenet_transform

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


class ImageFileDataset(ClassificationDataset):
    """RGB images decoded on access; a file that cannot be read is an error naming it (never skipped).

    `listed_at` says where each file is listed ("index-file:line"); without it the files come from a
    folder scan (ImageNet), which lists only what exists.
    """

    in_channels = 3

    def __init__(self, files: list[Path], targets: list[int], classes: list[str], *, split: str, root: Path,
                 train_transform: bool, image_size: int | None, preprocessing: str = "torchvision",
                 listed_at: list[str] | None = None, sizes: list[int] | None = None,
                 manifest: str | None = None) -> None:
        if not files:
            raise ValueError(f"no images found for the {split} split under {root}")
        # One numpy byte-string array, not a list of Path objects: DataLoader workers forked from this
        # process would otherwise touch (and so copy) a million refcounts each (ImageNet).
        self._paths = np.array([os.fsencode(p) for p in files])
        self.classes, self.num_classes = classes, len(classes)
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.split, self.root, self.augmented = split, root, train_transform
        self.image_size = image_size or IMAGENET_CROP
        self.preprocessing = preprocessing
        self.transform: Callable = imagenet_transform(train_transform, self.image_size, preprocessing)
        # Where each file is listed ("index-file:line", or the file itself for folder-scanned splits).
        self.from_index = listed_at is not None
        self.listed_at = listed_at if listed_at is not None else [str(f) for f in files]
        # From a verified manifest: each read checks the file still has its verified size (a cheap stat).
        self._sizes = None if sizes is None else np.asarray(sizes, dtype=np.int64)
        self.manifest = manifest

    def path(self, index: int) -> Path:
        """The image file of item `index`."""
        return Path(os.fsdecode(self._paths[index]))

    @property
    def files(self) -> list[Path]:
        """Every image file, in item order (built on each call; use `path(i)` for one)."""
        return [Path(os.fsdecode(p)) for p in self._paths]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.path(index)
        if self._sizes is not None and path.stat().st_size != self._sizes[index]:
            raise ValueError(f"image {path} changed since the data step verified it ({self._sizes[index]} bytes, "
                             f"now {path.stat().st_size}): rerun the data step (delete {self.manifest})")
        return self.transform(load_rgb(path)), int(self.targets[index])


def load_rgb(path: Path, data: bytes | None = None) -> Image.Image:
    """Decode an image fully (so truncation shows here, not later) as RGB; errors name the file.

    `data`: the file's bytes when already read (the data step hashes and decodes one read).
    """
    try:
        with Image.open(path if data is None else io.BytesIO(data)) as image:
            return image.convert("RGB")
    except UnidentifiedImageError as err:  # its text names the BytesIO object, not the file
        raise ValueError(f"cannot read image {path}: cannot identify image file (not an image PIL reads)") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from err


def read_index(path: Path, fields: int) -> list[tuple[int, list[str]]]:
    """Non-blank lines of an index file as (line number, fields); the last field keeps any spaces.

    A missing file is a FileNotFoundError and a malformed line a ValueError naming `file:line`.
    """
    if not path.is_file():
        raise FileNotFoundError(f"index file {path} not found")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(None, fields - 1)
        if len(parts) != fields:
            raise ValueError(f"{path}:{number}: expected {fields} fields, got {line.strip()!r}")
        rows.append((number, parts))
    if not rows:
        raise ValueError(f"index file {path} is empty")
    return rows


def parse_int(text: str, path: Path, number: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{path}:{number}: {what} {text!r} is not an integer") from None


def listed_path(folder: Path, relative: str, index: Path, number: int) -> Path:
    """`folder / relative` for a path read from line `number` of `index`; one that would leave `folder`
    (absolute, or climbing out with '..') is a ValueError naming the file and line.

    >>> listed_path(Path("/data/cub/images"), "001.Bird/a.jpg", Path("images.txt"), 3)
    PosixPath('/data/cub/images/001.Bird/a.jpg')
    >>> listed_path(Path("/data/cub/images"), "../../outside.jpg", Path("images.txt"), 7)
    Traceback (most recent call last):
    ...
    ValueError: images.txt:7: '../../outside.jpg' leaves /data/cub/images (index paths are relative to it)
    """
    normal = posixpath.normpath(relative.replace("\\", "/"))
    if posixpath.isabs(normal) or normal in (".", "..") or normal.startswith("../"):
        raise ValueError(f"{index}:{number}: {relative!r} leaves {folder} (index paths are relative to it)")
    return folder / normal


def missing_files(dataset: ImageFileDataset) -> list[str]:
    """`"<listing line>: listed image <path> does not exist"` for each file an index lists that is not there."""
    if not dataset.from_index:
        return []
    return [f"{dataset.listed_at[i]}: listed image {dataset.path(i)} does not exist" for i in range(len(dataset))
            if not os.path.isfile(dataset._paths[i])]


def check_files_exist(dataset: ImageFileDataset) -> None:
    """Every listed image exists (a run never trains on a silently shortened dataset): else one
    FileNotFoundError listing each missing file with its index line."""
    missing = missing_files(dataset)
    if len(missing) == 1:
        raise FileNotFoundError(missing[0])
    if missing:
        lines = "\n".join(f"  {m}" for m in missing)
        raise FileNotFoundError(f"{len(missing)} listed images of the {dataset.split} split do not exist:\n{lines}")
