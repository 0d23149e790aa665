"""The declarations of the report's tables and figures, one per output file of `tables/` and
`figures/`: which result file it is computed from, when a config wants it, where it goes in
the Snakemake report and its caption. The plan, the report sections and the workflow's rules
are derived from them (`_plan.py`), so a new table or figure is one new module.

>>> import thinet.report
>>> d = declaration("table1_vgg")
>>> d.kind, d.source, d.section
('table', 'metrics', ('Tables', 'Table 1: VGG-16 family'))
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

from thinet.report._context import ReportContext
from thinet.report._facts import ConfigFacts
from thinet.report._schema import read_arch_table, read_compare_layer, read_metrics

Make = TypeVar("Make", bound=Callable[[pd.DataFrame, ReportContext], Any])

# The result files an output can be computed from: source -> (reader, file name in results/<config>/).
SOURCES: dict[str, tuple[Callable[[Any], pd.DataFrame], str]] = {
    "metrics": (read_metrics, "metrics.csv"),
    "arch": (read_arch_table, "arch_table.csv"),
    "compare_layer": (read_compare_layer, "compare_layer.csv"),
}
SOURCE_FILES: dict[str, str] = {source: file for source, (_, file) in SOURCES.items()}


@dataclass(frozen=True)
class Declaration:
    """One table or figure. `make(frame, ctx)` computes it from its `source`'s frame; `order` is its
    place in the plan (lower first); `needs` names the rows a table is made of (for the error when
    there are none); `caption` is reStructuredText, rendered by Snakemake with Jinja2."""

    kind: str
    name: str
    make: Callable[[pd.DataFrame, ReportContext], Any]
    order: int
    source: str | tuple[str, ...]
    wanted: Callable[[ConfigFacts], bool]
    section: tuple[str, str]
    caption: str
    needs: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        """The result files it is computed from; a tuple `source` hands `make` a {source: frame} mapping."""
        return self.source if isinstance(self.source, tuple) else (self.source,)


_DECLARED: dict[str, Declaration] = {}


def declare(kind: str, name: str, **fields: Any) -> Callable[[Make], Make]:
    """Register the decorated builder as output `name` of `kind` ('table' or 'figure').

    Output names are unique across kinds: they name the files and the caption of the report.
    """
    def register(make: Make) -> Make:
        if name in _DECLARED:
            raise ValueError(f"{kind} {name!r} is declared twice (already as a {_DECLARED[name].kind})")
        declared = Declaration(kind, name, make, **fields)
        unknown = [source for source in declared.sources if source not in SOURCES]
        if unknown:
            raise ValueError(f"{kind} {name!r}: unknown source(s) {unknown}; known: {sorted(SOURCES)}")
        _DECLARED[name] = declared
        return make
    return register


def import_outputs(package: str, path: Iterable[str]) -> None:
    """Import every module of `package` not starting with '_': importing one declares its output."""
    for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def declared(kind: str) -> list[Declaration]:
    """The declarations of `kind`, in plan order."""
    return sorted((d for d in _DECLARED.values() if d.kind == kind), key=lambda d: (d.order, d.name))


def declaration(name: str, kind: str | None = None) -> Declaration:
    """The declaration of output `name` (of `kind` when given); ValueError listing the known ones."""
    found = _DECLARED.get(name)
    if found is None or kind not in (None, found.kind):
        known = sorted(d.name for d in _DECLARED.values() if kind in (None, d.kind))
        raise ValueError(f"unknown {kind or 'output'} {name!r}; available: {', '.join(known)}")
    return found


def make(kind: str, name: str, inputs: Mapping[str, pd.DataFrame], ctx: ReportContext) -> Any:
    """Compute output `name` from `inputs` ({source: frame}), checking its source is given."""
    spec = declaration(name, kind)
    for source in spec.sources:
        if source not in inputs:
            raise ValueError(f"{kind} {name!r} needs the {source!r} input; given: {sorted(inputs)}")
    frames = inputs[spec.source] if isinstance(spec.source, str) else {s: inputs[s] for s in spec.sources}
    return spec.make(frames, ctx)


def read_inputs(kind: str, names: list[str], files: Mapping[str, str | os.PathLike]) -> dict[str, pd.DataFrame]:
    """Read the files (`files`: {source: path}) that the outputs `names` need, each once.

    Every name and needed file is checked before anything is read.
    """
    needed = {source for name in names for source in declaration(name, kind).sources}
    for name in names:
        for source in declaration(name, kind).sources:
            if source not in files:
                raise ValueError(f"{kind} {name!r} needs a {source!r} file; given: {sorted(files)}")
    return {source: SOURCES[source][0](path) for source, path in files.items() if source in needed}
