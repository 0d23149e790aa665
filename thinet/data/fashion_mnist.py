"""Fashion-MNIST from its IDX files (the embedded default dataset).

Looks in Debian's dataset-fashion-mnist directory, or in a given root (plain or
gzipped IDX files, or torchvision's FashionMNIST/raw layout); downloads with
torchvision into a given root only when the files are absent and the network answers.
"""
from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from thinet.data._base import ClassificationDataset, check_expected_count
from thinet.data._idx import read_idx, write_idx
from thinet.data._registry import register_dataset
from thinet.data._synthetic import class_templates, render
from thinet.data._transforms import SMALL_CROP, SmallImageTransform

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EXPECTED_COUNTS = {"train": 60000, "val": 10000}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FIXTURE_SIDE = 28


class FashionMNIST(ClassificationDataset):
    """The whole split held as one uint8 tensor N x 28 x 28; items are (1 x S x S float, label)."""

    in_channels = 1
    num_classes = len(CLASSES)
    classes = CLASSES

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, transform: SmallImageTransform,
                 split: str, root: Path) -> None:
        self.data, self.targets, self.transform = images, targets, transform
        self.split, self.root = split, root
        self.image_size, self.augmented = transform.image_size, transform.train

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.data[index]), int(self.targets[index])


def _candidate_dirs(root: Path | None) -> list[Path]:
    if root is None:
        return [DEBIAN_DIR]
    return [root, root / "FashionMNIST" / "raw", root / "raw"]


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _files_in(directory: Path) -> dict[str, Path] | None:
    found = {stem: _find(directory, stem) for pair in STEMS.values() for stem in pair}
    return None if None in found.values() else found  # type: ignore[return-value]


def _download(root: Path) -> None:
    """Fetch the files with torchvision into root/FashionMNIST/raw; raises when that is impossible."""
    from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

    host = urlparse(TorchvisionFashionMNIST.mirrors[0]).hostname
    # A quick probe: without it an offline machine could wait minutes on the download.
    socket.create_connection((host, 80), timeout=5).close()
    TorchvisionFashionMNIST(str(root), train=True, download=True)


def locate_files(root: Path | None) -> tuple[Path, dict[str, Path]]:
    """The directory holding all four IDX files and their paths; FileNotFoundError naming every path tried."""
    dirs = _candidate_dirs(root)
    for directory in dirs:
        files = _files_in(directory)
        if files is not None:
            return directory, files
    download_note = ""
    if root is not None:
        try:
            _download(root)
        except Exception as err:  # any failure (offline, HTTP, checksum) ends in the same advice
            download_note = f" Download into {root} failed: {err}."
        else:
            files = _files_in(root / "FashionMNIST" / "raw")
            if files is not None:
                return root / "FashionMNIST" / "raw", files
    names = ", ".join(f"{stem}[.gz]" for pair in STEMS.values() for stem in pair)
    raise FileNotFoundError(
        f"Fashion-MNIST IDX files ({names}) not found in: {', '.join(str(d) for d in dirs)}.{download_note} "
        "Install them with `apt-get install dataset-fashion-mnist` (files land in "
        f"{DEBIAN_DIR}) or set the data root to a directory holding them.")


def _stamp(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4)
def _read_split(images_stamp: tuple[str, int, int], labels_stamp: tuple[str, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    images_path, labels_path = Path(images_stamp[0]), Path(labels_stamp[0])
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if len(labels) and int(labels.max()) >= len(CLASSES):
        bad = int(np.argmax(labels >= len(CLASSES)))
        raise ValueError(f"{labels_path}: label {int(labels[bad])} at index {bad} is out of range 0..{len(CLASSES) - 1}")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


@lru_cache(maxsize=4)
def _pixel_stats(images_stamp: tuple[str, int, int]) -> tuple[float, float]:
    """Mean and std of the training pixels in [0, 1], exact via the 256-bin histogram."""
    counts = np.bincount(read_idx(Path(images_stamp[0]), ndim=3).ravel(), minlength=256).astype(np.float64)
    values = np.arange(256) / 255.0
    mean = float((counts * values).sum() / counts.sum())
    std = float(np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum()))
    return mean, std


def _write_fixture(root: Path, classes: int, per_class: int, rng: np.random.Generator, image_size: int) -> None:
    # The IDX layout carries no class list, so a fixture always holds all ten classes at 28x28.
    templates = class_templates(rng, len(CLASSES), 1)
    for split, (images_stem, labels_stem) in STEMS.items():
        labels = np.repeat(np.arange(len(CLASSES)), per_class)
        labels = labels[rng.permutation(len(labels))]
        images = render(rng, templates, labels, FIXTURE_SIDE, FIXTURE_SIDE)[..., 0]
        write_idx(root / f"{images_stem}.gz", images)
        write_idx(root / f"{labels_stem}.gz", labels.astype(np.uint8))


# Grayscale: "caffe" (BGR, 0-255) has no meaning here; "torchvision" is scaled to 0-1 and normalised
# with the training set's own pixel mean and std.
@register_dataset("fashion_mnist", fixture=_write_fixture, fixed_classes=len(CLASSES), preprocessings=("torchvision",))
def load_fashion_mnist(split: str, *, root: Path | None = None, train_transform: bool = False,
                       image_size: int | None = None, preprocessing: str = "torchvision") -> FashionMNIST:
    """Fashion-MNIST `split` ("train" or "val" = the t10k test set), 1 x 32 x 32 by default.

    >>> ds = load_fashion_mnist("val")  # doctest: +SKIP
    >>> len(ds), ds[0][0].shape  # doctest: +SKIP
    (10000, torch.Size([1, 32, 32]))
    """
    directory, files = locate_files(root)
    images_stem, labels_stem = STEMS[split]
    images, targets = _read_split(_stamp(files[images_stem]), _stamp(files[labels_stem]))
    mean, std = _pixel_stats(_stamp(files[STEMS["train"][0]]))
    if std == 0:
        raise ValueError(f"{files[STEMS['train'][0]]}: all training pixels are equal, cannot normalise")
    transform = SmallImageTransform(mean, std, image_size or SMALL_CROP, train=train_transform)
    check_expected_count("fashion_mnist", split, len(targets), EXPECTED_COUNTS[split], directory, *_candidate_dirs(root))
    return FashionMNIST(images, targets, transform, split, directory)
