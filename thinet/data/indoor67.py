"""MIT Indoor-67: root/Images/<class>/<file>.jpg with root/TrainImages.txt and root/TestImages.txt
listing "class/file.jpg" (the archive's indoorCVPR_09/Images is accepted too)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from thinet.data._base import check_expected_count
from thinet.data._fixtures import write_jpegs, write_lines
from thinet.data._image_files import ImageFileDataset, listed_path, read_index
from thinet.data._registry import register_dataset

EXPECTED_COUNTS = {"train": 5360, "val": 1340}
INDEX_FILES = {"train": "TrainImages.txt", "val": "TestImages.txt"}


def _images_dir(root: Path) -> Path:
    for candidate in (root / "Images", root / "indoorCVPR_09" / "Images"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"Indoor-67 image folder not found: neither {root / 'Images'} nor "
                            f"{root / 'indoorCVPR_09' / 'Images'} exists")


def _read_list(index: Path, images_dir: Path,
               index_of: dict[str, int]) -> tuple[list[Path], list[int], set[str], list[str]]:
    files, targets, listed, lines = [], [], set(), []
    for number, (listed_as,) in read_index(index, fields=1):
        path = listed_path(images_dir, listed_as, index, number)
        relative = path.relative_to(images_dir).as_posix()  # the class is the folder the file is in
        class_name = relative.split("/", 1)[0]
        if class_name not in index_of or "/" not in relative:
            raise ValueError(f"{index}:{number}: {listed_as!r} does not start with a class folder of {images_dir}")
        files.append(path)
        targets.append(index_of[class_name])
        listed.add(relative)
        lines.append(f"{index}:{number}")
    return files, targets, listed, lines


def _write_fixture(root: Path, classes: int, per_class: int, rng: np.random.Generator, image_size: int) -> None:
    names = [f"scene_{chr(ord('a') + c % 26)}{c // 26 or ''}" for c in range(classes)]
    # per_class for each split plus one image no list mentions, as in the real archive.
    entries = [(c, k) for c in range(classes) for k in range(2 * per_class + 1)]
    relative = [f"{names[c]}/{names[c]}_{k:04d}.jpg" for c, k in entries]
    write_jpegs(rng, [root / "Images" / r for r in relative], [c for c, _ in entries], classes, image_size)
    for split, index in INDEX_FILES.items():
        chosen = [r for r, (_, k) in zip(relative, entries) if (k < per_class) == (split == "train") and k < 2 * per_class]
        write_lines(root / index, chosen)


@register_dataset("indoor67", fixture=_write_fixture, root_holds="Images/, TrainImages.txt and TestImages.txt")
def load_indoor67(split: str, *, root: Path | None = None, train_transform: bool = False,
                  image_size: int | None = None, preprocessing: str = "torchvision") -> ImageFileDataset:
    """Indoor-67 `split` ("val" = TestImages.txt, 1340 images); classes are the sorted folders of Images/.

    >>> load_indoor67("val", root=Path("/data/indoor67")).num_classes  # doctest: +SKIP
    67
    """
    images_dir = _images_dir(root)
    classes = sorted(p.name for p in images_dir.iterdir() if p.is_dir())
    index_of = {name: i for i, name in enumerate(classes)}
    other = "val" if split == "train" else "train"
    files, targets, listed, lines = _read_list(root / INDEX_FILES[split], images_dir, index_of)
    _, _, other_listed, _ = _read_list(root / INDEX_FILES[other], images_dir, index_of)
    overlap = sorted(listed & other_listed)
    if overlap:
        raise ValueError(f"{overlap[0]} is listed in both {root / INDEX_FILES['train']} and {root / INDEX_FILES['val']}")
    check_expected_count("indoor67", split, len(files), EXPECTED_COUNTS[split], root)
    return ImageFileDataset(files, targets, classes, split=split, root=root,
                            train_transform=train_transform, image_size=image_size,
                            preprocessing=preprocessing, listed_at=lines)
