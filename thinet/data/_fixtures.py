"""Tiny dataset trees in the official layouts, so tests and CI runs use the real loader code paths."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from thinet.runtime import write_bytes_atomic, write_text_atomic
from thinet.data._base import FIXTURE_MARKER
from thinet.data._registry import get_entry
from thinet.data._synthetic import class_templates, render

DEFAULT_CLASSES = 3


def make_fixture(name: str, root: str | Path, *, classes: int | None = None, per_class: int = 4, seed: int = 0,
                 image_size: int = 64) -> Path:
    """Write a tiny `name` dataset under `root` (per_class images of each class in each split); returns root.

    `classes` defaults to 3 (Fashion-MNIST always has its 10). The same seed
    writes the same bytes.

    >>> import tempfile
    >>> from thinet.data import get_dataset
    >>> root = make_fixture("cub200", tempfile.mkdtemp(), classes=2, per_class=3)
    >>> len(get_dataset("cub200", "train", root=root, image_size=32))
    6
    """
    entry = get_entry(name)
    if entry.fixed_classes is not None:
        if classes not in (None, entry.fixed_classes):
            raise ValueError(f"make_fixture: {name} has a fixed set of {entry.fixed_classes} classes, got classes={classes}")
        classes = entry.fixed_classes
    classes = DEFAULT_CLASSES if classes is None else classes
    for key, value, low in (("classes", classes, 1), ("per_class", per_class, 1), ("image_size", image_size, 8)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"make_fixture: {key} must be an integer >= {low}, got {value!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    entry.write_fixture(root, classes, per_class, np.random.default_rng(seed), image_size)
    write_text_atomic(root / FIXTURE_MARKER, f"{name} fixture: classes={classes} per_class={per_class} seed={seed}\n")
    return root


def write_lines(path: Path, rows: list[str]) -> None:
    """An index file of a fixture tree: one row a line, atomically."""
    write_text_atomic(path, "\n".join(rows) + "\n")


def write_jpegs(rng: np.random.Generator, paths: list[Path], labels: list[int], num_classes: int, image_size: int) -> None:
    """One synthetic JPEG per path; sizes vary around `image_size` and the first is greyscale,
    as in the real datasets (CUB and Indoor-67 hold a few greyscale images)."""
    templates = class_templates(rng, num_classes, 3)
    sides = rng.integers(image_size * 3 // 4, image_size * 5 // 4 + 1, size=(len(paths), 2))
    for i, (path, label) in enumerate(zip(paths, labels)):
        height, width = (int(s) for s in sides[i])
        pixels = render(rng, templates, np.array([label]), height, width)[0]
        image = Image.fromarray(pixels)
        if i == 0:
            image = image.convert("L")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        write_bytes_atomic(path, buffer.getvalue())
