"""Table 2: the criteria compared, as changes against the unpruned model.

Per pruned chain (criterion and rate): Top-1/Top-5 change in percentage points
against the unpruned model of the same experiment (mean ± std over seeds), and the
#Param./#FLOPs reduction factors (unpruned / pruned, ×).
"""
from __future__ import annotations

import pandas as pd

from thinet.report import _paper_values as pv
from thinet.report._context import ReportContext
from thinet.report._rows import base_rows, criteria_rows, sort_summary
from thinet.report._stats import format_value, mean_std_over_seeds
from thinet.report._table import Table
from thinet.report.tables._common import PAPER_SOURCE, mean_std_cells, paper_lookup, setting_text
from thinet.report.tables._registry import table

CAPTION = """\
**Table 2 — pruning criteria compared** (config ``{{ snakemake.config["name"] }}``). For every pruned
chain (criterion × kept fraction *r*): the change of Top-1/Top-5 accuracy against the unpruned model
of the same experiment, in percentage points (mean ± std over seeds; positive = better than
unpruned), and the reduction factors of parameters and FLOPs (unpruned / pruned). All chains share
the sampled images, surgery and fine-tuning; only the channel choice differs, as in the paper's
"ThiNet-WS" comparison. In the paper (VGG-16, ImageNet, r = 0.5) ThiNet gains +1.46 / +1.09 points
and weight sum +1.01 / +0.69 at 3.23× fewer FLOPs; the *paper* columns, when present, show these
values beside the matching rows (weight sum ↔ ThiNet-WS, ThiNet ↔ ThiNet-Conv). The paper's APoZ and
Taylor rows used other frameworks and layer sets and are not matched.
"""

KEYS = ["experiment", "dataset", "model", "variant", "criterion", "keep_ratio"]
REFERENCE_KEYS = ["experiment", "dataset", "model"]


