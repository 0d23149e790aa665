"""The report's tables by name: each is computed from the result files, never typed in.

>>> available_tables()
['arch_table', 'table1_vgg', 'table2_criteria', 'table3_resnet', 'table4_transfer']
>>> table_source("arch_table"), table_source("table1_vgg")
('arch', 'metrics')
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from thinet.report.context import ReportContext
from thinet.report.schema import read_arch_table, read_metrics
from thinet.report.table import Table
from thinet.report.tables_arch import arch_table
from thinet.report.tables_criteria import table2
from thinet.report.tables_family import table1, table3
from thinet.report.tables_transfer import table4


@dataclass(frozen=True)
class TableSpec:
    builder: Callable[[pd.DataFrame, ReportContext], Table]
    source: str  # which input file: "metrics" (metrics.csv) or "arch" (arch_table.csv)
    needs: str  # the rows the table is made of, for the error when there are none


_TABLES: dict[str, TableSpec] = {
    "table1_vgg": TableSpec(table1, "metrics", "'base'/'final' rows of a VGG model outside transfer experiments"),
    "table2_criteria": TableSpec(table2, "metrics", "'final' rows with a criterion outside transfer experiments"),
    "table3_resnet": TableSpec(table3, "metrics", "'base'/'final' rows of a ResNet model outside transfer experiments"),
    "table4_transfer": TableSpec(table4, "metrics", "'base'/'final' rows of the transfer experiments"),
    "arch_table": TableSpec(arch_table, "arch", "one row per model"),
}
_READERS = {"metrics": read_metrics, "arch": read_arch_table}


def available_tables() -> list[str]:
    return sorted(_TABLES)


def table_source(name: str) -> str:
    return _spec(name).source


def _spec(name: str) -> TableSpec:
    if name not in _TABLES:
        raise ValueError(f"unknown table {name!r}; available: {', '.join(available_tables())}")
    return _TABLES[name]


def build_table(name: str, inputs: Mapping[str, pd.DataFrame], ctx: ReportContext) -> Table:
    """Compute table `name` from `inputs` ({"metrics": metrics frame, "arch": arch-table frame}).

    >>> import pandas as pd
    >>> from thinet.report.context import ReportContext
    >>> arch = pd.DataFrame({"model": ["vgg16"], "params_M": [138.4], "flops_B": [30.9],
    ...                      "paper_params_M": [138.34], "paper_flops_B": [30.94]})
    >>> build_table("arch_table", {"arch": arch}, ReportContext("default")).display.columns[0]
    'Model'
    """
    spec = _spec(name)
    if spec.source not in inputs:
        raise ValueError(f"table {name!r} needs the {spec.source!r} input; given: {sorted(inputs)}")
    return spec.builder(inputs[spec.source], ctx)


def write_tables(names: list[str], files: Mapping[str, str | os.PathLike], out_dir: str | os.PathLike,
                 ctx: ReportContext) -> dict[str, dict[str, str]]:
    """Read the input files (`files`: {"metrics": path, "arch": path}), write each table as
    `<out_dir>/<name>.{csv,md,html}`; returns {table: {format: path}}.

    Every name and needed file is checked before anything is computed; a table without rows is an
    error naming the rows it needs (the config promised them).
    """
    for name in names:
        source = table_source(name)
        if source not in files:
            raise ValueError(f"table {name!r} needs a {source!r} file; given: {sorted(files)}")
    inputs = {source: _READERS[source](path) for source, path in files.items()
              if source in {table_source(n) for n in names}}
    tables = {name: build_table(name, inputs, ctx) for name in names}
    for name, table in tables.items():
        if table.display.empty:
            raise ValueError(f"table {name!r}: {files[table_source(name)]} has no {_spec(name).needs}")
    return {name: table.write(os.path.join(out_dir, name)) for name, table in tables.items()}
