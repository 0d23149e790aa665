"""Which tables and figures a workflow config yields, decided from the config alone
(Snakemake must know every output before any job runs).

>>> cfg = {"name": "demo", "bases": {"vgg": {"model": "vgg16_small"}},
...        "experiments": {"e": {"base": "vgg", "variants": [{"kind": "original"}, {"kind": "chain"}]}}}
>>> report_plan(cfg)
{'tables': ['table1_vgg', 'table2_criteria', 'arch_table'], 'figures': ['fig4_layerwise', 'tradeoff']}
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thinet.report.rows import model_family

TRANSFER_KIND = "transfer"


def _experiments(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    experiments = config.get("experiments") or {}
    if not isinstance(experiments, Mapping):
        raise ValueError(f"config key 'experiments': expected a mapping of experiments, got {type(experiments).__name__}")
    return dict(experiments)


def _kinds(experiment: Mapping[str, Any]) -> set[str]:
    return {variant.get("kind", "") for variant in experiment.get("variants") or []}


def _base_model(config: Mapping[str, Any], name: str, experiment: Mapping[str, Any]) -> str:
    base = experiment.get("base")
    bases = config.get("bases") or {}
    if base not in bases:
        raise ValueError(f"config key 'experiments.{name}.base': {base!r} is not one of the bases {sorted(bases)}")
    return str(bases[base].get("model", ""))


def transfer_experiments(config: Mapping[str, Any]) -> frozenset[str]:
    """Experiments that belong in Table 4: those with a variant of kind 'transfer' or named 'transfer*'."""
    return frozenset(name for name, exp in _experiments(config).items()
                     if TRANSFER_KIND in _kinds(exp) or name.startswith("transfer"))


def report_plan(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """{'tables': [...], 'figures': [...]}: the names (see `available_tables`/`available_figures`) for `config`."""
    transfer = transfer_experiments(config)
    families, has_chain, has_pruned_model = set(), False, False
    for name, exp in _experiments(config).items():
        kinds = _kinds(exp)
        has_chain |= "chain" in kinds
        has_pruned_model |= bool(kinds - {"original"})
        if name not in transfer:
            families.add(model_family(_base_model(config, name, exp)))
    tables = [t for t, wanted in (
        ("table1_vgg", "vgg" in families),
        ("table2_criteria", any("chain" in _kinds(e) for n, e in _experiments(config).items() if n not in transfer)),
        ("table3_resnet", "resnet" in families),
        ("table4_transfer", bool(transfer)),
        ("arch_table", True),
    ) if wanted]
    figures = [f for f, wanted in (
        ("fig4_layerwise", has_chain),
        ("tradeoff", has_pruned_model),
        ("compare_layer", bool(config.get("compare_layer"))),
    ) if wanted]
    return {"tables": tables, "figures": figures}
