"""CUB-200-2011 in its official archive layout (bounding boxes unused).

root/ (or root/CUB_200_2011/): images/<class_dir>/<file>.jpg, images.txt (id path),
train_test_split.txt (id is_train), image_class_labels.txt (id label 1..K), classes.txt (id name).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from thinet.data._base import check_expected_count
from thinet.data._fixtures import write_jpegs, write_lines
from thinet.data._image_files import ImageFileDataset, listed_path, parse_int, read_index
from thinet.data._registry import register_dataset

EXPECTED_COUNTS = {"train": 5994, "val": 5794}
ARCHIVE_DIR = "CUB_200_2011"


def _base(root: Path) -> Path:
    nested = root / ARCHIVE_DIR
    return nested if (nested / "images.txt").is_file() else root


def _read_id_map(path: Path) -> dict[int, tuple[int, str]]:
    """id -> (line, value) for an `id value` index file; duplicate ids are errors."""
    rows: dict[int, tuple[int, str]] = {}
    for number, (image_id, value) in read_index(path, fields=2):
        key = parse_int(image_id, path, number, "id")
        if key in rows:
            raise ValueError(f"{path}:{number}: id {key} already listed on line {rows[key][0]}")
        rows[key] = (number, value)
    return rows


def _read_classes(path: Path) -> list[str]:
    rows = _read_id_map(path)
    if sorted(rows) != list(range(1, len(rows) + 1)):
        raise ValueError(f"{path}: class ids must be 1..{len(rows)}, got {sorted(rows)[:5]}...")
    return [rows[i][1] for i in range(1, len(rows) + 1)]


def _check_same_ids(reference: Path, ids: dict, other: Path, other_ids: dict) -> None:
    if len(ids) != len(other_ids):
        raise ValueError(f"{reference} lists {len(ids)} images but {other} lists {len(other_ids)}")
    missing = sorted(set(ids) - set(other_ids))
    if missing:
        raise ValueError(f"image id {missing[0]} ({reference}:{ids[missing[0]][0]}) is missing from {other}")


def _write_fixture(root: Path, classes: int, per_class: int, rng: np.random.Generator, image_size: int) -> None:
    class_dirs = [f"{c + 1:03d}.Bird_{c + 1}" for c in range(classes)]
    entries = [(c, k) for c in range(classes) for k in range(2 * per_class)]
    # Ids in shuffled order so no test can pass by assuming id order == class order.
    entries = [entries[i] for i in rng.permutation(len(entries))]
    paths = [f"{class_dirs[c]}/Bird_{c + 1}_{k:04d}.jpg" for c, k in entries]
    write_jpegs(rng, [root / "images" / p for p in paths], [c for c, _ in entries], classes, image_size)
    lines = {
        "classes.txt": [f"{c + 1} {name}" for c, name in enumerate(class_dirs)],
        "images.txt": [f"{i + 1} {p}" for i, p in enumerate(paths)],
        "train_test_split.txt": [f"{i + 1} {int(k % 2 == 0)}" for i, (_, k) in enumerate(entries)],
        "image_class_labels.txt": [f"{i + 1} {c + 1}" for i, (c, _) in enumerate(entries)],
    }
    for name, rows in lines.items():
        write_lines(root / name, rows)


@register_dataset("cub200", fixture=_write_fixture, root_holds="the CUB_200_2011 archive")
def load_cub200(split: str, *, root: Path | None = None, train_transform: bool = False,
                image_size: int | None = None, preprocessing: str = "torchvision") -> ImageFileDataset:
    """CUB-200-2011 `split` ("val" = the official test images); labels are classes.txt ids minus one.

    >>> ds = load_cub200("train", root=Path("/data/CUB_200_2011"))  # doctest: +SKIP
    >>> len(ds), ds.num_classes  # doctest: +SKIP
    (5994, 200)
    """
    base = _base(root)
    classes = _read_classes(base / "classes.txt")
    images_txt, split_txt, labels_txt = base / "images.txt", base / "train_test_split.txt", base / "image_class_labels.txt"
    images, is_train, labels = _read_id_map(images_txt), _read_id_map(split_txt), _read_id_map(labels_txt)
    _check_same_ids(images_txt, images, split_txt, is_train)
    _check_same_ids(images_txt, images, labels_txt, labels)
    want = "1" if split == "train" else "0"
    files, targets, lines = [], [], []
    for image_id in sorted(images):
        number, flag = is_train[image_id]
        if flag not in ("0", "1"):
            raise ValueError(f"{split_txt}:{number}: is_training_image must be 0 or 1, got {flag!r}")
        label_line, label_text = labels[image_id]
        label = parse_int(label_text, labels_txt, label_line, "label")
        if not 1 <= label <= len(classes):
            raise ValueError(f"{labels_txt}:{label_line}: label {label} is out of range 1..{len(classes)}")
        line, relative = images[image_id]
        image = listed_path(base / "images", relative, images_txt, line)
        if flag == want:
            files.append(image)
            targets.append(label - 1)
            lines.append(f"{images_txt}:{line}")
    check_expected_count("cub200", split, len(files), EXPECTED_COUNTS[split], root, base)
    return ImageFileDataset(files, targets, classes, split=split, root=base,
                            train_transform=train_transform, image_size=image_size,
                            preprocessing=preprocessing, listed_at=lines)
