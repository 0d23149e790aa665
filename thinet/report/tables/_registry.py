"""The `@table` declaration, and building and writing the declared tables by name.

>>> available_tables()
['arch_table', 'criteria_vs_thinet', 'grouped_vs_gcos', 'paper_claims', 'pruned_vs_scratch', 'table1_vgg', 'table2_criteria', 'table3_resnet', 'table4_transfer']
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import pandas as pd

from thinet.report._context import ReportContext
from thinet.report._declare import Make, declaration, declare, declared, make, read_inputs
from thinet.report._facts import ConfigFacts
from thinet.report._table import Table


def table(name: str, *, order: int, source: str, needs: str, wanted: Callable[[ConfigFacts], bool],
          section: tuple[str, str], caption: str) -> Callable[[Make], Make]:
    """Declare the decorated `builder(frame, ctx) -> Table` as table `name` (see `_declare.Declaration`).

    >>> @table("demo_table", order=99, source="arch", needs="one row per model", wanted=lambda facts: False,
    ...        section=("Tables", "Demo"), caption="A demo.")  # doctest: +SKIP
    ... def demo(arch, ctx): ...
    """
    return declare("table", name, order=order, source=source, needs=needs, wanted=wanted, section=section,
                   caption=caption)


def available_tables() -> list[str]:
    """The declared tables' names, sorted."""
    return sorted(d.name for d in declared("table"))


def build_table(name: str, inputs: Mapping[str, pd.DataFrame], ctx: ReportContext) -> Table:
    """Compute table `name` from `inputs` ({"metrics": metrics frame, "arch": arch-table frame}).

    >>> arch = pd.DataFrame({"model": ["vgg16"], "params_M": [138.3], "params_with_biases_M": [138.4], "flops_B": [30.9],
    ...                      "paper_params_M": [138.34], "paper_flops_B": [30.94]})
    >>> build_table("arch_table", {"arch": arch}, ReportContext("default")).display.columns[0]
    'Model'
    """
    return make("table", name, inputs, ctx)


def write_tables(names: list[str], files: Mapping[str, str | os.PathLike], out_dir: str | os.PathLike,
                 ctx: ReportContext) -> dict[str, dict[str, str]]:
    """Read the input files (`files`: {"metrics": path, "arch": path}), write each table as
    `<out_dir>/<name>.{csv,md,html}`; returns {table: {format: path}}.

    Every name and needed file is checked before anything is computed; a table without rows is an
    error naming the rows it needs (the config promised them).

    >>> write_tables(["table1_vgg"], {}, "/tmp", ReportContext("x"))
    Traceback (most recent call last):
    ...
    ValueError: table 'table1_vgg' needs a 'metrics' file; given: []
    """
    inputs = read_inputs("table", names, files)
    tables = {name: build_table(name, inputs, ctx) for name in names}
    for name, built in tables.items():
        spec = declaration(name)
        if built.display.empty:
            raise ValueError(f"table {name!r}: {files[spec.source]} has no {spec.needs}")
    return {name: built.write(os.path.join(out_dir, name)) for name, built in tables.items()}
