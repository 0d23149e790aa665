"""The report's figures, one module each, drawn from the result files and saved as PNG and PDF.

A figure is one module here, named after its output files: a function `(frame, ctx) -> Figure`
decorated with `@figure(...)` (from `_registry`), which declares its source file, when a config
wants it, its report section and its caption. Every module not starting with '_' is imported.
Figures are matplotlib `Figure` objects (no pyplot), so no backend needs choosing.

>>> available_figures()
['compare_layer', 'criteria_vs_budget', 'criteria_vs_thinet_ci', 'fig4_layerwise', 'grouped_vs_gcos_ci', 'speedup_vs_flops', 'tradeoff']
"""
from __future__ import annotations

from thinet.report._declare import import_outputs
from thinet.report.figures._registry import available_figures, draw_figure, figure, write_figures

import_outputs(__name__, __path__)

__all__ = ["available_figures", "draw_figure", "figure", "write_figures"]
