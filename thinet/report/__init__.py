"""The paper's tables and figures, computed from the workflow's result files.

Inputs: `results/<config>/metrics.csv` (the tidy table of ARCHITECTURE.md),
`compare_layer.csv` (§4.1) and `arch_table.csv` (`thinet arch-table`). Every number
shown is computed from them; the paper's own values (`_paper_values.py`) appear only
in columns labelled "paper".

Each table is one module of `tables/`, each figure one module of `figures/`: its
`@table`/`@figure` declaration says which file it is computed from, when a config wants
it, its report section and its caption, and `report_plan`, the Snakemake report and the
workflow's rules are derived from those declarations.

>>> from thinet.report import ReportContext, report_plan, write_tables   # doctest: +SKIP
>>> plan = report_plan(config)                                           # doctest: +SKIP
>>> write_tables(plan["tables"], {"metrics": "results/default/metrics.csv",
...              "arch": "results/default/arch_table.csv"}, "results/default/tables",
...              ReportContext("default"))                               # doctest: +SKIP
"""
from __future__ import annotations

from thinet.report._context import ReportContext
from thinet.report._verdict import StatsSettings
from thinet.report._declare import SOURCE_FILES
from thinet.report._facts import budget_text, finetune_budgets, transfer_experiments
from thinet.report._paper_values import PAPER_COMPARE_LAYER, PAPER_COMPARE_LAYER_SETTING, is_paper_compare_setting
from thinet.report._plan import report_inputs, report_plan, report_section, write_captions
from thinet.report._schema import (
    ARCH_TABLE_COLUMNS, COMPARE_LAYER_COLUMNS, METRICS_COLUMNS, read_arch_table, read_compare_layer, read_metrics,
)
from thinet.report._style import FIGURE_FORMATS
from thinet.report._table import TABLE_FORMATS, Table
from thinet.report.figures import available_figures, draw_figure, write_figures
from thinet.report.tables import available_tables, build_table, write_tables

__all__ = [
    "ARCH_TABLE_COLUMNS", "COMPARE_LAYER_COLUMNS", "FIGURE_FORMATS", "METRICS_COLUMNS", "PAPER_COMPARE_LAYER",
    "PAPER_COMPARE_LAYER_SETTING", "SOURCE_FILES", "StatsSettings", "TABLE_FORMATS", "ReportContext", "Table",
    "available_figures", "available_tables", "budget_text", "build_table", "draw_figure", "finetune_budgets",
    "is_paper_compare_setting", "read_arch_table", "read_compare_layer", "read_metrics",
    "report_inputs", "report_plan", "report_section", "transfer_experiments", "write_captions", "write_figures",
    "write_tables",
]
