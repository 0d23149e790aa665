"""The dataset registry: each dataset module registers one loader and one fixture writer by name."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
from torch.utils.data import Dataset

SPLITS = ("train", "val")


class Loader(Protocol):
    def __call__(self, split: str, *, root: Path | None, train_transform: bool, image_size: int | None) -> Dataset: ...


# (root, classes, per_class, rng, image_size) -> None; writes the official layout under root.
FixtureWriter = Callable[[Path, int, int, np.random.Generator, int], None]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    load: Loader
    write_fixture: FixtureWriter
    # Fixtures of datasets with a fixed label set (Fashion-MNIST) always hold all classes.
    fixed_classes: int | None = None


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, *, fixture: FixtureWriter, fixed_classes: int | None = None,
                     root_holds: str | None = None) -> Callable[[Loader], Loader]:
    """Decorator registering a loader under `name`, with the writer of its fixture tree.

    `root_holds` says what the data root must contain, for datasets that have no default
    location: the loader is then never called without a root.

    >>> @register_dataset("my_set", fixture=lambda root, k, n, rng, size: None, root_holds="my files")  # doctest: +SKIP
    ... def load_my_set(split, *, root, train_transform, image_size): ...
    """

    def decorate(load: Loader) -> Loader:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is registered twice")

        @functools.wraps(load)
        def checked(split: str, *, root: Path | None = None, **kwargs: Any) -> Dataset:
            if root is None and root_holds:
                raise ValueError(f"dataset {name!r} needs a root holding {root_holds}")
            return load(split, root=root, **kwargs)

        _REGISTRY[name] = DatasetEntry(name, checked, fixture, fixed_classes)
        return checked

    return decorate


def get_entry(name: str) -> DatasetEntry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    return _REGISTRY[name]


def available_datasets() -> list[str]:
    """Names accepted by `get_dataset`, sorted.

    >>> "fashion_mnist" in available_datasets()
    True
    """
    return sorted(_REGISTRY)
