"""Read and check the result files the report is computed from (schemas in ARCHITECTURE.md).

>>> import io
>>> read_arch_table(io.StringIO("model,params_M,params_with_biases_M,flops_B,paper_params_M,paper_flops_B\\n"
...                             "vgg16,138.344128,138.357544,30.95,138.34,30.94\\n")).shape
(1, 6)
"""
from __future__ import annotations

import os
from typing import IO

import pandas as pd

from thinet.types import ARCH_TABLE_COLUMNS, COMPARE_LAYER_COLUMNS, METRICS_COLUMNS

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


def read_arch_table(source: str | os.PathLike | IO[str]) -> pd.DataFrame:
    """Read the CSV written by `thinet arch-table --out`."""
    return _read(source, ARCH_TABLE_COLUMNS, "architecture table")
