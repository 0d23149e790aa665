"""The architecture table: parameters and FLOPs of each model as counted here, beside the paper's."""
from __future__ import annotations

import pandas as pd

from thinet.report._context import ReportContext
from thinet.report._schema import with_derived_arch_columns
from thinet.report._stats import format_value
from thinet.report._table import Table
from thinet.report.tables._arch_timing import is_timed, timing_display, timing_note
from thinet.report.tables._registry import table

CAPTION = """\
**Architectures** — parameters (M) and FLOPs (B) of each model as counted by this suite
(``thinet arch-table``: parameters in the paper's convention, without the biases of convolution and
fully-connected layers, and with them in a second column; FLOPs = 2 × multiply-accumulates of
convolution and fully-connected layers for one image at the model's input size), beside the paper's
counts (VGG-16 138.34M / 30.94B, ResNet-50 25.56M / 7.72B, ...) and the relative difference in %,
computed from the exact counts. Size: float32 parameters in MB of 2^20 bytes, as the paper counts
ThiNet-Tiny's 5.05 MB. The rows "ThiNet-Tiny gcos g=…" group every convolution but conv1_1 of
ThiNet-Tiny into g groups (gcos, TPAMI 2019, as reconstructed here); the journal's abstract reports
ThiNet-Tiny at 2.66 MB and gives no parameter or FLOP count to compare with. A difference of more than a fraction of a percent means a different
architecture or counting convention.
When the architectures were timed (config key ``arch_timing``), the forward/backward ms (median and
interquartile range), the speed-up against the original and the FLOPs ratio follow, beside the paper's
M40 timings (batch 32, 224×224).
"""


def _difference_pct(measured: pd.Series, paper: pd.Series) -> pd.Series:
    paper = pd.to_numeric(paper, errors="coerce")
    return 100.0 * (pd.to_numeric(measured, errors="coerce") - paper) / paper


@table("arch_table", order=5, source="arch", wanted=lambda facts: True, needs="one row per model",
       section=("Tables", "Architectures"), caption=CAPTION)
def arch_table(arch: pd.DataFrame, ctx: ReportContext) -> Table:
    """From `thinet arch-table` output: counts, the paper's counts and their relative difference in %.

    >>> import pandas as pd
    >>> t = arch_table(pd.DataFrame({"model": ["ThiNet-Tiny"], "params_M": [1.323184],
    ...     "params_with_biases_M": [1.325368], "flops_B": [2.0], "paper_params_M": [1.32], "paper_flops_B": [2.01]}),
    ...     ReportContext("default"))
    >>> round(float(t.data.loc[0, "params_diff_pct"]), 2)  # from the exact count, not from 1.32 vs 1.32
    0.24
    """
    data = with_derived_arch_columns(arch).copy()  # a frame of an older arch_table.csv has no size_MB
    data["params_diff_pct"] = _difference_pct(data["params_M"], data["paper_params_M"])
    data["flops_diff_pct"] = _difference_pct(data["flops_B"], data["paper_flops_B"])
    display = pd.DataFrame({
        "Model": data["model"],
        "#Param. (M)": [format_value(v, 2) for v in data["params_M"]],
        "paper #Param. (M)": [format_value(v, 2) for v in data["paper_params_M"]],
        "Δ #Param. (%)": [format_value(v, 2) for v in data["params_diff_pct"]],
        "#Param. with biases (M)": [format_value(v, 2) for v in data["params_with_biases_M"]],
        "#FLOPs (B)": [format_value(v, 2) for v in data["flops_B"]],
        "Size (MB)": [format_value(v, 2) for v in data["size_MB"]],
        "paper #FLOPs (B)": [format_value(v, 2) for v in data["paper_flops_B"]],
        "Δ #FLOPs (%)": [format_value(v, 2) for v in data["flops_diff_pct"]],
    })
    notes = [
        "Counted by thinet.runtime.model_counts at each model's input size: #Param. in the paper's convention "
        "(every parameter but the biases of convolution and fully-connected layers; BatchNorm's scale and shift "
        "count), and with those biases in its own column; FLOPs = 2 × multiply-accumulates of convolution and "
        "fully-connected layers for one image; size: float32 parameters (#Param.) in MB of 2^20 bytes. paper "
        "columns: Luo, Wu, Lin, ICCV 2017 (Tables 1, 3 and 4); Δ = (ours − paper) / paper, from the exact counts.",
    ]
    if is_timed(data):
        display = pd.concat([display, timing_display(data)], axis=1)
        notes.append(timing_note(data))
    return Table(name="arch_table", title=f"Architectures: parameters and FLOPs (config `{ctx.config}`)",
                 data=data, display=display, notes=notes)
