"""What every dataset returned by `get_dataset` exposes, and the size sanity check."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset

# make_fixture drops this file in a fixture root; its trees are tiny on purpose.
FIXTURE_MARKER = ".thinet-fixture"


class DatasetSizeWarning(UserWarning):
    """The number of images differs from the official count of the real dataset."""


class ClassificationDataset(Dataset):
    """Base of all datasets: `(image, label)` items plus the metadata the engine needs.

    Attributes: `num_classes`, `in_channels`, `image_size` (side of the square
    output), `targets` (LongTensor of labels, no decoding needed), `classes`
    (names, index = label), `split`, `augmented` (train transform in use), `root`.
    """

    num_classes: int
    in_channels: int
    image_size: int
    targets: torch.Tensor
    classes: list[str]
    split: str
    augmented: bool
    root: Path

    def __len__(self) -> int:
        return int(self.targets.numel())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(split={self.split!r}, images={len(self)}, classes={self.num_classes}, "
                f"image_size={self.image_size}, augmented={self.augmented}, root='{self.root}')")


def check_expected_count(dataset: str, split: str, found: int, expected: int, root: Path, *more_dirs: Path) -> None:
    """Warn when the real dataset at `root` has an unexpected size; fixture trees (marker in any dir) are exempt."""
    if found != expected and not any((Path(d) / FIXTURE_MARKER).exists() for d in (root, *more_dirs)):
        warnings.warn(f"{dataset} {split} split at {root} has {found} images; the official dataset has {expected}",
                      DatasetSizeWarning, stacklevel=4)  # the caller of get_dataset
