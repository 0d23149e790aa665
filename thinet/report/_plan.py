"""What the workflow needs from the declarations: which tables and figures a config yields
(decided from the config alone: Snakemake must know every output before any job runs), the
result files they are computed from, their report sections and their caption files.

>>> cfg = {"name": "demo", "bases": {"vgg": {"model": "vgg16_small"}},
...        "experiments": {"e": {"base": "vgg", "variants": [{"kind": "original"}, {"kind": "chain"}]}}}
>>> report_plan(cfg)
{'tables': ['table1_vgg', 'table2_criteria', 'arch_table'], 'figures': ['fig4_layerwise', 'tradeoff', 'speedup_vs_flops']}
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

# Importing the subpackages declares every table and figure.
import thinet.report.figures  # noqa: F401  (imports declare)
import thinet.report.tables  # noqa: F401  (imports declare)
from thinet.report._declare import SOURCE_FILES, declaration, declared
from thinet.report._facts import config_facts
from thinet.runtime import write_text_atomic


def report_plan(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """{'tables': [...], 'figures': [...]}: the outputs whose declaration wants `config`, in plan order."""
    facts = config_facts(config)
    return {f"{kind}s": [d.name for d in declared(kind) if d.wanted(facts)] for kind in ("table", "figure")}


def report_inputs(names: Iterable[str]) -> dict[str, str]:
    """{source: file name in results/<config>/} of the result files the outputs `names` are computed from.

    >>> report_inputs(["table1_vgg", "arch_table", "tradeoff"])
    {'metrics': 'metrics.csv', 'arch': 'arch_table.csv'}
    >>> report_inputs(["speedup_vs_flops"])
    {'arch': 'arch_table.csv', 'metrics': 'metrics.csv'}
    """
    sources = dict.fromkeys(source for name in names for source in declaration(name).sources)
    return {source: SOURCE_FILES[source] for source in sources}


def report_section(name: str) -> tuple[str, str]:
    """(category, subcategory) of output `name` in the Snakemake report.

    >>> report_section("compare_layer")
    ('Figures', 'Single-layer comparison (4.1)')
    """
    return declaration(name).section


def write_captions(names: Iterable[str], folder: str | os.PathLike) -> dict[str, str]:
    """Write the caption of each output to `<folder>/<name>.rst` where the file differs; returns
    {name: absolute path}, for Snakemake's `report(..., caption=path)`.

    An unchanged caption is not rewritten, so its mtime stays put.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_captions(["table1_vgg"], folder)["table1_vgg"]
    ...     open(path, encoding="utf-8").read().startswith("**Table 1 — the VGG-16 family**")
    True
    """
    paths = {}
    for name in names:
        path = os.path.abspath(os.path.join(folder, f"{name}.rst"))
        caption = declaration(name).caption
        try:
            with open(path, encoding="utf-8") as handle:
                same = handle.read() == caption
        except OSError:
            same = False
        if not same:
            write_text_atomic(path, caption)
        paths[name] = path
    return paths
