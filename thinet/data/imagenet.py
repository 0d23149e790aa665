"""ILSVRC-12 (ImageNet) in class folders: root/train/<wnid>/*.JPEG and root/val/<wnid>/*.JPEG."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from thinet.data._base import check_expected_count
from thinet.data._fixtures import write_jpegs
from thinet.data._image_files import IMAGE_SUFFIXES, ImageFileDataset
from thinet.data._registry import register_dataset

EXPECTED_COUNTS = {"train": 1281167, "val": 50000}
SPLIT_DIRS = {"train": "train", "val": "val"}


def _class_dirs(split_dir: Path) -> list[Path]:
    if not split_dir.is_dir():
        raise FileNotFoundError(f"ImageNet split directory {split_dir} not found (expected <root>/train and <root>/val "
                                "holding one folder per class, named by wnid)")
    entries = list(os.scandir(split_dir))
    loose = sorted(e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))
    if loose:
        raise ValueError(f"{split_dir} holds images directly ({loose[0]}, ...); it must hold one folder per class "
                         "(sort the flat validation set into wnid folders first, e.g. with valprep.sh)")
    dirs = sorted(Path(e.path) for e in entries if e.is_dir())
    if not dirs:
        raise ValueError(f"{split_dir} holds no class folders")
    return dirs


def _images_in(class_dir: Path) -> list[Path]:
    # scandir's cached file types spare one stat per image (1.28M on ImageNet).
    files = sorted(Path(e.path) for e in os.scandir(class_dir) if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise ValueError(f"class folder {class_dir} holds no images")
    return files


def _write_fixture(root: Path, classes: int, per_class: int, rng: np.random.Generator, image_size: int) -> None:
    wnids = [f"n{index:08d}" for index in range(classes)]
    for split, split_dir in SPLIT_DIRS.items():
        paths, labels = [], []
        for label, wnid in enumerate(wnids):
            for k in range(per_class):
                name = f"{wnid}_{k}.JPEG" if split == "train" else f"ILSVRC2012_val_{label * per_class + k + 1:08d}.JPEG"
                paths.append(root / split_dir / wnid / name)
                labels.append(label)
        write_jpegs(rng, paths, labels, classes, image_size)


@register_dataset("imagenet", fixture=_write_fixture, root_holds="train/ and val/ class folders")
def load_imagenet(split: str, *, root: Path | None = None, train_transform: bool = False,
                  image_size: int | None = None, preprocessing: str = "torchvision") -> ImageFileDataset:
    """ImageNet `split`; classes are the sorted training wnid folders, the same index in both splits.

    >>> ds = load_imagenet("val", root=Path("/data/ILSVRC2012"))  # doctest: +SKIP
    >>> ds.num_classes, ds[0][0].shape  # doctest: +SKIP
    (1000, torch.Size([3, 224, 224]))
    """
    classes = [d.name for d in _class_dirs(root / SPLIT_DIRS["train"])]
    index_of = {wnid: i for i, wnid in enumerate(classes)}
    files, targets = [], []
    for class_dir in _class_dirs(root / SPLIT_DIRS[split]):
        if class_dir.name not in index_of:
            raise ValueError(f"ImageNet {split} class folder {class_dir} has no counterpart in {root / 'train'}")
        images = _images_in(class_dir)
        files.extend(images)
        targets.extend([index_of[class_dir.name]] * len(images))
    check_expected_count("imagenet", split, len(files), EXPECTED_COUNTS[split], root)
    return ImageFileDataset(files, targets, classes, split=split, root=root,
                            train_transform=train_transform, image_size=image_size,
                            preprocessing=preprocessing)
