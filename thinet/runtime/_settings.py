"""Settings dataclasses built from a config mapping, with errors that name the config key."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def settings_from_config(cls: type[T], config: Mapping[str, Any], where: str, what: str) -> T:
    """`cls(**config)`; a non-mapping, an unknown key or a bad value is a ValueError naming `where`.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Budget:
    ...     epochs: int = 1
    >>> settings_from_config(Budget, {"epoch": 2}, "train", "a budget")
    Traceback (most recent call last):
    ...
    ValueError: train.epoch is not a budget key (known: epochs)
    """
    keys = [f.name for f in fields(cls)]
    if not isinstance(config, Mapping):
        raise ValueError(f"{where} must be a mapping with keys {keys}, got {config!r}")
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]} is not {what} key (known: {', '.join(keys)})")
    try:
        return cls(**dict(config))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
