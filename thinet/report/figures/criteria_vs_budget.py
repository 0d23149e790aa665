"""Each criterion's paired difference to ThiNet against the fine-tuning budget, with intervals.

Does the gap to ThiNet close as fine-tuning grows (as Liu et al., ICLR 2019, would predict: the
architecture, not the choice of channels, decides where a pruned network ends) or stay (the paper's
claim)? One panel per (strategy, rate) found with two or more budgets and per outcome; the budgets
along the x axis in config order (each is one experiment, labelled by its fine-tuning schedule), one
line per criterion with its intervals.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from thinet.report._context import ReportContext
from thinet.report._paired import OUTCOMES, paired_to_thinet
from thinet.report._style import colour_of, legend_order, new_figure, paired_axes, set_title
from thinet.report.figures._registry import figure

CAPTION = """\
**The gap to ThiNet against the fine-tuning budget** (config ``{{ snakemake.config["name"] }}``).
Each criterion's Top-1 minus ThiNet's in percentage points, paired by seed, for every fine-tuning
budget of the config (one experiment each, labelled by its per-layer and final fine-tune), left *just
after pruning*, right *after the final fine-tune*. Bars: unadjusted Student's *t* intervals at the
level of ``statistics.level``; dotted lines: the equivalence margin ±δ. If the choice of channels
mattered only until fine-tuning repairs it (Liu et al., 2019), the right panel's differences shrink
toward zero as the budget grows; the paper claims ThiNet stays ahead.
"""


def _budget_groups(paired: pd.DataFrame) -> list[tuple[str, str, float]]:
    """(dataset/model, strategy, rate) groups found in two or more experiments (budgets)."""
    keys = ["dataset", "model", "strategy", "keep_ratio"]
    counts = paired.groupby(keys, sort=False)["experiment"].nunique()
    return [k for k, n in counts.items() if n > 1]


@figure("criteria_vs_budget", order=5, source="metrics", wanted=lambda facts: facts.budgets_compared,
        section=("Figures", "Criteria against ThiNet by fine-tuning budget"), caption=CAPTION)
def criteria_vs_budget(metrics: pd.DataFrame, ctx: ReportContext) -> Figure:
    """Draw Δ vs budget; raises ValueError when no strategy and rate were compared at two budgets."""
    paired = paired_to_thinet(metrics, ctx.transfer_experiments, ctx.statistics)
    paired = paired[paired["n_pairs"] > 0]
    groups = _budget_groups(paired)
    if not groups:
        raise ValueError("criteria-vs-budget figure: metrics.csv has no strategy and rate at which ThiNet and "
                         "another criterion were compared in two experiments (fine-tuning budgets)")
    order = {e: i for i, e in enumerate([*ctx.budgets, *dict.fromkeys(paired["experiment"])])}
    fig, axes = new_figure(len(groups), len(OUTCOMES), panel_size=(5.2, 3.6))
    for row, (dataset, model, strategy, rate) in zip(axes, groups):
        rows = paired[paired["dataset"].eq(dataset) & paired["model"].eq(model) & paired["strategy"].eq(strategy)
                      & paired["keep_ratio"].eq(rate)]
        experiments = sorted(dict.fromkeys(rows["experiment"]), key=order.__getitem__)
        criteria = legend_order(rows["criterion"])
        width = 0.5 / max(len(criteria), 1)
        for ax, (outcome, outcome_text) in zip(row, OUTCOMES.items()):
            for j, criterion in enumerate(criteria):
                line = rows[rows["outcome"].eq(outcome) & rows["criterion"].eq(criterion)]
                line = line.assign(x=line["experiment"].map(experiments.index)).sort_values("x")
                xs = line["x"] + (j - (len(criteria) - 1) / 2) * width
                has = line["n_pairs"] > 1
                yerr = [(line["diff_mean"] - line["ci_low"]).where(has, 0), (line["ci_high"] - line["diff_mean"]).where(has, 0)]
                ax.errorbar(xs, line["diff_mean"], yerr=yerr, color=colour_of(criterion), marker="o", ms=4,
                            capsize=2, lw=1, label=criterion)
            paired_axes(ax, ctx.statistics.margin, "top-1 − ThiNet (pp)", f"{strategy}, r = {rate:g}: {outcome_text}")
            labels = [f"{e}\n{ctx.budgets.get(e, '')}" for e in experiments]
            ax.set_xticks(range(len(experiments)), labels, fontsize=7)
            ax.set_xlim(-0.5, len(experiments) - 0.5)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 7), fontsize=8)
    set_title(fig, f"Each criterion's Top-1 minus ThiNet's by fine-tuning budget (config {ctx.config}; bars: "
                   f"{round(100 * ctx.statistics.level)} % t intervals over the paired seeds, unadjusted)")
    return fig
