"""The f./b. columns of the architecture table, shown when `arch_table.csv` was timed
(`thinet arch-table --timing`, or the workflow's `arch_timing`): ms with their IQR, speed-ups against
the original, the FLOPs ratio, and the paper's M40 ms and speed-ups beside them."""
from __future__ import annotations

import pandas as pd

from thinet.report._stats import format_value
from thinet.report.tables._common import timing_cells


def is_timed(data: pd.DataFrame) -> bool:
    """True when the table carries the timing columns."""
    return "forward_ms" in data.columns and data["forward_ms"].notna().any()


def _pairs(forward: pd.Series, backward: pd.Series, prefix: str = "", suffix: str = "") -> list[str]:
    """'2.48×/2.68×' per row; '—' for a row that was not timed."""
    return ["—" if pd.isna(f) and pd.isna(b) else f"{prefix}{format_value(f, 2, suffix)}/{prefix}{format_value(b, 2, suffix)}"
            for f, b in zip(forward, backward)]


def timing_display(data: pd.DataFrame) -> pd.DataFrame:
    """Display columns: f./b. (ms) with IQR, speed-up, FLOPs ratio, and the paper's."""
    return pd.DataFrame({
        "FLOPs ratio": [format_value(v, 2, "×") for v in data["flops_ratio"]],
        "f./b. (ms)": timing_cells(data["forward_ms"], data["backward_ms"]),
        "IQR f./b. (ms)": _pairs(data["forward_iqr_ms"], data["backward_iqr_ms"], prefix="±"),
        "speed-up f./b.": _pairs(data["forward_speedup"], data["backward_speedup"], suffix="×"),
        "paper f./b. (ms)": timing_cells(data["paper_forward_ms"], data["paper_backward_ms"]),
        "paper speed-up f./b.": _pairs(data["paper_forward_speedup"], data["paper_backward_speedup"], suffix="×"),
    }, index=data.index)


def timing_note(data: pd.DataFrame) -> str:
    """The setting of the timings, from the table's own columns, beside the paper's."""
    first = data[data["forward_ms"].notna()].iloc[0]
    precision = "AMP" if int(first["timing_amp"]) else "fp32"
    layout = ", channels-last" if int(first["timing_channels_last"]) else ""
    size = int(first["timing_image_size"])
    return (f"f./b.: median forward/backward ms per batch of {int(first['timing_batch_size'])} at {size}×{size} on "
            f"{first['timing_device']} ({int(first['timing_threads'])} thread(s), {precision}{layout}), every row "
            "timed interleaved in one run with torch.utils.benchmark; IQR = interquartile range; speed-up and "
            "FLOPs ratio against the row's original (VGG-16 or ResNet-50). paper: batch 32 at 224×224 on one "
            "M40 GPU.")
