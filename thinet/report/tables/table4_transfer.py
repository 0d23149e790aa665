"""Table 4: strategies for a small model on a new domain (CUB-200, Indoor-67).

From the `base` and `final` rows of the transfer experiments: #Param., #FLOPs and
Top-1 (mean ± std over seeds) per dataset and strategy, with the paper's values
beside them for the paper's datasets.
"""
from __future__ import annotations

import pandas as pd

from thinet.report import _paper_values as pv
from thinet.report._context import ReportContext
from thinet.report._rows import sort_summary, transfer_rows
from thinet.report._stats import format_value, mean_std_over_seeds
from thinet.report._table import Table
from thinet.report.tables._common import PAPER_SOURCE, add_count_columns, mean_std_cells, setting_text
from thinet.report.tables._registry import table

CAPTION = """\
**Table 4 — transfer strategies for a small model** (config ``{{ snakemake.config["name"] }}``).
On a domain-specific dataset (CUB-200, Indoor-67): the fine-tuned unpruned VGG-16, pruning it on the
new data (*FT & prune*), training the pruned architecture from scratch, and fine-tuning the
ImageNet-pruned ThiNet-Conv/GAP/Tiny models. Parameters, FLOPs and Top-1 (%). The paper finds
fine-tuning an ImageNet-pruned ThiNet model the best size/accuracy trade-off and training from
scratch far worse; its values stand in the *paper* columns.
"""

KEYS = ["experiment", "dataset", "model", "variant", "criterion", "keep_ratio", "phase"]


def _paper_values(row: pd.Series) -> tuple[str, dict]:
    if not pv.is_paper_setting("table4", row["dataset"], row["model"]):
        return "", {}
    name = pv.PAPER_TABLE4_ROW_OF_VARIANT.get(row["method"], row["method"])
    values = pv.PAPER_TABLE4[row["dataset"]].get(name)
    return (name, values) if values else ("", {})


@table("table4_transfer", order=4, source="metrics", wanted=lambda facts: bool(facts.transfer_experiments),
       needs="'base'/'final' rows of the transfer experiments",
       section=("Tables", "Table 4: transfer strategies"), caption=CAPTION)
def table4(metrics: pd.DataFrame, ctx: ReportContext) -> Table:
    """Table 4: transfer strategies (fine-tuned VGG-16, FT & prune, from scratch, ThiNet-Conv/GAP/Tiny)."""
    rows = transfer_rows(metrics, ctx.transfer_experiments)
    summary = sort_summary(mean_std_over_seeds(rows, KEYS, ["top1", "top5", "params", "flops"]))
    summary = summary.rename(columns={"variant": "method", "params_mean": "params", "flops_mean": "flops"}).drop(
        columns=["params_std", "flops_std"])
    display = pd.DataFrame({"Dataset": summary["dataset"], "Strategy": summary["method"]})
    add_count_columns(display, summary, "params", "flops")
    display["Top-1 (%)"] = mean_std_cells(summary, "top1")
    display["Seeds"] = summary["n_seeds"].astype(int)
    data = summary.copy()
    notes = ["Top-1: accuracy in % on the test split, mean ± sample standard deviation over seeds."]
    matches = [_paper_values(row) for _, row in summary.iterrows()]
    if any(name for name, _ in matches):
        data["paper_row"] = [name for name, _ in matches]
        for key in ("params_M", "flops_B", "top1"):
            data[f"paper_{key}"] = [vals.get(key) for _, vals in matches]
        display["paper #Param. (M)"] = [format_value(v) for v in data["paper_params_M"]]
        display["paper #FLOPs (B)"] = [format_value(v) for v in data["paper_flops_B"]]
        display["paper Top-1 (%)"] = [format_value(v) for v in data["paper_top1"]]
        notes.append(f"paper columns: {PAPER_SOURCE}, Table 4 (the unpruned model is the paper's 'VGG-16').")
    title = f"Table 4. Transfer strategies for a small model, {setting_text(summary, ctx.config)}"
    return Table(name="table4_transfer", title=title, data=data, display=display, notes=notes)
