"""The `@figure` declaration, and drawing and saving the declared figures (PNG and PDF) by name.

>>> available_figures()
['compare_layer', 'criteria_vs_budget', 'criteria_vs_thinet_ci', 'fig4_layerwise', 'grouped_vs_gcos_ci', 'speedup_vs_flops', 'tradeoff']
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import pandas as pd
from matplotlib.figure import Figure

from thinet.report._context import ReportContext
from thinet.report._declare import Make, declare, declared, make, read_inputs
from thinet.report._facts import ConfigFacts
from thinet.report._style import save_figure


def figure(name: str, *, order: int, source: str | tuple[str, ...], wanted: Callable[[ConfigFacts], bool], section: tuple[str, str],
           caption: str) -> Callable[[Make], Make]:
    """Declare the decorated `draw(frame, ctx) -> Figure` as figure `name` (see `_declare.Declaration`);
    `draw` raises ValueError when its frame has nothing to draw. With several sources, `draw` gets
    {source: frame}.

    >>> @figure("demo_figure", order=99, source="metrics", wanted=lambda facts: facts.chains,
    ...         section=("Figures", "Demo"), caption="A demo.")  # doctest: +SKIP
    ... def demo(metrics, ctx): ...
    """
    return declare("figure", name, order=order, source=source, wanted=wanted, section=section, caption=caption)


def available_figures() -> list[str]:
    """The declared figures' names, sorted."""
    return sorted(d.name for d in declared("figure"))


def draw_figure(name: str, inputs: Mapping[str, pd.DataFrame], ctx: ReportContext) -> Figure:
    """Draw figure `name` from `inputs` ({"metrics": frame, "compare_layer": frame}).

    >>> draw_figure("tradeoff", {}, ReportContext("x"))
    Traceback (most recent call last):
    ...
    ValueError: figure 'tradeoff' needs the 'metrics' input; given: []
    """
    return make("figure", name, inputs, ctx)


def write_figures(names: list[str], files: Mapping[str, str | os.PathLike], out_dir: str | os.PathLike,
                  ctx: ReportContext) -> dict[str, dict[str, str]]:
    """Read the input files, draw each figure and save `<out_dir>/<name>.{png,pdf}`; returns the paths.

    >>> write_figures(["tradeoff"], {}, "/tmp", ReportContext("x"))
    Traceback (most recent call last):
    ...
    ValueError: figure 'tradeoff' needs a 'metrics' file; given: []
    """
    inputs = read_inputs("figure", names, files)
    return {name: save_figure(draw_figure(name, inputs, ctx), os.path.join(out_dir, name)) for name in names}
