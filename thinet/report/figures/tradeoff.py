"""Accuracy against FLOPs and against parameters: the trade-off of every criterion and rate.

One row of panels per experiment: top-1 (mean ± std over seeds) of the final models
against their FLOPs (left) and parameter count (right); one line per criterion
through its rates; the unpruned model as a black star.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from thinet.report._rows import SUMMARY_PHASES
from thinet.report._stats import mean_std_over_seeds
from thinet.report._context import ReportContext
from thinet.report._style import UNPRUNED_COLOUR, colour_of, legend_order, new_figure, series_label, set_title, zorder_of
from thinet.report._units import count_unit
from thinet.report.figures._registry import figure

CAPTION = """\
**Accuracy against FLOPs and parameters** (config ``{{ snakemake.config["name"] }}``). Final Top-1
(%) of every pruned model after its final fine-tune, against its FLOPs (left) and parameter count
(right), one line per criterion through its rates (error bars: ± one standard deviation over seeds);
the black star is the unpruned model. Curves further up and to the left are better trade-offs; in the
paper ThiNet's curve lies above the other criteria.
"""

_AXES = (("flops", "FLOPs", "{}FLOPs"), ("params", "params", "{} parameters"))


def tradeoff_points(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, series, rate): top-1 mean/std over seeds, params and FLOPs (base and final rows)."""
    rows = metrics[metrics["phase"].isin(SUMMARY_PHASES)].copy()
    rows["series"] = [series_label(v, c, r) if p != "base" else "unpruned"
                      for v, c, r, p in zip(rows["variant"], rows["criterion"], rows["keep_ratio"], rows["phase"])]
    keys = ["experiment", "series", "variant", "phase", "keep_ratio"]
    return mean_std_over_seeds(rows, keys, ["top1", "params", "flops"])


@figure("tradeoff", order=2, source="metrics", wanted=lambda facts: facts.pruned_models,
        section=("Figures", "Accuracy vs FLOPs and parameters"), caption=CAPTION)
def tradeoff(metrics: pd.DataFrame, ctx: ReportContext) -> Figure:
    """Draw the trade-off curves; raises ValueError when metrics.csv has no final rows."""
    points = tradeoff_points(metrics)
    if not points["phase"].eq("final").any():
        raise ValueError("trade-off figure: metrics.csv has no 'final' rows")
    experiments = list(dict.fromkeys(points.loc[points["phase"].eq("final"), "experiment"]))
    fig, axes = new_figure(len(experiments), 2)
    seen: dict[str, str] = {}
    for i, experiment in enumerate(experiments):
        exp_points = points[points["experiment"].eq(experiment)]
        for j, (value, name, axis_label) in enumerate(_AXES):
            ax = axes[i][j]
            unit, divisor = count_unit(exp_points[f"{value}_mean"], value)
            for series, line in exp_points[exp_points["phase"].eq("final")].groupby("series", sort=False):
                line = line.sort_values(f"{value}_mean")
                colour = colour_of(series)
                seen.setdefault(series, colour)
                ax.errorbar(line[f"{value}_mean"] / divisor, line["top1_mean"], yerr=line["top1_std"].fillna(0),
                            color=colour, marker="o", ms=4, lw=1.4, capsize=3, zorder=zorder_of(series))
            base = exp_points[exp_points["phase"].eq("base")]
            if len(base):
                ax.plot(base[f"{value}_mean"] / divisor, base["top1_mean"], "*", color=UNPRUNED_COLOUR, ms=12)
            ax.set_xlabel(axis_label.format(unit))
            ax.set_ylabel("top-1 accuracy (%)")
            ax.set_title(f"{experiment}: top-1 vs {name}", fontsize=10)
            ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=seen[s], marker="o", lw=1.4, label=s) for s in legend_order(seen)]
    handles.append(Line2D([], [], color=UNPRUNED_COLOUR, marker="*", ms=10, ls="", label="unpruned model"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=8)
    set_title(fig, f"Accuracy against FLOPs and parameters after the final fine-tune (config {ctx.config}; ±1 std over seeds)")
    return fig
