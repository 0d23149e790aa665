"""Every criterion's paired difference to ThiNet, with 95 % t intervals as error bars.

One row of panels per experiment (and strategy), one panel per outcome (just after pruning,
after the final fine-tune): criteria along the x axis, one marker per rate, a zero line. A point
with one pair has no interval: it is drawn without a bar and labelled "n=1".
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from thinet.report._context import ReportContext
from thinet.report._paired import OUTCOMES, paired_to_thinet
from thinet.report._style import legend_order, new_figure, paired_axes, paired_point, set_title
from thinet.report.figures._registry import figure

CAPTION = """\
**Criteria against ThiNet, paired by seed** (config ``{{ snakemake.config["name"] }}``). For each
criterion, its Top-1 minus ThiNet's in percentage points, paired by seed, averaged over the pairs;
left: *just after pruning* (per chain, the mean over its pruned layers of the Top-1 before that
layer's fine-tuning), right: *after the final fine-tune*. One marker per kept fraction *r*; bars are
Student's *t* confidence intervals over the pairs at the level of ``statistics.level`` (none with a
single pair, marked "n=1"), unadjusted for multiplicity (the table gives the Holm-adjusted words). A bar
that crosses the dashed zero line shows no difference from ThiNet; below it, worse than ThiNet; the
dotted lines mark the equivalence margin ±δ. In the paper every other criterion is below ThiNet just
after pruning.
"""

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@figure("criteria_vs_thinet_ci", order=4, source="metrics", wanted=lambda facts: facts.criteria_compared,
        section=("Figures", "Criteria against ThiNet (paired)"), caption=CAPTION)
def criteria_vs_thinet_figure(metrics: pd.DataFrame, ctx: ReportContext) -> Figure:
    """Draw the paired differences; raises ValueError when no group has ThiNet and another criterion."""
    paired = paired_to_thinet(metrics, ctx.transfer_experiments, ctx.statistics)
    paired = paired[paired["n_pairs"] > 0]
    if paired.empty:
        raise ValueError("criteria-vs-ThiNet figure: metrics.csv has no seed on which ThiNet and another criterion "
                         "were both run at the same rate (same experiment and strategy)")
    rows = list(dict.fromkeys(zip(paired["experiment"], paired["strategy"])))
    rates = sorted(set(paired["keep_ratio"]), reverse=True)
    marker_of = {r: _MARKERS[i % len(_MARKERS)] for i, r in enumerate(rates)}
    width = 0.6 / max(len(rates), 1)
    fig, axes = new_figure(len(rows), len(OUTCOMES))
    for i, (experiment, strategy) in enumerate(rows):
        panel_rows = paired[paired["experiment"].eq(experiment) & paired["strategy"].eq(strategy)]
        criteria = legend_order(panel_rows["criterion"])
        for ax, (outcome, outcome_text) in zip(axes[i], OUTCOMES.items()):
            for j, rate in enumerate(rates):
                points = panel_rows[panel_rows["outcome"].eq(outcome) & panel_rows["keep_ratio"].eq(rate)]
                for point in points.itertuples(index=False):
                    x = criteria.index(point.criterion) + (j - (len(rates) - 1) / 2) * width
                    paired_point(ax, x, point, marker_of[rate], f"C{j}")
            paired_axes(ax, ctx.statistics.margin, "top-1 − ThiNet (pp)", f"{experiment} ({strategy}): {outcome_text}")
            ax.set_xticks(range(len(criteria)), criteria, rotation=30, ha="right", fontsize=8)
            ax.set_xlim(-0.6, len(criteria) - 0.4)
    handles = [Line2D([], [], color=f"C{j}", marker=marker_of[r], ls="", label=f"r = {r:g}") for j, r in enumerate(rates)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8)
    set_title(fig, f"Each criterion's Top-1 minus ThiNet's, paired by seed (config {ctx.config}; bars: "
                   f"{round(100 * ctx.statistics.level)} % t intervals over the pairs)")
    return fig
