"""Read and check the result files the report is computed from (schemas in ARCHITECTURE.md).

>>> import io
>>> read_arch_table(io.StringIO("model,params_M,params_with_biases_M,flops_B,paper_params_M,paper_flops_B\\n"
...                             "vgg16,138.344128,138.357544,30.95,138.34,30.94\\n")).shape  # size_MB added
(1, 7)
"""
from __future__ import annotations

import os
from typing import IO

import pandas as pd

from thinet.types import (
    ARCH_TABLE_COLUMNS,
    COMPARE_LAYER_COLUMNS,
    METRICS_COLUMNS,
    size_mb,
)

PHASES = ("base", "pruned", "finetuned", "final")

_TEXT_COLUMNS = ("config", "experiment", "dataset", "model", "variant", "strategy", "criterion", "layer", "phase", "device")


def _read(source: str | os.PathLike | IO[str], required: tuple[str, ...], what: str) -> pd.DataFrame:
    name = getattr(source, "name", source)
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise FileNotFoundError(f"{what}: no such file {os.fspath(source)!r}")
    frame = pd.read_csv(source, dtype={c: "string" for c in _TEXT_COLUMNS if c in required})
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} {name!s}: missing column(s) {missing}; expected {list(required)}")
    for column in _TEXT_COLUMNS:
        if column in frame.columns:
            # An empty cell (unpruned model: no criterion, no layer) reads as NA; "" compares simply.
            frame[column] = frame[column].fillna("").astype(str)
    return frame


def read_metrics(source: str | os.PathLike | IO[str]) -> pd.DataFrame:
    """Read `results/<config>/metrics.csv`; empty criterion/layer cells become "".

    Raises FileNotFoundError / ValueError naming the file, a missing column or a bad phase.
    """
    frame = _read(source, METRICS_COLUMNS, "metrics table")
    bad = sorted(set(frame["phase"]) - set(PHASES))
    if bad:
        raise ValueError(f"metrics table {getattr(source, 'name', source)!s}: unknown phase(s) {bad}; expected {list(PHASES)}")
    return frame


def read_compare_layer(source: str | os.PathLike | IO[str]) -> pd.DataFrame:
    """Read `results/<config>/compare_layer.csv` (the §4.1 single-layer comparison)."""
    return _read(source, COMPARE_LAYER_COLUMNS, "compare-layer table")


# Columns a file written before they existed may lack, computed from the columns it has.
_DERIVED_ARCH_COLUMNS = {"size_MB": lambda frame: size_mb(pd.to_numeric(frame["params_M"]) * 1e6)}


def with_derived_arch_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the architecture table's derived columns added where missing (`size_MB` from
    `params_M`, by the formula `thinet arch-table` writes it with), in ARCH_TABLE_COLUMNS' place.

    >>> with_derived_arch_columns(pd.DataFrame({"model": ["ThiNet-Tiny"], "params_M": [1.323184]}))["size_MB"].round(2).tolist()
    [5.05]
    """
    missing = [c for c in _DERIVED_ARCH_COLUMNS if c not in frame.columns]
    if not missing:
        return frame
    frame = frame.copy()
    for column in missing:
        place = sum(c in frame.columns for c in ARCH_TABLE_COLUMNS[:ARCH_TABLE_COLUMNS.index(column)])
        frame.insert(place, column, _DERIVED_ARCH_COLUMNS[column](frame))
    return frame


def read_arch_table(source: str | os.PathLike | IO[str]) -> pd.DataFrame:
    """Read the CSV written by `thinet arch-table --out`; a file written before `size_MB` existed gets it."""
    required = tuple(c for c in ARCH_TABLE_COLUMNS if c not in _DERIVED_ARCH_COLUMNS)
    return with_derived_arch_columns(_read(source, required, "architecture table"))