def unpruned_reference(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean top-1/top-5/params/FLOPs of the unpruned model per (experiment, dataset, model)."""
    ref = mean_std_over_seeds(base_rows(metrics), REFERENCE_KEYS, ["top1", "top5", "params", "flops"])
    return ref[[*REFERENCE_KEYS, "top1_mean", "top5_mean", "params_mean", "flops_mean"]].rename(
        columns={"top1_mean": "base_top1", "top5_mean": "base_top5", "params_mean": "base_params", "flops_mean": "base_flops"}
    )


def _with_reference(rows: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    merged = rows.merge(reference, on=REFERENCE_KEYS, how="left")
    # A chain whose experiment logged no unpruned row is compared with the same model's unpruned row elsewhere.
    fallback = reference.drop(columns="experiment").drop_duplicates(["dataset", "model"])
    missing = merged["base_top1"].isna()
    if missing.any():
        filled = merged.loc[missing, KEYS + ["seed", "top1", "top5", "params", "flops"]].merge(
            fallback, on=["dataset", "model"], how="left")
        merged.loc[missing, ["base_top1", "base_top5", "base_params", "base_flops"]] = filled[
            ["base_top1", "base_top5", "base_params", "base_flops"]].to_numpy()
    unmatched = merged.loc[merged["base_top1"].isna(), ["experiment", "model"]].drop_duplicates()
    if len(unmatched):
        pairs = ", ".join(f"{e}/{m}" for e, m in unmatched.itertuples(index=False))
        raise ValueError(f"Table 2: no unpruned ('base') row for experiment/model {pairs} in metrics.csv")
    return merged


def summarize_criteria(metrics: pd.DataFrame, transfer: frozenset[str] | None = None) -> pd.DataFrame:
    """Per chain: d_top1/d_top5 mean and std over seeds (percentage points), params/FLOPs reduction factors."""
    rows = criteria_rows(metrics, transfer)
    merged = _with_reference(rows, unpruned_reference(metrics))
    for value in ("top1", "top5"):
        merged[f"d_{value}"] = pd.to_numeric(merged[value]) - merged[f"base_{value}"]
    merged["params_reduction"] = merged["base_params"] / pd.to_numeric(merged["params"])
    merged["flops_reduction"] = merged["base_flops"] / pd.to_numeric(merged["flops"])
    summary = sort_summary(mean_std_over_seeds(merged, KEYS, ["d_top1", "d_top5", "params_reduction",
                                                              "flops_reduction", "base_top1", "base_top5"]))
    summary = summary.rename(columns={
        "variant": "method", "params_reduction_mean": "params_reduction", "flops_reduction_mean": "flops_reduction",
        "base_top1_mean": "base_top1", "base_top5_mean": "base_top5",
    })
    return summary.drop(columns=["params_reduction_std", "flops_reduction_std", "base_top1_std", "base_top5_std"])


def _paper_row_name(row: pd.Series) -> str | None:
    if row["method"] in pv.PAPER_TABLE2:
        return row["method"]
    if abs(float(row["keep_ratio"]) - pv.PAPER_TABLE2_KEEP_RATIO) > 1e-9:
        return None
    return pv.PAPER_TABLE2_ROW_OF_CRITERION.get(row["criterion"])


def _signed(cells: list[str]) -> list[str]:
    return [c if c.startswith(("-", "—")) else f"+{c}" for c in cells]


@table("table2_criteria", order=2, source="metrics", wanted=lambda facts: facts.criteria_chains,
       needs="'final' rows with a criterion outside transfer experiments",
       section=("Tables", "Table 2: criteria compared"), caption=CAPTION)
def table2(metrics: pd.DataFrame, ctx: ReportContext) -> Table:
    """Table 2: Top-1/Top-5 change and #Param./#FLOPs reduction (×) per criterion and rate."""
    summary = summarize_criteria(metrics, ctx.transfer_experiments)
    in_setting = lambda row: pv.is_paper_setting("table2", row["dataset"], row["model"])  # noqa: E731
    matches = paper_lookup(summary, in_setting, _paper_row_name, pv.PAPER_TABLE2)

    display = pd.DataFrame({"Method": summary["method"]})
    if summary[["dataset", "model"]].drop_duplicates().shape[0] > 1:
        display["Network"] = summary["dataset"] + " / " + summary["model"]
    display["Criterion"] = summary["criterion"]
    display["r (kept)"] = [format_value(v) for v in summary["keep_ratio"]]
    display["Top-1 change (pp)"] = _signed(mean_std_cells(summary, "d_top1"))
    display["Top-5 change (pp)"] = _signed(mean_std_cells(summary, "d_top5"))
    display["#Param. ↓ (×)"] = [format_value(v, 2, "×") for v in summary["params_reduction"]]
    display["#FLOPs ↓ (×)"] = [format_value(v, 2, "×") for v in summary["flops_reduction"]]
    display["Seeds"] = summary["n_seeds"].astype(int)

    data = summary.copy()
    notes = [
        "Change: pruned minus unpruned accuracy of the same experiment, in percentage points, mean ± sample "
        "standard deviation over seeds; reduction: unpruned count / pruned count.",
    ]
    if any(name is not None for name, _ in matches):
        data["paper_row"] = [n or "" for n, _ in matches]
        for key in ("d_top1", "d_top5", "params_x", "flops_x"):
            data[f"paper_{key}"] = [vals.get(key) for _, vals in matches]
        display["paper row"] = data["paper_row"]
        display["paper Top-1 change (pp)"] = _signed([format_value(v) for v in data["paper_d_top1"]])
        display["paper Top-5 change (pp)"] = _signed([format_value(v) for v in data["paper_d_top5"]])
        display["paper #Param. ↓ (×)"] = [format_value(v, 2, "×") for v in data["paper_params_x"]]
        display["paper #FLOPs ↓ (×)"] = [format_value(v, 2, "×") for v in data["paper_flops_x"]]
        notes.append(
            f"paper columns: {PAPER_SOURCE}, Table 2 (VGG-16 on ImageNet). Weight sum maps to the paper's "
            "'ThiNet-WS' and ThiNet to 'ThiNet-Conv' (both at r = 0.5); the paper's APoZ and Taylor rows come from other "
            "frameworks and layer sets, so they are not matched."
        )
    title = f"Table 2. Pruning criteria compared against the unpruned model, {setting_text(summary, ctx.config)}"
    return Table(name="table2_criteria", title=title, data=data, display=display, notes=notes)
