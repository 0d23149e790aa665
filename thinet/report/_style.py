"""Plot styling shared by every figure: one colour per criterion (the same in every figure),
series labels, figure creation (no pyplot state) and atomic PNG+PDF output.

>>> series_label("weight_sum r=0.5", "weight_sum", 0.5), series_label("ThiNet-70", "thinet", 0.7)
('weight_sum', 'thinet')
>>> series_label("ThiNet-GAP", "thinet", 0.5), series_label("Train from scratch", "", 0.5)
('ThiNet-GAP', 'Train from scratch')
>>> colour_of("thinet") == colour_of("thinet") != colour_of("random")
True
"""
from __future__ import annotations

import hashlib
import os
import re
import textwrap

from matplotlib.figure import Figure

from thinet.runtime import atomic_path
from thinet.report._rows import criterion_rank

FIGURE_FORMATS = ("png", "pdf")
# Fixed colours for the registered criteria, so a criterion looks the same in every figure and config.
CRITERION_COLOURS = {
    "thinet": "#1f77b4",
    "thinet_nols": "#17becf",
    "thinet_forward": "#ff7f0e",
    "weight_sum": "#d62728",
    "apoz": "#2ca02c",
    "taylor": "#9467bd",
    "random": "#7f7f7f",
}
UNPRUNED_COLOUR = "black"
_SPARE_COLOURS = ("#98df8a", "#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173")
LINESTYLE_OF_PHASE = {"pruned": "--", "finetuned": "-"}


def colour_of(label: str) -> str:
    """A criterion's fixed colour; other labels get a spare colour chosen by a stable hash of the name."""
    if label in CRITERION_COLOURS:
        return CRITERION_COLOURS[label]
    digest = int(hashlib.sha256(label.encode()).hexdigest(), 16)
    return _SPARE_COLOURS[digest % len(_SPARE_COLOURS)]


def zorder_of(label: str) -> float:
    """ThiNet drawn on top, then the baselines in CRITERION_ORDER, so coinciding lines hide the baselines."""
    return 3.0 + 0.1 * (10 - criterion_rank(label))


def series_label(variant: str, criterion: str, keep_ratio: float) -> str:
    """The line a row belongs to: its criterion for chains labelled by their rate ('thinet r=0.5', or
    'ThiNet-70' at r = 0.7), else the variant label ('ThiNet-GAP', 'Train from scratch')."""
    if not criterion:
        return variant
    if re.fullmatch(rf"{re.escape(criterion)} r=[0-9.]+", variant):
        return criterion
    percent = re.fullmatch(r".*-(\d+)", variant)
    if percent and int(percent.group(1)) == round(100 * float(keep_ratio)):
        return criterion
    return variant


def legend_order(labels) -> list[str]:
    """Registered criteria first, in a fixed order, then other labels alphabetically.

    >>> legend_order(["random", "GAP", "thinet"])
    ['thinet', 'random', 'GAP']
    """
    return sorted(set(labels), key=lambda s: (criterion_rank(s), s))


def new_figure(n_rows: int, n_cols: int, panel_size: tuple[float, float] = (4.4, 3.4)) -> tuple[Figure, list[list]]:
    """A Figure with an n_rows × n_cols grid of axes (always a 2-D list)."""
    fig = Figure(figsize=(panel_size[0] * n_cols, panel_size[1] * n_rows + 0.9), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, [list(row) for row in axes]


def set_title(fig: Figure, text: str, fontsize: float = 11) -> None:
    """A figure title wrapped to the figure's width, so it stays readable when printed."""
    chars = max(30, int(fig.get_figwidth() * 72 / (0.6 * fontsize)))
    fig.suptitle(textwrap.fill(text, chars), fontsize=fontsize)


def paired_point(ax, x: float, point, marker: str, color: str) -> None:
    """One paired difference (`diff_mean`, `ci_low`, `ci_high`, `n_pairs`) at `x`: its interval as a bar,
    or, with a single pair (no interval), the point alone labelled "n=1"."""
    has_interval = point.n_pairs > 1
    yerr = [[point.diff_mean - point.ci_low], [point.ci_high - point.diff_mean]] if has_interval else None
    ax.errorbar([x], [point.diff_mean], yerr=yerr, marker=marker, color=color, ms=6, capsize=3, ls="")
    if not has_interval:
        ax.annotate("n=1", (x, point.diff_mean), xytext=(4, 4), textcoords="offset points", fontsize=7, color=color)


def paired_axes(ax, margin: float, ylabel: str, title: str) -> None:
    """The frame of a paired-difference panel: the dashed zero line, the dotted equivalence margin ±`margin`,
    the y label, the title and a light y grid."""
    ax.axhline(0.0, color="black", ls="--", lw=1)
    for bound in (-margin, margin):
        ax.axhline(bound, color="grey", ls=":", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def save_figure(fig: Figure, stem: str | os.PathLike) -> dict[str, str]:
    """Write `<stem>.png` (150 dpi) and `<stem>.pdf` atomically; returns {format: path}."""
    paths = {fmt: f"{os.fspath(stem)}.{fmt}" for fmt in FIGURE_FORMATS}
    for fmt, path in paths.items():
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
    return paths
