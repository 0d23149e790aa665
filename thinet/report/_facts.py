"""What a workflow config says about its results, as far as the report cares: the facts
each table and figure's `wanted` condition is a function of.

>>> cfg = {"bases": {"vgg": {"model": "vgg16_small"}},
...        "experiments": {"e": {"base": "vgg", "variants": [{"kind": "original"}, {"kind": "chain"}]}}}
>>> facts = config_facts(cfg)
>>> sorted(facts.families), facts.criteria_chains, facts.transfer_experiments
(['vgg'], True, frozenset())
>>> cfg["experiments"]["e"]["variants"][1]["criteria"] = ["thinet", "random"]
>>> config_facts(cfg).criteria_compared
True
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from thinet.report._rows import THINET_CRITERION, model_family

TRANSFER_KIND = "transfer"
# `criteria: all` expands to the registry, which always holds ThiNet and the baselines.
ALL_CRITERIA = "all"


@dataclass(frozen=True)
class ConfigFacts:
    """`families`: model families ('vgg', 'resnet', 'other') of the experiments outside transfer;
    `criteria_chains`: a pruning chain outside the transfer experiments; `chains`: a pruning chain in
    any experiment (per-layer rows); `pruned_models`: a variant other than the unpruned model (final
    rows); `transfer_experiments`: the experiments of Table 4; `compare_layer`: §4.1 is configured;
    `criteria_compared`: an experiment outside transfer whose chains prune with ThiNet and another
    criterion (the paired comparison with ThiNet).
    `arch_timing`: the architecture table is timed (config key `arch_timing` not null; the schema's
    default `{}` times it). `budgets_compared`: two or more experiments compare criteria with ThiNet on
    the same base with different fine-tuning budgets (the budget figure). `scratch_compared`: an
    experiment outside transfer with a chain and a `scratch` variant (pruned against scratch).
    `grouped`: an experiment outside transfer with a `grouped` variant (gcos against its baselines)."""

    families: frozenset[str]
    criteria_chains: bool
    chains: bool
    pruned_models: bool
    transfer_experiments: frozenset[str]
    compare_layer: bool
    criteria_compared: bool
    arch_timing: bool = False
    budgets_compared: bool = False
    scratch_compared: bool = False
    grouped: bool = False


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


def _chain_criteria(experiment: Mapping[str, Any]) -> set[str]:
    criteria: set[str] = set()
    for variant in experiment.get("variants") or []:
        if variant.get("kind") == "chain":
            listed = variant.get("criteria") or []
            criteria |= {THINET_CRITERION, ALL_CRITERIA} if listed == ALL_CRITERIA else set(listed)
    return criteria


def transfer_experiments(config: Mapping[str, Any]) -> frozenset[str]:
    """Experiments that belong in Table 4: those with a variant of kind 'transfer' or named 'transfer*'.

    >>> transfer_experiments({"experiments": {"transfer_cub": {}, "e": {"variants": [{"kind": "transfer"}]},
    ...                                       "f": {"variants": [{"kind": "chain"}]}}}) == {"transfer_cub", "e"}
    True
    """
    return frozenset(name for name, exp in _experiments(config).items()
                     if TRANSFER_KIND in _kinds(exp) or name.startswith("transfer"))


def _amount(schedule: Mapping[str, Any] | None) -> str:
    if not schedule:
        return "0"
    if schedule.get("iterations"):
        return f"{schedule['iterations']:g} it"
    return f"{schedule.get('epochs', 0):g} ep"


def budget_text(finetune: Mapping[str, Any]) -> str:
    """A chain's fine-tuning budget in words: per layer (+ the extra after a group's last layer), final.

    >>> budget_text({"per_layer": {"iterations": 50}, "group_end_extra": {"iterations": 25},
    ...              "final": {"iterations": 600}})
    '50 it/layer (+25 it), 600 it final'
    """
    extra = finetune.get("group_end_extra")
    return (f"{_amount(finetune.get('per_layer'))}/layer{f' (+{_amount(extra)})' if extra else ''}, "
            f"{_amount(finetune.get('final'))} final")


def finetune_budgets(config: Mapping[str, Any]) -> dict[str, str]:
    """Experiment -> the fine-tuning budget of its criteria chains, in config order ('mixed' where its
    chains differ); experiments without chains are left out.

    >>> finetune_budgets({"experiments": {"e": {"variants": [{"kind": "chain", "finetune": {
    ...     "per_layer": {"iterations": 5}, "final": {"epochs": 2}}}]}}})
    {'e': '5 it/layer, 2 ep final'}
    """
    budgets = {}
    for name, exp in _experiments(config).items():
        texts = {budget_text(v.get("finetune") or {}) for v in exp.get("variants") or [] if v.get("kind") == "chain"}
        if texts:
            budgets[name] = texts.pop() if len(texts) == 1 else "mixed"
    return budgets


def config_facts(config: Mapping[str, Any]) -> ConfigFacts:
    """The facts of `config`; raises ValueError naming the key when an experiment's base is unknown."""
    transfer = transfer_experiments(config)
    families, criteria_chains, chains, pruned_models, compared, scratch = set(), False, False, False, False, False
    grouped = False
    compared_budgets: dict[str, set[str]] = {}  # base -> budgets of the experiments comparing criteria on it
    budgets = finetune_budgets(config)
    for name, exp in _experiments(config).items():
        kinds = _kinds(exp)
        chains |= "chain" in kinds
        pruned_models |= bool(kinds - {"original"})
        if name not in transfer:
            families.add(model_family(_base_model(config, name, exp)))
            criteria_chains |= "chain" in kinds
            scratch |= {"chain", "scratch"} <= kinds
            grouped |= "grouped" in kinds
            criteria = _chain_criteria(exp)
            if THINET_CRITERION in criteria and len(criteria) > 1:
                compared = True
                compared_budgets.setdefault(str(exp.get("base")), set()).add(budgets.get(name, ""))
    return ConfigFacts(frozenset(families), criteria_chains, chains, pruned_models, transfer,
                       bool(config.get("compare_layer")), compared, config.get("arch_timing", {}) is not None,
                       any(len(b) > 1 for b in compared_budgets.values()), scratch, grouped)
