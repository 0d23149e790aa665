"""The dataset registry: each dataset module registers one loader and one fixture writer by name."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
from torch.utils.data import Dataset

from thinet.data._transforms import PREPROCESSINGS, check_preprocessing

SPLITS = ("train", "val")


class Loader(Protocol):
    def __call__(self, split: str, *, root: Path | None, train_transform: bool, image_size: int | None,
                 preprocessing: str) -> Dataset: ...


# (root, classes, per_class, rng, image_size) -> None; writes the official layout under root.
FixtureWriter = Callable[[Path, int, int, np.random.Generator, int], None]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    load: Loader
    write_fixture: FixtureWriter
    # Fixtures of datasets with a fixed label set (Fashion-MNIST) always hold all classes.
    fixed_classes: int | None = None
    # The `preprocessing` values the loader supports (a grayscale set has no BGR order).
    preprocessings: tuple[str, ...] = PREPROCESSINGS


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, *, fixture: FixtureWriter, fixed_classes: int | None = None,
                     root_holds: str | None = None,
                     preprocessings: tuple[str, ...] = PREPROCESSINGS) -> Callable[[Loader], Loader]:
    """Decorator registering a loader under `name`, with the writer of its fixture tree.

    `root_holds` says what the data root must contain, for datasets that have no default
    location: the loader is then never called without a root. `preprocessings` lists the
    `preprocessing` values it supports (default: all); it is never called with another.

    >>> @register_dataset("my_set", fixture=lambda root, k, n, rng, size: None, root_holds="my files")  # doctest: +SKIP
    ... def load_my_set(split, *, root, train_transform, image_size, preprocessing): ...
    """

    def decorate(load: Loader) -> Loader:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is registered twice")

        @functools.wraps(load)
        def checked(split: str, *, root: Path | None = None, preprocessing: str = "torchvision",
                    **kwargs: Any) -> Dataset:
            if root is None and root_holds:
                raise ValueError(f"dataset {name!r} needs a root holding {root_holds}")
            check_dataset_preprocessing(name, preprocessing)
            return load(split, root=root, preprocessing=preprocessing, **kwargs)

        _REGISTRY[name] = DatasetEntry(name, checked, fixture, fixed_classes, tuple(preprocessings))
        return checked

    return decorate


def get_entry(name: str) -> DatasetEntry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    return _REGISTRY[name]


def check_dataset_preprocessing(name: str, preprocessing: str) -> None:
    """A ValueError naming the dataset unless it can be read with `preprocessing`.

    >>> check_dataset_preprocessing("fashion_mnist", "caffe")
    Traceback (most recent call last):
    ...
    ValueError: dataset 'fashion_mnist' supports preprocessing torchvision, not 'caffe'
    """
    allowed = get_entry(name).preprocessings
    if check_preprocessing(preprocessing) not in allowed:
        raise ValueError(f"dataset {name!r} supports preprocessing {', '.join(allowed)}, not {preprocessing!r}")


def available_datasets() -> list[str]:
    """Names accepted by `get_dataset`, sorted.

    >>> "fashion_mnist" in available_datasets()
    True
    """
    return sorted(_REGISTRY)
