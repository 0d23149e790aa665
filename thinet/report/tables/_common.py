"""Pieces shared by the table builders: titles, count columns, paper columns."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from thinet.report._stats import format_mean_std, format_value
from thinet.report._units import count_unit

PAPER_SOURCE = "Luo, Wu, Lin, ICCV 2017"


def setting_text(rows: pd.DataFrame, config: str) -> str:
    """'config `default`: fashion_mnist, vgg16_small' — what a table is about."""
    datasets = ", ".join(dict.fromkeys(rows["dataset"])) or "no dataset"
    models = ", ".join(dict.fromkeys(rows["model"])) or "no model"
    return f"config `{config}`: dataset {datasets}; model {models}"


def device_note(rows: pd.DataFrame, batch_size: int) -> str:
    devices = ", ".join(d for d in dict.fromkeys(rows["device"]) if d) or "unknown device"
    return f"f./b.: median forward/backward time in ms for a batch of {batch_size} on {devices}."


def add_count_columns(display: pd.DataFrame, summary: pd.DataFrame, params: str, flops: str, prefix: str = "") -> None:
    """Append '#Param. (M)' and '#FLOPs (B)' style columns, unit chosen from the table's values."""
    for column, kind, title in ((params, "params", "#Param."), (flops, "flops", "#FLOPs")):
        label, divisor = count_unit(summary[column], kind)
        display[f"{prefix}{title} ({label})"] = [format_value(v / divisor) for v in summary[column]]


def mean_std_cells(summary: pd.DataFrame, value: str, digits: int = 2) -> list[str]:
    return [format_mean_std(m, s, digits) for m, s in zip(summary[f"{value}_mean"], summary[f"{value}_std"])]


def timing_cells(forward: pd.Series, backward: pd.Series) -> list[str]:
    """'76.71/152.05' per row, '—' where the row has no timing."""
    return [
        "—" if pd.isna(f) and pd.isna(b) else f"{format_value(f)}/{format_value(b)}"
        for f, b in zip(forward, backward)
    ]


def paper_lookup(
    summary: pd.DataFrame,
    in_setting: Callable[[pd.Series], bool],
    row_name: Callable[[pd.Series], str | None],
    values: Mapping[str, Mapping[str, float | None]],
) -> list[tuple[str | None, Mapping[str, float | None]]]:
    """For each summary row: (paper row name, the paper's values) or (None, {}) outside the paper's setting."""
    found = []
    for _, row in summary.iterrows():
        name = row_name(row) if in_setting(row) else None
        found.append((name, values[name]) if name in values else (None, {}))
    return found
