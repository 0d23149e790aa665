"""gcos against contiguous and random groups (and dense ThiNet at the same size), paired by seed.

Per source chain, g and outcome (just after grouping, after the fine-tune): each grouping's top-1 (mean ±
sd over its seeds) and #Param, its difference to gcos paired by seed with its interval and verdict
(`thinet.report._grouped`, the statistics of `_verdict`).
"""
from __future__ import annotations

import pandas as pd

from thinet.report._context import ReportContext
from thinet.report._grouped import (
    OUTCOMES,
    family_of,
    compared_outcomes,
    paired_to_gcos,
)
from thinet.report._paired import GROUP_KEYS
from thinet.report._stats import (
    format_difference,
    format_interval,
    format_mean_std,
    format_value,
    mean_std_over_seeds,
)
from thinet.report._table import Table
from thinet.report.tables._registry import table
from thinet.types import split_grouped_strategy

CAPTION = """\
**gcos against ordinary group convolution, paired by seed** (config ``{{ snakemake.config["name"] }}``).
gcos (Group COnvolution with Shuffling, TPAMI 2019; reconstructed here, its section is not available)
turns every convolution of a pruned model (but the first) into a *g*-group convolution whose partition of
input channels and filters is chosen by ThiNet's reconstruction error and rescaled by least squares per
group; *contiguous* (ResNeXt/ShuffleNet's blocks) and *random* groups are the ordinary group convolutions
at the same size. For each source chain, *g* and outcome — *just after grouping* (before any
fine-tuning) and *after the fine-tune* — each grouping's Top-1 (%, mean ± sd over its seeds) and #Param,
and its difference to gcos in percentage points paired by seed (the same seed gives the same selection
images and fine-tuning data order) with a Student's *t* interval at ``statistics.level`` and a verdict
(Holm within each family), as the criteria get against ThiNet. A dense ThiNet chain of the same
experiment with #Param within 5 % of the grouped models' appears on the final outcome as "(dense)". The
journal's abstract claims gcos is more accurate than ordinary group convolution at the same size.
"""


def grouped_summary(metrics: pd.DataFrame, ctx: ReportContext) -> pd.DataFrame:
    """Per group, outcome and method: top-1 and #Param over seeds, with the paired columns against gcos."""
    keys = [*GROUP_KEYS, "outcome", "criterion"]
    summary = mean_std_over_seeds(compared_outcomes(metrics), keys, ["top1", "params"])
    paired = paired_to_gcos(metrics, ctx.statistics)
    merged = summary.merge(paired, on=keys, how="left")
    merged["reference"] = merged["criterion"].map(family_of)
    merged["order"] = [(0 if c == ref else 2 if c.endswith("(dense)") else 1)
                       for c, ref in zip(merged["criterion"], merged["reference"])]
    merged["outcome_order"] = merged["outcome"].map(list(OUTCOMES).index)
    merged = merged.sort_values(["experiment", "strategy", "outcome_order", "reference", "order", "criterion"],
                                kind="stable")
    return merged.drop(columns=["order", "outcome_order"]).reset_index(drop=True)


@table("grouped_vs_gcos", order=7, source="metrics", wanted=lambda facts: facts.grouped,
       needs="rows of grouped runs (strategy '<chain strategy>/g<g>') with gcos among the groupings",
       section=("Tables", "gcos against ordinary group convolution"), caption=CAPTION)
def grouped_vs_gcos(metrics: pd.DataFrame, ctx: ReportContext) -> Table:
    """The table; raises ValueError when metrics.csv has no grouped run."""
    data = grouped_summary(metrics, ctx)
    if data.empty:
        raise ValueError("gcos table: metrics.csv has no rows of grouped runs (strategy '<chain strategy>/g<g>')")
    split = [split_grouped_strategy(s) for s in data["strategy"]]
    is_reference = data["criterion"].eq(data["reference"])
    display = pd.DataFrame({
        "Experiment": data["experiment"],
        "Chain": [f"{s[0]} r={format_value(r)}" for s, r in zip(split, data["keep_ratio"])],
        "g": [s[1] for s in split],
        "Outcome": data["outcome"].map(OUTCOMES),
        "Grouping": data["criterion"],
        "Top-1 (%)": [format_mean_std(m, s) for m, s in zip(data["top1_mean"], data["top1_std"])],
        "Seeds": data["n_seeds"].astype(int),
        "#Param. (M)": [format_value(p / 1e6, 3) for p in data["params_mean"]],
        "Δ vs reference (pp)": ["reference" if ref else f"{format_difference(m)} vs {r}"
                                for ref, m, r in zip(is_reference, data["diff_mean"], data["reference"])],
        "interval": ["" if ref else format_interval(lo, hi, int(n) if not pd.isna(n) else 0)
                     for ref, lo, hi, n in zip(is_reference, data["ci_low"], data["ci_high"], data["n_pairs"])],
        "Verdict": ["" if ref or pd.isna(v) else v for ref, v in zip(is_reference, data["verdict"])],
    })
    level = round(100 * ctx.statistics.level)
    notes = [(f"Δ: grouping − its reference, paired by seed (gcos; gcos_nols for the groupings without least "
              f"squares, `_nols`: the same partitions, not rescaled); interval: {level} % Student's t over the pairs (unadjusted); "
             f"verdict after {ctx.statistics.correction} within each family (chain, g, outcome), equivalence "
             f"margin ±{ctx.statistics.margin:g} pp. Just after grouping: the per-step evaluation subset; after the "
             "fine-tune: the final evaluation split. gcos is a reconstruction (thinet/grouping).")]
    return Table(name="grouped_vs_gcos", title=f"gcos against ordinary group convolution (config `{ctx.config}`)",
                 data=data, display=display, notes=notes)
