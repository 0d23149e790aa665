"""Figure 4: top-1 after pruning each successive layer, per criterion, before and after fine-tuning.

One row of panels per experiment, one panel per rate r. A line is the mean over
seeds, its band the min–max over seeds; dashed: just after pruning the layer,
solid: after that layer's fine-tuning. The dotted grey line is the unpruned model.
"""
from __future__ import annotations

from functools import lru_cache

import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from thinet.report._rows import base_rows, step_rows
from thinet.report._context import ReportContext
from thinet.report._style import LINESTYLE_OF_PHASE, UNPRUNED_COLOUR, colour_of, legend_order, new_figure, series_label, set_title, zorder_of
from thinet.report.figures._registry import figure


CAPTION = """\
**Figure 4 — accuracy while pruning layer by layer** (config ``{{ snakemake.config["name"] }}``).
For each experiment (row) and kept fraction *r* (panel): Top-1 accuracy on the per-step evaluation
subset after pruning each successive layer (x axis, module names), one colour per criterion (the same
colour in every figure). Dashed: just after pruning the layer, before fine-tuning; solid: after that
layer's fine-tuning. Line: mean over seeds; band: min–max over seeds. Dotted: the unpruned model (its
``base`` row, evaluated on the final evaluation split, which may be larger than the per-step subset). The
paper's Figure 4 (VGG-16-GAP on CUB-200) shows ThiNet consistently above weight sum, APoZ and
random, and least squares (``thinet`` vs ``thinet_nols``) helping most at small *r*.
"""


@lru_cache(maxsize=None)
def paper_layer_names(model_name: str) -> dict[str, str]:
    """Module name -> the paper's conv name (conv1_1 ...) for a VGG-style model; {} for any other.

    The model is built on the meta device: only its structure is read.

    >>> paper_layer_names("vgg16_small")["features.3"]
    'conv1_2'
    >>> paper_layer_names("resnet_small")
    {}
    """
    from thinet.models import create_model, vgg_conv_names

    try:
        with torch.device("meta"):
            model = create_model(model_name)
        if not isinstance(getattr(model, "features", None), torch.nn.Sequential):
            return {}  # conv1_1-style names only mean something for VGG-style models
        return {module: paper for paper, module in vgg_conv_names(model).items()}
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError, NotImplementedError):
        return {}  # an unknown or unbuildable model keeps its module names on the axis


def layerwise_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, rate, series, phase, step): mean, min and max top-1 over seeds, and the layer name."""
    rows = step_rows(metrics).copy()
    rows["series"] = [series_label(v, c, r) for v, c, r in zip(rows["variant"], rows["criterion"], rows["keep_ratio"])]
    rows["top1"] = pd.to_numeric(rows["top1"])
    rows["step"] = pd.to_numeric(rows["step"]).astype(int)
    # the paper's names (conv1_1 ...) on the axis where the model is VGG-style
    rows["layer"] = [paper_layer_names(str(m)).get(str(layer), layer) for m, layer in zip(rows["model"], rows["layer"])]
    keys = ["experiment", "keep_ratio", "series", "criterion", "phase", "step", "layer"]
    per_seed = rows.drop_duplicates([*keys, "seed"])
    return per_seed.groupby(keys, sort=False)["top1"].agg(["mean", "min", "max", "count"]).reset_index()


@figure("fig4_layerwise", order=1, source="metrics", wanted=lambda facts: facts.chains,
        section=("Figures", "Figure 4: layer by layer"), caption=CAPTION)
def figure4(metrics: pd.DataFrame, ctx: ReportContext) -> Figure:
    """Draw Figure 4 for every experiment with per-layer rows; raises ValueError when there are none."""
    curves = layerwise_curves(metrics)
    if curves.empty:
        raise ValueError("Figure 4: metrics.csv has no per-layer rows (phase 'pruned'/'finetuned' with a criterion)")
    experiments = list(dict.fromkeys(curves["experiment"]))
    rates = {e: sorted(set(curves.loc[curves["experiment"].eq(e), "keep_ratio"]), reverse=True) for e in experiments}
    n_cols = max(len(r) for r in rates.values())
    fig, axes = new_figure(len(experiments), n_cols)
    bases = base_rows(metrics)
    series_seen: dict[str, str] = {}
    for i, experiment in enumerate(experiments):
        unpruned = pd.to_numeric(bases.loc[bases["experiment"].eq(experiment), "top1"]).mean()
        for j in range(n_cols):
            ax = axes[i][j]
            if j >= len(rates[experiment]):
                ax.set_axis_off()
                continue
            rate = rates[experiment][j]
            panel = curves[curves["experiment"].eq(experiment) & curves["keep_ratio"].eq(rate)]
            for (series, phase), line in panel.groupby(["series", "phase"], sort=False):
                line = line.sort_values("step")
                colour = colour_of(series)
                series_seen.setdefault(series, colour)
                ax.plot(line["step"], line["mean"], LINESTYLE_OF_PHASE[phase], color=colour, marker="o", ms=3, lw=1.4,
                        zorder=zorder_of(series))
                if (line["count"] > 1).any():
                    ax.fill_between(line["step"], line["min"], line["max"], color=colour, alpha=0.15, lw=0)
            if pd.notna(unpruned):
                ax.axhline(unpruned, color=UNPRUNED_COLOUR, ls=":", lw=1)
            steps = panel.drop_duplicates("step").sort_values("step")
            ax.set_xticks(steps["step"].tolist(), steps["layer"].tolist(), rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{experiment}, r = {rate:g}", fontsize=10)
            ax.set_xlabel("last pruned layer")
            ax.set_ylabel("top-1 accuracy (%)")
            ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=series_seen[s], lw=2, label=s) for s in legend_order(series_seen)]
    handles += [
        Line2D([], [], color="grey", ls=LINESTYLE_OF_PHASE["pruned"], label="after pruning the layer"),
        Line2D([], [], color="grey", ls=LINESTYLE_OF_PHASE["finetuned"], label="after its fine-tuning"),
        Line2D([], [], color=UNPRUNED_COLOUR, ls=":", label="unpruned model"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=8)
    set_title(fig, f"Top-1 after pruning each layer, per criterion (config {ctx.config}; band: min–max over seeds)")
    return fig
