"""What Tables 1 and 3 share: the unpruned network and its ThiNet variants, one model family each.

Top-1/Top-5 (mean ± std over seeds), #Param., #FLOPs and forward/backward time at
batch 32, from the `base` and `final` rows of metrics.csv. In the paper's setting
(ImageNet, VGG-16 / ResNet-50 v1) the paper's numbers stand beside in "paper" columns.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from thinet.report import _paper_values as pv
from thinet.report._context import ReportContext
from thinet.report._rows import family_rows, sort_summary
from thinet.report._stats import format_value, mean_std_over_seeds
from thinet.report._table import Table
from thinet.report._units import count_unit
from thinet.report.tables._common import (
    PAPER_SOURCE, add_count_columns, device_note, mean_std_cells, paper_lookup, setting_text, timing_cells,
)

VALUES = ("top1", "top5", "params", "params_with_biases", "flops", "forward_ms", "backward_ms")
KEYS = ["experiment", "dataset", "model", "variant", "criterion", "keep_ratio", "phase"]
PAPER_VALUE_KEYS = ("top1", "top5", "params_M", "flops_B", "forward_ms", "backward_ms")


def summarize_family(metrics: pd.DataFrame, family: str, transfer: frozenset[str] | None = None) -> pd.DataFrame:
    """One row per variant of `family`: the unpruned model(s) first, then the pruned ones by decreasing rate."""
    rows = family_rows(metrics, family, transfer).copy()
    # The same unpruned model may be logged once per experiment: it is one table row.
    rows.loc[rows["phase"].eq("base"), "experiment"] = ""
    summary = sort_summary(mean_std_over_seeds(rows, KEYS, VALUES))
    return summary.rename(columns={"params_mean": "params", "params_with_biases_mean": "params_with_biases",
                                   "flops_mean": "flops", "variant": "method"}).drop(
        columns=["params_std", "params_with_biases_std", "flops_std"]
    )


def family_table(
    metrics: pd.DataFrame, ctx: ReportContext, *, name: str, number: int, family: str, family_title: str,
    paper: Mapping[str, Mapping[str, float | None]], paper_row_name: Callable[[pd.Series], str | None],
) -> Table:
    """Table `number` (`name`) of the model `family`: measured columns, and the paper's `paper` values
    where a row is in the paper's setting and `paper_row_name(row)` names a row of the paper's table."""
    summary = summarize_family(metrics, family, ctx.transfer_experiments)
    table_key = f"table{number}"
    in_setting = lambda row: pv.is_paper_setting(table_key, row["dataset"], row["model"])  # noqa: E731
    matches = paper_lookup(summary, in_setting, paper_row_name, paper)
    with_paper = any(n is not None for n, _ in matches)

    # A label that several experiments share ('thinet r=0.5' at two fine-tuning budgets) names its experiment.
    shared = summary.groupby("method")["experiment"].transform("nunique").gt(1)
    display = pd.DataFrame({"Model": [f"{m} ({e})" if both else m
                                      for m, e, both in zip(summary["method"], summary["experiment"], shared)]})
    if summary[["dataset", "model"]].drop_duplicates().shape[0] > 1:
        display["Network"] = summary["dataset"] + " / " + summary["model"]
    display["Top-1 (%)"] = mean_std_cells(summary, "top1")
    display["Top-5 (%)"] = mean_std_cells(summary, "top5")
    add_count_columns(display, summary, "params", "flops")
    label, divisor = count_unit(summary["params_with_biases"], "params")
    display[f"#Param. with biases ({label})"] = [format_value(v / divisor) for v in summary["params_with_biases"]]
    display["f./b. (ms)"] = timing_cells(summary["forward_ms_mean"], summary["backward_ms_mean"])
    display["Seeds"] = summary["n_seeds"].astype(int)

    data = summary.copy()
    notes = [
        "Top-1/Top-5: accuracy in % on the evaluation split, mean ± sample standard deviation over the seeds counted in 'Seeds'.",
        "#Param.: the paper's convention, every parameter but the biases of convolution and fully-connected layers; "
        "'with biases' counts those too.",
        device_note(family_rows(metrics, family, ctx.transfer_experiments), ctx.timing_batch_size),
    ]
    if with_paper:
        for key in PAPER_VALUE_KEYS:
            data[f"paper_{key}"] = [vals.get(key) for _, vals in matches]
        data["paper_row"] = [n or "" for n, _ in matches]
        display["paper Top-1 (%)"] = [format_value(v) for v in data["paper_top1"]]
        display["paper Top-5 (%)"] = [format_value(v) for v in data["paper_top5"]]
        display["paper #Param. (M)"] = [format_value(v) for v in data["paper_params_M"]]
        display["paper #FLOPs (B)"] = [format_value(v) for v in data["paper_flops_B"]]
        display["paper f./b. (ms)"] = timing_cells(data["paper_forward_ms"], data["paper_backward_ms"])
        notes.append(
            f"paper columns: the values reported in {PAPER_SOURCE}, Table {number} (ImageNet; timings on one "
            "M40 GPU with Caffe; FLOPs of convolutions only), not measurements of this suite."
        )
    title = f"Table {number}. {family_title}, {setting_text(summary, ctx.config)}"
    return Table(name=name, title=title, data=data, display=display, notes=notes)
