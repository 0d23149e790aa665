"""Each grouping's paired difference to gcos, with t intervals as error bars: one row of panels per
source chain and g, one panel per outcome (just after grouping, after the fine-tune)."""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from thinet.report._context import ReportContext
from thinet.report._grouped import OUTCOMES, paired_to_gcos
from thinet.report._style import new_figure, paired_axes, paired_point, set_title
from thinet.report.figures._registry import figure

CAPTION = """\
**gcos against ordinary group convolution, paired by seed** (config ``{{ snakemake.config["name"] }}``).
For each grouping (contiguous, random; a dense ThiNet chain of the same size where the config has one),
its Top-1 minus gcos's in percentage points, paired by seed; left: *just after grouping*, right: *after
the fine-tune*; bars: Student's *t* intervals at ``statistics.level`` (none with a single pair, marked
"n=1"); dotted: the equivalence margin ±δ. Below the dashed zero line: less accurate than gcos, as the
journal's abstract claims ordinary group convolution is. gcos is reconstructed here (thinet/grouping).
"""


@figure("grouped_vs_gcos_ci", order=6, source="metrics", wanted=lambda facts: facts.grouped,
        section=("Figures", "gcos against ordinary group convolution"), caption=CAPTION)
def grouped_vs_gcos_figure(metrics: pd.DataFrame, ctx: ReportContext) -> Figure:
    """Draw the paired differences; raises ValueError when no grouped run has gcos and another grouping."""
    paired = paired_to_gcos(metrics, ctx.statistics)
    paired = paired[paired["n_pairs"] > 0]
    if paired.empty:
        raise ValueError("gcos figure: metrics.csv has no seed on which gcos and another grouping both ran")
    rows = list(dict.fromkeys(zip(paired["experiment"], paired["strategy"], paired["keep_ratio"])))
    fig, axes = new_figure(len(rows), len(OUTCOMES))
    for i, (experiment, strategy, rate) in enumerate(rows):
        panel_rows = paired[paired["experiment"].eq(experiment) & paired["strategy"].eq(strategy)
                            & paired["keep_ratio"].eq(rate)]
        methods = sorted(set(panel_rows["criterion"]), key=lambda c: (c.endswith("(dense)"), c))
        for ax, (outcome, outcome_text) in zip(axes[i], OUTCOMES.items()):
            for point in panel_rows[panel_rows["outcome"].eq(outcome)].itertuples(index=False):
                x = methods.index(point.criterion)
                paired_point(ax, x, point, "o", f"C{x}")
            paired_axes(ax, ctx.statistics.margin, "top-1 − gcos (pp)",
                        f"{experiment} ({strategy}, r = {rate:g}): {outcome_text}")
            ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
            ax.set_xlim(-0.6, len(methods) - 0.4)
    set_title(fig, f"Each grouping's Top-1 minus gcos's, paired by seed (config {ctx.config}; bars: "
                   f"{round(100 * ctx.statistics.level)} % t intervals over the pairs)")
    return fig
