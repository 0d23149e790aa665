"""The report's figures by name; each is drawn from the result files and saved as PNG and PDF.

>>> available_figures()
['compare_layer', 'fig4_layerwise', 'tradeoff']
>>> figure_source("compare_layer")
'compare_layer'
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from thinet.report.context import ReportContext
from thinet.report.figures_compare import compare_layer_figure
from thinet.report.figures_layerwise import figure4
from thinet.report.figures_tradeoff import tradeoff
from thinet.report.schema import read_compare_layer, read_metrics
from thinet.report.style import save_figure


@dataclass(frozen=True)
class FigureSpec:
    draw: Callable[[pd.DataFrame, ReportContext], Figure]
    source: str  # "metrics" (metrics.csv) or "compare_layer" (compare_layer.csv)


_FIGURES: dict[str, FigureSpec] = {
    "fig4_layerwise": FigureSpec(figure4, "metrics"),
    "tradeoff": FigureSpec(tradeoff, "metrics"),
    "compare_layer": FigureSpec(compare_layer_figure, "compare_layer"),
}
_READERS = {"metrics": read_metrics, "compare_layer": read_compare_layer}


def available_figures() -> list[str]:
    return sorted(_FIGURES)


def figure_source(name: str) -> str:
    if name not in _FIGURES:
        raise ValueError(f"unknown figure {name!r}; available: {', '.join(available_figures())}")
    return _FIGURES[name].source


def draw_figure(name: str, inputs: Mapping[str, pd.DataFrame], ctx: ReportContext) -> Figure:
    """Draw figure `name` from `inputs` ({"metrics": frame, "compare_layer": frame})."""
    source = figure_source(name)
    if source not in inputs:
        raise ValueError(f"figure {name!r} needs the {source!r} input; given: {sorted(inputs)}")
    return _FIGURES[name].draw(inputs[source], ctx)


def write_figures(names: list[str], files: Mapping[str, str | os.PathLike], out_dir: str | os.PathLike,
                  ctx: ReportContext) -> dict[str, dict[str, str]]:
    """Read the input files, draw each figure and save `<out_dir>/<name>.{png,pdf}`; returns the paths.

    >>> write_figures(["tradeoff"], {}, "/tmp", ReportContext("x"))
    Traceback (most recent call last):
    ...
    ValueError: figure 'tradeoff' needs a 'metrics' file; given: []
    """
    for name in names:
        if figure_source(name) not in files:
            raise ValueError(f"figure {name!r} needs a {figure_source(name)!r} file; given: {sorted(files)}")
    needed = {figure_source(n) for n in names}
    inputs = {source: _READERS[source](path) for source, path in files.items() if source in needed}
    return {name: save_figure(draw_figure(name, inputs, ctx), os.path.join(out_dir, name)) for name in names}
