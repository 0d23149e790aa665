"""Every criterion against ThiNet, paired by seed: the statistics behind the criteria ranking.

Per fine-tuning budget (experiment), rate and outcome (just after pruning, after the final
fine-tune): each criterion's top-1 (mean ± sd over its seeds), its paired difference to ThiNet with
its interval, the equivalence interval, the Holm-adjusted p values, the verdict words before and
after the correction, and its rank by mean (see `thinet.report._paired` and `_verdict`).
"""
from __future__ import annotations

import math

import pandas as pd

from thinet.report._context import ReportContext
from thinet.report._paired import GROUP_KEYS, OUTCOMES, paired_to_thinet, ranked_outcomes
from thinet.report._verdict import StatsSettings
from thinet.report._rows import THINET_CRITERION
from thinet.report._stats import format_difference, format_interval, format_mean_std, format_value
from thinet.report._table import Table
from thinet.report.tables._common import setting_text
from thinet.report.tables._registry import table

CAPTION = """\
**Criteria against ThiNet, paired by seed** (config ``{{ snakemake.config["name"] }}``). For every
kept fraction *r* and two outcomes — *just after pruning* (per chain, the mean over its pruned layers
of the Top-1 just after pruning that layer, before its fine-tuning: the paper's Figure 4 claim) and
*after the final fine-tune* — each criterion's Top-1 (%, mean ± sample sd over its seeds), its
difference to ThiNet in percentage points paired by seed (the same seed gives every criterion the same
selection images and fine-tuning data order) with a Student's *t* confidence interval (level of the
config key ``statistics.level``), the number of pairs and a verdict in four words: *worse* or *better
than ThiNet* (the interval excludes zero), *equivalent to ThiNet within ±δ* (two one-sided tests: the
1 − 2α interval lies inside ±δ, δ = ``statistics.equivalence_margin``), else *undecided*. The verdict
is given before and after the multiplicity correction (``statistics.correction``, Holm within each
family: the criteria of one budget, rate and outcome); the interval shown is the unadjusted one. With
one seed there is no interval. The rank orders the means; "tie" marks a criterion whose own interval
overlaps that of a neighbour in the ranking. In the paper ThiNet is the most accurate criterion both
just after pruning and after fine-tuning.
"""

NOTE_RANK = ("Rank: order of the mean Top-1 within a rate and outcome (1 = most accurate). A rank is not a "
             "significant difference unless the verdict says so; 'tie' marks a criterion whose own interval "
             "(over its seeds) overlaps the interval of a criterion ranked next to it.")


def _p_cell(p: float, adjusted: float, correction: str) -> str:
    if math.isnan(p):
        return "—"
    return f"{p:.3g}" if correction == "none" else f"{p:.3g} → {adjusted:.3g}"


def _pairs_cell(n: int, unpaired: int) -> str:
    return f"{n} ({unpaired} unpaired seed{'s' if unpaired != 1 else ''} dropped)" if unpaired else str(n)


def _rank_cell(rank: int, tied: object) -> str:
    if tied is True:
        return f"{rank} (tie)"
    return f"{rank}" if tied is False else f"{rank} (no interval)"


