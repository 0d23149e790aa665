"""The report's tables, one module each, computed from the result files (never typed in).

A table is one module here, named after its output files: a builder `(frame, ctx) -> Table`
decorated with `@table(...)` (from `_registry`), which declares its source file, when a config
wants it, its report section and its caption. Every module not starting with '_' is imported.

>>> available_tables()
['arch_table', 'criteria_vs_thinet', 'grouped_vs_gcos', 'paper_claims', 'pruned_vs_scratch', 'table1_vgg', 'table2_criteria', 'table3_resnet', 'table4_transfer']
"""
from __future__ import annotations

from thinet.report._declare import import_outputs
from thinet.report.tables._registry import available_tables, build_table, table, write_tables

import_outputs(__name__, __path__)

__all__ = ["available_tables", "build_table", "table", "write_tables"]
