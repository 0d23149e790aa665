"""The paper's tables and figures, computed from the workflow's result files.

Inputs: `results/<config>/metrics.csv` (the tidy table of ARCHITECTURE.md),
`compare_layer.csv` (§4.1) and `arch_table.csv` (`thinet arch-table`). Every number
shown is computed from them; the paper's own values (`paper_values`) appear only in
columns labelled "paper".

>>> from thinet.report import ReportContext, report_plan, write_tables   # doctest: +SKIP
>>> plan = report_plan(config)                                           # doctest: +SKIP
>>> write_tables(plan["tables"], {"metrics": "results/default/metrics.csv",
...              "arch": "results/default/arch_table.csv"}, "results/default/tables",
...              ReportContext("default"))                               # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it (imported lazily: figures pull in matplotlib)
_API = {
    "ReportContext": "thinet.report.context",
    "report_plan": "thinet.report.outputs",
    "transfer_experiments": "thinet.report.outputs",
    "available_tables": "thinet.report.tables",
    "build_table": "thinet.report.tables",
    "write_tables": "thinet.report.tables",
    "available_figures": "thinet.report.figures",
    "draw_figure": "thinet.report.figures",
    "write_figures": "thinet.report.figures",
    "read_metrics": "thinet.report.schema",
    "read_compare_layer": "thinet.report.schema",
    "read_arch_table": "thinet.report.schema",
    "Table": "thinet.report.table",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'thinet.report' has no attribute {name!r}")
