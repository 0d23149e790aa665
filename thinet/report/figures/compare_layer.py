"""§4.1 single-layer comparison as a bar chart (compare_layer.csv).

One panel per (layer, rate): top-1 of the model with only that layer pruned, before
any fine-tuning, per criterion (mean over seeds, error bar min–max), the unpruned
model as a dashed line, and the paper's §4.1 values as diamonds in the paper's setting.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from thinet.report import _paper_values as pv
from thinet.report._context import ReportContext
from thinet.report._style import UNPRUNED_COLOUR, colour_of, new_figure, set_title
from thinet.report.figures._registry import figure

CAPTION = """\
**Single-layer comparison of §4.1** (config ``{{ snakemake.config["name"] }}``). One layer of the
unpruned network is pruned alone by each criterion, keeping the configured fraction of its filters,
and the model is evaluated without any fine-tuning: bars are the mean Top-1 (%) over seeds,
whiskers the min–max, the dashed line the unpruned model. In the paper (conv1_1 of VGG-16-GAP on
CUB-200, 60 % of the filters removed) weight sum keeps 40.99 %, random 51.26 %, ThiNet without least
squares 68.24 % and ThiNet 70.75 %; in that setting these values are drawn as white diamonds.
"""

UNPRUNED = "none"


def _in_paper_setting(panel: pd.DataFrame, layer: str, rate: float) -> bool:
    settings = set(zip(panel["dataset"], panel["model"]))
    return len(settings) == 1 and pv.is_paper_compare_setting(*next(iter(settings)), layer, rate)


@figure("compare_layer", order=3, source="compare_layer", wanted=lambda facts: facts.compare_layer,
        section=("Figures", "Single-layer comparison (4.1)"), caption=CAPTION)
def compare_layer_figure(compare: pd.DataFrame, ctx: ReportContext) -> Figure:
    """Draw the bar chart; raises ValueError when there are no pruned rows."""
    pruned = compare[compare["criterion"].ne(UNPRUNED)]
    if pruned.empty:
        raise ValueError("compare-layer figure: compare_layer.csv has no rows with a criterion other than 'none'")
    panels = list(dict.fromkeys(zip(pruned["layer"], pruned["keep_ratio"])))
    fig, axes = new_figure(1, len(panels), panel_size=(5.2, 3.8))
    paper_shown = False
    for ax, (layer, rate) in zip(axes[0], panels):
        rows = compare[compare["layer"].eq(layer) & (compare["keep_ratio"].eq(rate) | compare["criterion"].eq(UNPRUNED))]
        stats = (rows[rows["criterion"].ne(UNPRUNED)].drop_duplicates(["criterion", "seed"])
                 .groupby("criterion", sort=False)["top1"].agg(["mean", "min", "max"]))
        xs = range(len(stats))
        colours = [colour_of(c) for c in stats.index]
        yerr = [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]
        ax.bar(xs, stats["mean"], color=colours, yerr=yerr, capsize=4)
        for x, value in zip(xs, stats["mean"]):
            ax.annotate(f"{value:.1f}", (x, value), ha="center", va="bottom", fontsize=7,
                        xytext=(0, 2), textcoords="offset points")
        unpruned = rows.loc[rows["criterion"].eq(UNPRUNED), "top1"]
        if len(unpruned):
            ax.axhline(float(unpruned.mean()), color=UNPRUNED_COLOUR, ls="--", lw=1)
        if _in_paper_setting(rows, layer, float(rate)):
            paper = [pv.PAPER_COMPARE_LAYER.get(c) for c in stats.index]
            ax.plot([x for x, p in zip(xs, paper) if p is not None], [p for p in paper if p is not None],
                    "D", color="white", mec="black", ms=6)
            paper_shown = True
        ax.set_xticks(list(xs), list(stats.index), rotation=30, ha="right")
        ax.set_ylabel("top-1 accuracy before fine-tuning (%)")
        ax.set_title(f"layer {layer} pruned alone, r = {float(rate):g}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles = [Line2D([], [], color=UNPRUNED_COLOUR, ls="--", label="unpruned model")]
    if paper_shown:
        handles.append(Line2D([], [], marker="D", color="white", mec="black", ls="", label="paper §4.1 (CUB-200)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8)
    settings = ", ".join(f"{d} / {m}" for d, m in dict.fromkeys(zip(compare["dataset"], compare["model"])))
    set_title(fig, f"One layer pruned by each criterion, no fine-tuning (config {ctx.config}: {settings}; bars: mean, whiskers: min–max over seeds)")
    return fig
