"""Realised speed-up against FLOPs reduction: how much of a FLOPs cut turns into wall-clock time.

For the paper's eight architectures (from `arch_table.csv` when it was timed: every row measured
interleaved in one run) and for every pruned model of the run (from `metrics.csv`: its `final`
rows against its experiment's `base` row, mean over seeds), the forward (left) and backward (right)
speed-up against the FLOPs ratio; the paper's M40 points drawn in, and the diagonal where time
would fall exactly with FLOPs.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from thinet.report._context import ReportContext
from thinet.report._paper_values import PAPER_TABLE1, PAPER_TABLE3
from thinet.report._style import new_figure, set_title
from thinet.report.figures._registry import figure

CAPTION = """\
**Realised speed-up against FLOPs reduction** (config ``{{ snakemake.config["name"] }}``). Forward (left)
and backward (right) speed-up of each pruned model over its original, against how many times fewer
FLOPs it has. Filled circles: the paper's eight architectures rebuilt here and timed on this machine
(``arch_table.csv``, all rows interleaved in one run; setting in the architecture table's note). Filled
squares: the pruned models of this run (``metrics.csv``: final against base row, timed by separate jobs at
``data.timing_batch_size``). Hollow grey: the paper's M40 GPU timings (batch 32). Points below the dashed
diagonal lose part of the FLOPs reduction to layers FLOPs do not count (BatchNorm, ReLU, pooling, memory).
"""

_MAX_RUN_LABELS = 6
_PAPER = ((PAPER_TABLE1, "Original", ("ThiNet-Conv", "ThiNet-GAP", "ThiNet-Tiny")),
          (PAPER_TABLE3, "Original", ("ThiNet-70", "ThiNet-50", "ThiNet-30")))


def paper_points() -> pd.DataFrame:
    """The paper's six pruned architectures: FLOPs ratio and forward/backward speed-ups (Tables 1, 3)."""
    rows = []
    for table, original, names in _PAPER:
        base = table[original]
        for name in names:
            row = table[name]
            rows.append({"label": name, "flops_ratio": base["flops_B"] / row["flops_B"],
                         "forward_speedup": base["forward_ms"] / row["forward_ms"],
                         "backward_speedup": base["backward_ms"] / row["backward_ms"]})
    return pd.DataFrame(rows)


def run_points(metrics: pd.DataFrame) -> pd.DataFrame:
    """Each pruned model of the run (variant of an experiment, mean over seeds) against its base row."""
    timed = metrics[metrics["phase"].isin(["base", "final"]) & metrics["forward_ms"].notna()]
    rows = []
    for experiment, group in timed.groupby("experiment", sort=False):
        base = group[group["phase"].eq("base")]
        if base.empty:
            continue
        b = base[["flops", "forward_ms", "backward_ms"]].astype(float).mean()
        for variant, final in group[group["phase"].eq("final")].groupby("variant", sort=False):
            f = final[["flops", "forward_ms", "backward_ms"]].astype(float).mean()
            rows.append({"label": f"{experiment}: {variant}", "flops_ratio": b["flops"] / f["flops"],
                         "forward_speedup": b["forward_ms"] / f["forward_ms"],
                         "backward_speedup": b["backward_ms"] / f["backward_ms"]})
    return pd.DataFrame(rows, columns=["label", "flops_ratio", "forward_speedup", "backward_speedup"])


def arch_points(arch: pd.DataFrame) -> pd.DataFrame:
    """The timed pruned rows of `arch_table.csv` (the originals, at 1×/1×, are left out)."""
    if "forward_speedup" not in arch.columns:
        return pd.DataFrame(columns=["label", "flops_ratio", "forward_speedup", "backward_speedup"])
    timed = arch[arch["forward_speedup"].notna() & (arch["flops_ratio"] > 1.0001)]
    return timed.rename(columns={"model": "label"})[["label", "flops_ratio", "forward_speedup", "backward_speedup"]]


@figure("speedup_vs_flops", order=4, source=("arch", "metrics"),
        wanted=lambda facts: facts.arch_timing or facts.pruned_models,
        section=("Figures", "Realised speed-up vs FLOPs reduction"), caption=CAPTION)
def speedup_vs_flops(frames: dict[str, pd.DataFrame], ctx: ReportContext) -> Figure:
    """Draw the speed-ups; ValueError when neither file has a timed pruned model."""
    ours, run = arch_points(frames["arch"]), run_points(frames["metrics"])
    if ours.empty and run.empty:
        raise ValueError("speed-up figure: arch_table.csv has no timing columns and metrics.csv no timed "
                         "pruned model (final rows with forward_ms beside a base row)")
    paper = paper_points()
    fig, axes = new_figure(1, 2)
    for ax, pass_ in zip(axes[0], ("forward", "backward")):
        column = f"{pass_}_speedup"
        top = pd.concat([paper["flops_ratio"], ours["flops_ratio"], run["flops_ratio"]]).astype(float).max()
        ax.plot([1, top], [1, top], ls="--", color="grey", lw=1, label="speed-up = FLOPs ratio")
        ax.scatter(paper["flops_ratio"], paper[column], facecolors="none", edgecolors="grey", s=50,
                   label="paper (M40 GPU, batch 32)")
        if not ours.empty:
            ax.scatter(ours["flops_ratio"], ours[column], color="#1f77b4", s=40, label="paper's architectures, here")
        if not run.empty:
            ax.scatter(run["flops_ratio"], run[column], color="#d62728", marker="s", s=36, label="this run's models")
        # A run's many chains would bury the labels; the legend says what the squares are.
        for points in (paper, ours) + ((run,) if len(run) <= _MAX_RUN_LABELS else ()):
            for _, p in points.iterrows():
                ax.annotate(p["label"], (p["flops_ratio"], p[column]), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("FLOPs reduction (×)")
        ax.set_ylabel(f"{pass_} speed-up (×)")
        ax.set_title(f"{pass_} pass", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8)
    set_title(fig, f"Realised speed-up against FLOPs reduction (config {ctx.config})")
    return fig
