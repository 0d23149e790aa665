"""Every criterion against ThiNet, paired by seed: the statistics behind the criteria ranking.

Per rate and outcome (just after pruning, after the final fine-tune): each criterion's top-1
(mean ± sd over its seeds), its paired difference to ThiNet with a 95 % t interval, the number
of pairs, the verdict, and its rank by mean (see `thinet.report._paired`).
"""
from __future__ import annotations

import math

import pandas as pd

from thinet.report._context import ReportContext
from thinet.report._paired import (
    GROUP_KEYS,
    LEVEL,
    OUTCOMES,
    paired_to_thinet,
    ranked_outcomes,
)
from thinet.report._rows import THINET_CRITERION
from thinet.report._stats import format_mean_std, format_value
from thinet.report._table import Table
from thinet.report.tables._common import setting_text
from thinet.report.tables._registry import table

CAPTION = """\
**Criteria against ThiNet, paired by seed** (config ``{{ snakemake.config["name"] }}``). For every
kept fraction *r* and two outcomes — *just after pruning* (per chain, the mean over its pruned layers
of the Top-1 just after pruning that layer, before its fine-tuning: the paper's Figure 4 claim) and
*after the final fine-tune* — each criterion's Top-1 (%, mean ± sample sd over its seeds), its
difference to ThiNet in percentage points paired by seed (the same seed gives every criterion the same
selection images and fine-tuning data order) with a 95 % Student's *t* confidence interval, the number
of pairs and a verdict. A difference is called one only where its interval excludes zero; with one
seed there is no interval. The rank orders the means; "tie" marks a criterion whose own 95 % interval
overlaps that of a neighbour in the ranking. In the paper ThiNet is the most accurate criterion both
just after pruning and after fine-tuning.
"""

NOTE_RANK = ("Rank: order of the mean Top-1 within a rate and outcome (1 = most accurate). A rank is not a "
             "significant difference unless the verdict says so; 'tie' marks a criterion whose own 95 % interval "
             "(over its seeds) overlaps the interval of a criterion ranked next to it.")


def _difference_cell(mean: float) -> str:
    text = format_value(mean)
    return text if text.startswith(("-", "—")) else f"+{text}"


def _interval_cell(low: float, high: float, n: int) -> str:
    if n == 1:
        return "none (n = 1)"
    if n == 0 or math.isnan(low):
        return "—"
    # Every pair differing by the same amount (on a discrete accuracy scale) gives a zero-width interval.
    same = " (every pair equal: zero width)" if math.isclose(low, high, abs_tol=1e-9) else ""
    return f"[{low:+.2f}, {high:+.2f}]{same}"


def _pairs_cell(n: int, unpaired: int) -> str:
    return f"{n} ({unpaired} unpaired seed{'s' if unpaired != 1 else ''} dropped)" if unpaired else str(n)


def _rank_cell(rank: int, tied: object) -> str:
    if tied is True:
        return f"{rank} (tie)"
    return f"{rank}" if tied is False else f"{rank} (no interval)"


def criteria_vs_thinet_summary(metrics: pd.DataFrame, transfer: frozenset[str] | None = None) -> pd.DataFrame:
    """Rows of `ranked_outcomes` for the groups with a ThiNet chain and another criterion, with the
    paired columns of `paired_to_thinet` (empty on ThiNet's own row), ordered by experiment (file
    order), decreasing rate, outcome and rank."""
    ranked = ranked_outcomes(metrics, transfer)
    paired = paired_to_thinet(metrics, transfer)
    keys = [*GROUP_KEYS, "outcome"]
    compared = paired[keys].drop_duplicates()
    summary = ranked.merge(compared, on=keys).merge(paired, on=[*keys, "criterion"], how="left")
    experiments = {e: i for i, e in enumerate(dict.fromkeys(metrics["experiment"]))}
    order = pd.DataFrame({"experiment": summary["experiment"].map(experiments), "strategy": summary["strategy"],
                          "rate": -summary["keep_ratio"], "outcome": summary["outcome"].map(list(OUTCOMES).index),
                          "rank": summary["rank"]}, index=summary.index)
    return summary.loc[order.sort_values(list(order.columns), kind="stable").index].reset_index(drop=True)


@table("criteria_vs_thinet", order=3, source="metrics", wanted=lambda facts: facts.criteria_compared,
       needs="chains of ThiNet and another criterion at the same rate (same experiment and strategy)",
       section=("Tables", "Criteria against ThiNet (paired)"), caption=CAPTION)
def criteria_vs_thinet(metrics: pd.DataFrame, ctx: ReportContext) -> Table:
    """Criteria against ThiNet, per rate and outcome, paired by seed, with 95 % intervals and verdicts."""
    summary = criteria_vs_thinet_summary(metrics, ctx.transfer_experiments)
    display = pd.DataFrame(index=summary.index)
    if summary[["experiment", "strategy"]].drop_duplicates().shape[0] > 1:
        display["Experiment"] = summary["experiment"] + " / " + summary["strategy"]
    display["r (kept)"] = [format_value(v) for v in summary["keep_ratio"]]
    display["Outcome"] = summary["outcome"].map(OUTCOMES)
    display["Criterion"] = summary["criterion"]
    display["Top-1 (%)"] = [format_mean_std(m, s) for m, s in zip(summary["top1_mean"], summary["top1_std"])]
    display["Seeds"] = summary["n_seeds"].astype(int)
    is_reference = summary["criterion"].eq(THINET_CRITERION)
    n_pairs = summary["n_pairs"].fillna(0).astype(int)
    display["Δ vs ThiNet (pp)"] = ["reference" if ref else _difference_cell(m)
                                   for ref, m in zip(is_reference, summary["diff_mean"])]
    display[f"{round(100 * LEVEL)} % CI (pp)"] = ["" if ref else _interval_cell(lo, hi, n) for ref, lo, hi, n
                                                  in zip(is_reference, summary["ci_low"], summary["ci_high"], n_pairs)]
    unpaired = summary["unpaired_seeds"].fillna(0).astype(int)
    display["Pairs"] = ["" if ref else _pairs_cell(n, u) for ref, n, u in zip(is_reference, n_pairs, unpaired)]
    display["Verdict"] = ["" if ref else v for ref, v in zip(is_reference, summary["verdict"])]
    display["Rank"] = [_rank_cell(r, t) for r, t in zip(summary["rank"], summary["tied"])]
    display = display.reset_index(drop=True)

    notes = [
        ("Top-1: mean ± sample standard deviation over the criterion's seeds. Just after pruning: per chain, the "
         "mean over its steps of the Top-1 just after pruning that layer (before its fine-tuning); after the final "
         "fine-tune: the final row."),
        (f"Δ vs ThiNet: criterion − ThiNet in percentage points, paired by seed, mean over the pairs; "
         f"{round(100 * LEVEL)} % CI: mean ± t(0.975, n − 1) · sd / √n over the n pairs (none for n = 1). A seed "
         "that only one of the two chains has is dropped and counted beside the pairs."),
        "Verdict: a difference is called one only where its interval excludes zero.",
        NOTE_RANK,
    ]
    title = f"Criteria against ThiNet, paired by seed, {setting_text(summary, ctx.config)}"
    return Table(name="criteria_vs_thinet", title=title, data=summary, display=display, notes=notes)