def criteria_vs_thinet_summary(metrics: pd.DataFrame, transfer: frozenset[str] | None = None,
                               settings: StatsSettings | None = None) -> pd.DataFrame:
    """Rows of `ranked_outcomes` for the groups with a ThiNet chain and another criterion, with the
    paired columns of `paired_to_thinet` (empty on ThiNet's own row), ordered by experiment (file
    order), decreasing rate, outcome and rank."""
    settings = settings or StatsSettings()
    ranked = ranked_outcomes(metrics, transfer, settings.level)
    paired = paired_to_thinet(metrics, transfer, settings)
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
    """Criteria against ThiNet, per budget, rate and outcome, paired by seed, with intervals and verdicts."""
    settings = ctx.statistics
    summary = criteria_vs_thinet_summary(metrics, ctx.transfer_experiments, settings)
    level, equivalence_level = round(100 * settings.level), round(100 * (1 - 2 * settings.alpha))
    display = pd.DataFrame(index=summary.index)
    if summary[["experiment", "strategy"]].drop_duplicates().shape[0] > 1:
        display["Experiment"] = summary["experiment"] + " / " + summary["strategy"]
    if ctx.budgets:
        display["Fine-tune"] = summary["experiment"].map(lambda e: ctx.budgets.get(e, "—"))
    display["r (kept)"] = [format_value(v) for v in summary["keep_ratio"]]
    display["Outcome"] = summary["outcome"].map(OUTCOMES)
    display["Criterion"] = summary["criterion"]
    display["Top-1 (%)"] = [format_mean_std(m, s) for m, s in zip(summary["top1_mean"], summary["top1_std"])]
    display["Seeds"] = summary["n_seeds"].astype(int)
    is_reference = summary["criterion"].eq(THINET_CRITERION)
    n_pairs = summary["n_pairs"].fillna(0).astype(int)

    def cells(values):
        return ["" if ref else value for ref, value in zip(is_reference, values)]

    display["Δ vs ThiNet (pp)"] = ["reference" if ref else format_difference(m)
                                   for ref, m in zip(is_reference, summary["diff_mean"])]
    display[f"{level} % CI (pp)"] = cells(format_interval(lo, hi, n) for lo, hi, n
                                          in zip(summary["ci_low"], summary["ci_high"], n_pairs))
    display[f"{equivalence_level} % CI (pp)"] = cells(format_interval(lo, hi, n) for lo, hi, n
                                                      in zip(summary["eq_low"], summary["eq_high"], n_pairs))
    unpaired = summary["unpaired_seeds"].fillna(0).astype(int)
    display["Pairs"] = cells(_pairs_cell(n, u) for n, u in zip(n_pairs, unpaired))
    correction = settings.correction
    p_title = "p" if correction == "none" else f"p ({correction})"
    display[f"{p_title}: difference"] = cells(_p_cell(p, a, correction)
                                              for p, a in zip(summary["p_diff"], summary["p_diff_adj"]))
    display[f"{p_title}: equivalence"] = cells(_p_cell(p, a, correction)
                                               for p, a in zip(summary["p_equiv"], summary["p_equiv_adj"]))
    if correction == "none":
        display["Verdict"] = cells(summary["verdict"])
    else:
        display["Verdict (unadjusted)"] = cells(summary["verdict_unadjusted"])
        display[f"Verdict ({correction})"] = cells(summary["verdict"])
    display["Rank"] = [_rank_cell(r, t) for r, t in zip(summary["rank"], summary["tied"])]
    display = display.reset_index(drop=True)

    notes = [
        ("Top-1: mean ± sample standard deviation over the criterion's seeds. Just after pruning: per chain, the "
         "mean over its steps of the Top-1 just after pruning that layer (before its fine-tuning); after the final "
         "fine-tune: the final row."),
        (f"Δ vs ThiNet: criterion − ThiNet in percentage points, paired by seed, mean over the pairs; "
         f"{level} % CI: mean ± t · sd / √n over the n pairs (none for n = 1), unadjusted. A seed "
         "that only one of the two chains has is dropped and counted beside the pairs."),
        (f"Verdict: 'worse'/'better than ThiNet' where the t test of Δ = 0 rejects at α = {settings.alpha:.2g} (the "
         f"{level} % CI excludes zero); else 'equivalent within ±{settings.margin:g} pp' where both one-sided tests "
         f"of |Δ| ≥ {settings.margin:g} pp reject (the {equivalence_level} % CI lies inside the margin); else "
         "'undecided'."),
        (f"Multiplicity: {correction}" + ("" if correction == "none" else
         " within each family (one fine-tuning budget, rate and outcome: the criteria compared with ThiNet there), "
         "separately over its difference tests and over its equivalence tests, so the chance of any false word in "
         "a family can reach 2α (each criterion has at most one true null hypothesis of the two, and each Holm run "
         "holds α); p columns show unadjusted → adjusted, and the last verdict column uses the adjusted p values. "
         "Two arms with one and the same value on every seed (no spread: both at chance, say) get no test and do "
         "not count in the family.")),
        NOTE_RANK,
        *ctx.refused_in(list(dict.fromkeys(summary["experiment"]))),
    ]
    title = f"Criteria against ThiNet, paired by seed, {setting_text(summary, ctx.config)}"
    return Table(name="criteria_vs_thinet", title=title, data=summary, display=display, notes=notes)
