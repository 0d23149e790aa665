"""Datasets by name, the selection subset, and fixture trees in the official layouts.

>>> from thinet.data import available_datasets
>>> available_datasets()
['cub200', 'fashion_mnist', 'imagenet', 'indoor67']
"""
from __future__ import annotations

import json
from pathlib import Path

from thinet.data._base import FIXTURE_MARKER, ClassificationDataset, DatasetSizeWarning
from thinet.data._registry import SPLITS, available_datasets, check_dataset_preprocessing, get_entry, register_dataset
from thinet.data._subset import selection_subset
from thinet.data._fixtures import make_fixture
from thinet.data._image_files import ImageFileDataset, check_files_exist
from thinet.data._manifest import dataset_from_manifest, unreadable_error, verify_split
from thinet.data._transforms import CAFFE_BGR_MEAN, PREPROCESSINGS

# Importing a dataset module registers it.
from thinet.data import cub200, fashion_mnist, imagenet, indoor67  # noqa: F401,E402

__all__ = ["CAFFE_BGR_MEAN", "FIXTURE_MARKER", "PREPROCESSINGS", "ClassificationDataset", "DatasetSizeWarning",
           "available_datasets", "check_dataset_preprocessing", "get_dataset", "make_fixture", "register_dataset",
           "selection_subset", "unreadable_error", "verify_split"]


def get_dataset(name: str, split: str, *, root: str | Path | None = None, train_transform: bool = False,
                image_size: int | None = None, preprocessing: str = "torchvision",
                manifest: str | Path | None = None, check_files: bool = True) -> ClassificationDataset:
    """The dataset `name` ("fashion_mnist", "imagenet", "cub200", "indoor67"), split "train" or "val".

    "val" is the test split where the dataset calls it so. `train_transform`
    selects the augmenting training transform (random crop + flip), otherwise
    the evaluation transform (centre crop). `image_size` overrides the crop
    side (32 for Fashion-MNIST, 224 for the others). `preprocessing` turns pixels into the
    model's input: "torchvision" (scaled to 0-1, normalised; what torchvision/timm weights
    expect) or "caffe" (BGR, 0-255 minus CAFFE_BGR_MEAN; MSRA's Caffe ResNet-50, RGB sets
    only). With `manifest` (the data step's verified file list), an image-file split is rebuilt
    from it, not from its listing; without, every file its index lists must exist (one error lists
    all missing files; `check_files=False` leaves that to the caller: the data step, which reports
    them with the unreadable ones). The result exposes
    `.num_classes`, `.in_channels`, `.image_size`, `.targets`, `.classes`.

    >>> ds = get_dataset("fashion_mnist", "val")  # doctest: +SKIP
    >>> len(ds), ds.num_classes, ds[0][0].shape  # doctest: +SKIP
    (10000, 10, torch.Size([1, 32, 32]))
    >>> cub = get_dataset("cub200", "train", root="/data/CUB_200_2011", train_transform=True)  # doctest: +SKIP
    """
    entry = get_entry(name)
    if split not in SPLITS:
        raise ValueError(f"dataset {name!r}: unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise ValueError(f"dataset {name!r}: image_size must be a positive integer, got {image_size!r}")
    if manifest is not None:
        verified = json.loads(Path(manifest).read_text()).get("verified", {}).get(split)
        if verified is not None:
            return dataset_from_manifest(verified, root=Path(verified["root"]), split=split,
                                         train_transform=bool(train_transform), image_size=image_size,
                                         manifest=str(manifest), preprocessing=preprocessing)
    dataset = entry.load(split, root=None if root is None else Path(root).expanduser(),
                         train_transform=bool(train_transform), image_size=image_size, preprocessing=preprocessing)
    if check_files and isinstance(dataset, ImageFileDataset):
        check_files_exist(dataset)
    return dataset
