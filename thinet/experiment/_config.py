"""Workflow configs: load (YAML, merged in order), validate, and expand into a plan of jobs.

A config is checked the same way inside and outside Snakemake: first the JSON schema, which
the workflow owns (workflow/schemas/config.schema.yaml: Snakemake validates with it, and
`load_config` is given its path) and which also fills defaults; then the semantic checks
(registered criterion/model/dataset/strategy names, data roots, references between
variants). Every error is a `ConfigError` naming the config key and, where there is a
closed set, the allowed values.

>>> cfg = load_config(["config/default.yaml"], "workflow/schemas/config.schema.yaml")  # doctest: +SKIP
>>> plan = build_plan(cfg)                               # doctest: +SKIP
>>> sorted(plan.runs)[:2]                                # doctest: +SKIP
['base-resnet', 'base-vgg']
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from thinet.types import PruningError, grouped_strategy

MODEL_PREFIXES = ("torchvision:", "timm:")
DEFAULT_LABELS = {"original": "Original", "chain": "{criterion} r={r}", "gap": "GAP", "grouped": "{grouping} g={g}",
                  "scratch": "Train from scratch", "transfer": "{id}"}


class ConfigError(PruningError):
    """A config is malformed or names something that does not exist; the message names the key."""


# ---------------------------------------------------------------- loading

def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively; lists and scalars of `override` replace those of `base`.

    >>> deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}})
    {'a': {'b': 1, 'c': 3}}
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml_files(paths: Iterable[str | os.PathLike]) -> dict[str, Any]:
    """Read and merge config files in order (later files override earlier ones)."""
    merged: dict[str, Any] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"config file {str(path)!r} must hold a mapping, got {type(data).__name__}")
        merged = deep_merge(merged, data)
    return merged


def load_config(paths: Iterable[str | os.PathLike], schema_path: str | os.PathLike,
                overrides: Mapping[str, Any] | None = None, *, check_paths: bool = True) -> dict[str, Any]:
    """Read, merge, validate against the schema at `schema_path` (filling defaults) and semantically check a config.

    >>> cfg = load_config(["config/smoke.yaml"], "workflow/schemas/config.schema.yaml")  # doctest: +SKIP
    >>> cfg["data"]["batch_size"]                        # doctest: +SKIP
    32
    """
    config = read_yaml_files(paths)
    if overrides:
        config = deep_merge(config, overrides)
    validate_schema(config, schema_path)
    check_config(config, check_paths=check_paths)
    return config


# ---------------------------------------------------------------- schema

def _key_of(path: Iterable[Any]) -> str:
    key = ""
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key or "<top level>"


def _fill_defaults(validator_cls):
    from jsonschema import validators

    set_props = validator_cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from set_props(validator, props, instance, schema)

    return validators.extend(validator_cls, {"properties": properties})


def validate_schema(config: dict[str, Any], schema_path: str | os.PathLike) -> dict[str, Any]:
    """Validate against the JSON schema in place, filling defaults; errors name the key."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    # The draft the schema declares (2020-12, the one Snakemake's validate() uses too).
    validator = _fill_defaults(jsonschema.validators.validator_for(schema))(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"config key {_key_of(err.absolute_path)!r}: {_describe(err)}")
    return config


def _describe(err) -> str:
    if err.validator == "enum":
        return f"{err.instance!r} is not one of the allowed values {err.validator_value}"
    if err.validator == "additionalProperties":
        return f"{err.message} (allowed keys: {sorted(err.schema.get('properties', {}))})"
    if err.validator == "oneOf" and err.context:
        return "; or ".join(sorted({c.message for c in err.context}))
    return err.message


# ---------------------------------------------------------------- semantic checks

def _registries(config: Mapping[str, Any]) -> dict[str, list[str]]:
    from thinet.criteria import available_criteria, load_criterion_modules
    from thinet.data import available_datasets
    from thinet.models import available_models
    from thinet.strategies import available_strategies

    try:  # criteria kept outside baselines/ register when their modules are imported
        load_criterion_modules(config.get("criteria_modules") or [])
    except (ValueError, FileNotFoundError) as err:
        raise ConfigError(f"config key 'criteria_modules': {err}") from None
    return {"criterion": list(available_criteria()), "dataset": list(available_datasets()),
            "model": list(available_models()), "strategy": list(available_strategies())}


def _require(kind: str, value: str, key: str, allowed: list[str]) -> None:
    if kind == "model" and value.startswith(MODEL_PREFIXES):
        return
    if value not in allowed:
        extra = " (or 'torchvision:<name>' / 'timm:<name>')" if kind == "model" else ""
        raise ConfigError(f"config key {key!r}: unknown {kind} {value!r}; allowed: {', '.join(allowed)}{extra}")


def criteria_of(value: str | list[str], key: str, allowed: list[str]) -> list[str]:
    """Expand `criteria: all` to every registered criterion, and check listed names (a name a criterion
    family makes on demand, such as a Torch-Pruning importance `tp_<name>`, is made here)."""
    from thinet.criteria import get_criterion

    if value == "all":
        return sorted(allowed)
    for i, name in enumerate(value):
        if name in allowed:
            continue
        try:
            get_criterion(name)
        except PruningError as err:
            raise ConfigError(f"config key '{key}[{i}]': {err}") from None
    return list(value)


# A name that becomes part of a file path (results/<name>/<kind>/<run id>/, models/<name>/<base>.pt; run
# ids are <experiment>-<variant id>...): the schema's rule for `name`, no leading dot and so never '.' or
# '..', and no '/'; also what the workflow's {run} wildcard matches.
PATH_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_PATH_PART_RULE = "letters, digits, '_', '-' and '.', not starting with '.'"


def check_path_part(value: Any, key: str, what: str) -> None:
    """A ConfigError naming `key` unless `value` (a `what` from the config) is safe as one part of a path.

    >>> check_path_part("vgg_criteria", "experiments", "experiment name")
    >>> try:
    ...     check_path_part("../../tmp/x", "experiments", "experiment name")
    ... except ConfigError as err:
    ...     print(err)
    config key 'experiments': experiment name '../../tmp/x' becomes part of file paths; use letters, digits, '_', '-' and '.', not starting with '.'
    """
    if not isinstance(value, str) or not PATH_PART.fullmatch(value):
        raise ConfigError(f"config key {key!r}: {what} {value!r} becomes part of file paths; use {_PATH_PART_RULE}")


def _check_path_names(config: Mapping[str, Any]) -> None:
    # Before anything is planned or written: a name like '../../x' would put outputs outside results/.
    for name in config["bases"]:
        check_path_part(name, "bases", "base name")
    for exp, spec in config["experiments"].items():
        check_path_part(exp, "experiments", "experiment name")
        for i, var in enumerate(spec["variants"]):
            if "id" in var:
                check_path_part(var["id"], f"experiments.{exp}.variants[{i}].id", "variant id")


def check_config(config: Mapping[str, Any], *, check_paths: bool = True) -> None:
    """Semantic checks after the schema: names that become paths safe, names registered, data present,
    references resolve."""
    from thinet.data import check_dataset_preprocessing

    _check_path_names(config)
    known = _registries(config)
    gpus, batch = config.get("gpus", 0), config["data"]["batch_size"]
    if gpus > 1 and batch % gpus:
        raise ConfigError(f"config key 'data.batch_size': {batch} is the global batch and must divide evenly over "
                          f"'gpus' = {gpus} processes (the paper: 128 over 4 GPUs = 32 each)")
    for name, ds in config["datasets"].items():
        _require("dataset", name, f"datasets.{name}", known["dataset"])
        try:
            check_dataset_preprocessing(name, config["data"]["preprocessing"])
        except ValueError as err:
            raise ConfigError(f"config key 'data.preprocessing': {err}") from None
        if check_paths and "fixture" not in ds and not Path(ds["root"]).exists():
            raise ConfigError(f"config key 'datasets.{name}.root': data directory {ds['root']!r} does not exist "
                              f"(give the dataset's location, or a 'fixture' entry to generate a test tree)")
    for name, base in config["bases"].items():
        _require("model", base["model"], f"bases.{name}.model", known["model"])
        _require("dataset", base["dataset"], f"bases.{name}.dataset", list(config["datasets"]))
        given = [k for k in ("pretrained", "checkpoint", "pretrain") if base.get(k)]
        if len(given) > 1:
            raise ConfigError(f"config key 'bases.{name}': give one of 'pretrained', 'checkpoint' or 'pretrain', "
                              f"not {' and '.join(given)}")
    for exp, spec in config["experiments"].items():
        _require("base", spec["base"], f"experiments.{exp}.base", list(config["bases"]))
        for i, var in enumerate(spec["variants"]):
            key = f"experiments.{exp}.variants[{i}]"
            if var["kind"] == "chain":
                _require("strategy", var["strategy"], f"{key}.strategy", known["strategy"])
                criteria_of(var["criteria"], f"{key}.criteria", known["criterion"])
    for key, path in (config.get("reuse") or {}).items():
        if check_paths and not Path(path).is_file():
            raise ConfigError(f"config key 'reuse.{key}': file {path!r} does not exist (a copy of the earlier run's "
                              f"{'metrics.csv' if key == 'metrics' else 'runs.csv'})")
    timing = config.get("arch_timing")
    if timing:
        from thinet.experiment._arch_table import RESNET_ROWS
        from thinet.experiment._arch_timing import timing_shape_problem

        resnet = not timing.get("rows") or bool(set(timing["rows"]) & set(RESNET_ROWS))
        problem = resnet and timing_shape_problem(timing.get("batch_size"), timing.get("image_size", 224))
        if problem:
            raise ConfigError(f"config key 'arch_timing': {problem}")
    cmp = config.get("compare_layer")
    if cmp:
        if ("base" in cmp) == ("run" in cmp):
            raise ConfigError("config key 'compare_layer': give 'base' (a base model) or 'run' (a run id), not "
                              f"{'both' if 'base' in cmp else 'neither'}")
        if "base" in cmp:
            _require("base", cmp["base"], "compare_layer.base", list(config["bases"]))
        criteria_of(cmp.get("criteria", "all"), "compare_layer.criteria", known["criterion"])
    plan = build_plan(config, criteria=known["criterion"])  # reference errors surface here
    for run_id, run in plan.runs.items():  # criterion names (plugins too) are part of run ids
        if not PATH_PART.fullmatch(run_id):
            where = f"experiments.{run['experiment']}" if run.get("experiment") else "bases"
            check_path_part(run_id, where, "run id")


# ---------------------------------------------------------------- the plan

@dataclass
class Plan:
    """What the workflow runs: `runs` (id -> spec) in dependency order, selection subsets, compare-layer."""

    name: str
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    selections: dict[str, dict[str, Any]] = field(default_factory=dict)
    compare_layer: dict[str, Any] | None = None
    # Criteria left out of a chain variant because they cannot score its layers (`_refusals.py`).
    refused: list[Any] = field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[str]:
        return [rid for rid, run in self.runs.items() if run["kind"] in kinds]

    @property
    def evaluated(self) -> list[str]:
        """Runs that become rows of metrics.csv (every run but the bare base models)."""
        return [rid for rid, run in self.runs.items() if run["kind"] != "base"]


def settings_hash(settings: Mapping[str, Any]) -> str:
    """Short content hash of JSON-able settings (names work folders; a change gives a new folder)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def selection_id(dataset: str, per_class: int, seed: int) -> str:
    return f"{dataset}-pc{per_class}-s{seed}"


def _fmt_rate(r: float) -> str:
    return f"{r:g}"


def _training_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    data = config["data"]
    return {"batch_size": data["batch_size"], "train_images": data["train_images"],
            "optimizer": dict(config.get("optimizer") or {}), "preprocessing": data["preprocessing"]}


def models_dir(config: Mapping[str, Any]) -> str:
    """The folder of the models a config trains once and keeps: `models_dir`, else models/<name>.

    >>> models_dir({"name": "smoke"}), models_dir({"name": "verdict", "models_dir": "models/default"})
    ('models/smoke', 'models/default')
    """
    return config.get("models_dir") or f"models/{config['name']}"


def pretrained_file(config: Mapping[str, Any], name: str) -> str:
    """Where the workflow keeps a model it trains once: a base with `pretrain` (rule `pretrain_base`,
    `name` = the base) or a scratch variant with `kept` (rule `pretrain_scratch`, `name` = its run id)."""
    return f"{models_dir(config)}/{name}.pt"


def _base_runs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    runs = {}
    for name, base in config["bases"].items():
        pretrain = base.get("pretrain")
        spec = {"id": f"base-{name}", "kind": "base", "base": name, "model": base["model"],
                "dataset": base["dataset"], "model_args": base.get("model_args", {}),
                "pretrained": base.get("pretrained", False),
                "checkpoint": pretrained_file(config, name) if pretrain else base.get("checkpoint"),
                "gap": base.get("gap", False), "train": base.get("train"), "seed": base.get("seed", 0),
                "after": None, "training": _training_settings(config), **({"pretrain": pretrain} if pretrain else {})}
        spec["hash"] = settings_hash(spec)
        runs[spec["id"]] = spec
    return runs


def _chain_runs(exp: str, vid: str, var: Mapping[str, Any], common: dict[str, Any], criteria: list[str],
                single_id: bool) -> list[dict[str, Any]]:
    runs = []
    for crit in criteria:
        for r in var["keep_ratios"]:
            for seed in var.get("seeds", [0]):
                prefix = f"{exp}-{vid}" if vid != "chain" else exp
                rid = prefix if single_id else f"{prefix}-{crit}-r{_fmt_rate(r)}-s{seed}"
                label = var.get("label", DEFAULT_LABELS["chain"]).format(
                    criterion=crit, r=_fmt_rate(r), pct=round(r * 100), seed=seed, id=vid)
                runs.append({**common, "id": rid, "variant": label, "criterion": crit, "keep_ratio": float(r),
                             "seed": seed, "strategy": var["strategy"], "finetune": var["finetune"],
                             **({"reestimate_bn": True} if var.get("reestimate_bn") else {})})
    return runs


def _grouped_runs(exp: str, vid: str, var: Mapping[str, Any], common: dict[str, Any], source: Mapping[str, Any],
                  key: str, base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A `grouped` variant: the `from` chain's model grouped (gcos and its baselines), one run per grouping,
    g and seed, each fine-tuned with `train`; rows carry criterion = the grouping, strategy = '<chain's
    strategy>/g<g>' (`thinet.types.grouped_strategy`) and the chain's rate."""
    from thinet.grouping import available_groupings

    if source["kind"] != "chain":
        raise ConfigError(f"config key '{key}.from': a grouped variant groups a pruned chain's model; "
                          f"{var.get('from', 'base')!r} is a {source['kind']!r} variant")
    known = available_groupings()
    for j, name in enumerate(var["groupings"]):
        if name not in known:
            raise ConfigError(f"config key '{key}.groupings[{j}]': unknown grouping {name!r}; allowed: "
                              f"{', '.join(known)}")
    if source.get("after", "").startswith("base-"):  # the chain's architecture is known without data: check now
        from thinet.experiment._refusals import grouping_refusal

        for j, g in enumerate(var["groups"]):
            reason = grouping_refusal(base, source["strategy"], source["keep_ratio"], g)
            if reason is not None:
                raise ConfigError(f"config key '{key}.groups[{j}]': {reason} (the architecture of "
                                  f"{source['id']!r}); refused before any job runs")
    cells = [(name, g, seed) for name in var["groupings"] for g in var["groups"] for seed in var.get("seeds", [0])]
    runs = []
    for name, g, seed in cells:
        prefix = f"{exp}-{vid}" if vid != "grouped" else exp
        rid = prefix if "id" in var and len(cells) == 1 else f"{prefix}-{name}-g{g}-s{seed}"
        label = var.get("label", DEFAULT_LABELS["grouped"]).format(
            grouping=name, g=g, seed=seed, id=vid, criterion=source["criterion"], r=_fmt_rate(source["keep_ratio"]),
            pct=round(source["keep_ratio"] * 100))
        runs.append({**common, "id": rid, "variant": label, "criterion": name, "grouping": name, "groups": g,
                     "seed": seed, "strategy": grouped_strategy(source["strategy"], g), "train": var["train"]})
    return runs


def _kept_scratch(config: Mapping[str, Any], key: str, kind: str, like: Mapping[str, Any], base: Mapping[str, Any],
                  run_id: str) -> dict[str, Any]:
    """A scratch variant trained once by rule `pretrain_scratch` and kept like a `pretrain` base: its
    architecture is built without data from the base and the `like` chain's strategy and rate."""
    if kind != "scratch":
        raise ConfigError(f"config key '{key}.kept': only a scratch variant can be kept, not a {kind!r} one")
    if like["kind"] != "chain" or like["after"] != base["id"]:
        raise ConfigError(f"config key '{key}.kept': the 'like' variant must be a chain pruning the base "
                          f"{base['id']!r} (its architecture is then rebuilt without data)")
    return {"kept": True, "checkpoint": pretrained_file(config, run_id), "base": base["base"],
            "model_args": base["model_args"], "gap": base["gap"]}


def _experiment_runs(config: Mapping[str, Any], exp: str, spec: Mapping[str, Any], criteria_known: list[str],
                     runs: dict[str, dict[str, Any]], refused: list[Any] | None = None) -> list[dict[str, Any]]:
    base_id = f"base-{spec['base']}"
    base = runs[base_id]
    local: dict[str, list[str]] = {"base": [base_id]}  # variant id -> its run ids
    out: list[dict[str, Any]] = []
    for i, var in enumerate(spec["variants"]):
        key = f"experiments.{exp}.variants[{i}]"
        kind = var["kind"]
        vid = var.get("id") or kind
        # Chains and grouped variants without an id may repeat (one per seed grid, say); they cannot be
        # referred to.
        referable = kind not in ("chain", "grouped") or "id" in var
        if referable and vid in local:
            raise ConfigError(f"config key '{key}.id': variant id {vid!r} is used twice in experiment {exp!r} "
                              f"(give each variant a distinct 'id')")

        def one_run(ref_key: str) -> dict[str, Any]:
            ref = var.get(ref_key, "base")
            if ref not in local:
                raise ConfigError(f"config key '{key}.{ref_key}': {ref!r} is not 'base' or the id of an earlier "
                                  f"variant of experiment {exp!r}; allowed: {', '.join(local)}")
            if len(local[ref]) != 1:
                raise ConfigError(f"config key '{key}.{ref_key}': variant {ref!r} expands to {len(local[ref])} "
                                  f"runs; refer only to a variant with one criterion, rate and seed")
            return runs[local[ref][0]]

        source = one_run("like" if kind == "scratch" else "from") if kind != "transfer" else base
        common = {"kind": kind, "experiment": exp, "dataset": base["dataset"], "model": base["model"],
                  "after": source["id"] if kind in ("original", "chain", "gap", "scratch", "grouped") else None,
                  "strategy": source.get("strategy", ""), "criterion": source.get("criterion", ""),
                  "keep_ratio": source.get("keep_ratio", 1.0), "seed": var.get("seed", source.get("seed", 0)),
                  "training": _training_settings(config)}
        if kind == "chain":
            crits = criteria_of(var["criteria"], f"{key}.criteria", criteria_known)
            if refused is not None and source["id"] == base_id:
                from thinet.experiment._refusals import refusals

                out_of_plan = refusals(base, var["strategy"], var["keep_ratios"], crits, exp, vid)
                refused.extend(out_of_plan)
                crits = [c for c in crits if c not in {r.criterion for r in out_of_plan}]
            n = len(crits) * len(var["keep_ratios"]) * len(var.get("seeds", [0]))
            new = _chain_runs(exp, vid, var, common, crits, single_id=bool(var.get("id")) and n == 1)
        elif kind == "grouped":
            new = _grouped_runs(exp, vid, var, common, source, key, base)
        else:
            label = var.get("label", DEFAULT_LABELS[kind]).format(id=vid, criterion=common["criterion"],
                                                                  r=_fmt_rate(common["keep_ratio"]), seed=common["seed"],
                                                                  pct=round(common["keep_ratio"] * 100))
            extra = {"train": var.get("train"), "checkpoint": var.get("checkpoint")}
            if kind == "scratch":
                common["criterion"] = ""
            if var.get("kept"):
                extra.update(_kept_scratch(config, key, kind, source, base, f"{exp}-{vid}"))
            new = [{**common, **extra, "id": f"{exp}-{vid}", "variant": label}]
        for run in new:
            run["source_hash"] = runs.get(run["after"], {}).get("hash") if run["after"] else None
            if kind in ("chain", "grouped"):  # a grouped run samples the same selection images as ThiNet
                run["selection"] = selection_id(run["dataset"], config["selection"]["per_class"], run["seed"])
                run["selection_settings"] = dict(config["selection"])
            run["hash"] = settings_hash({k: v for k, v in run.items() if k not in ("variant", "experiment")})
        if referable:
            local[vid] = [r["id"] for r in new]
        out.extend(new)
        for run in new:
            runs.setdefault(run["id"], run)
    return out


def build_plan(config: Mapping[str, Any], *, criteria: list[str] | None = None) -> Plan:
    """Expand a validated config into runs (bases, chains, GAP/scratch/transfer fine-tunes, evaluations).

    Run ids are readable (`<experiment>-<variant>[-<criterion>-r<r>-s<seed>]`); each run also carries
    `hash`, a digest of every setting that shapes its model (the source's hash included).
    """
    if criteria is None:
        criteria = _registries(config)["criterion"]
    plan = Plan(name=config["name"])
    plan.runs.update(_base_runs(config))
    for exp, spec in config["experiments"].items():
        for run in _experiment_runs(config, exp, spec, criteria, plan.runs, plan.refused):
            if plan.runs.get(run["id"]) is not run:
                raise ConfigError(f"config key 'experiments.{exp}': run id {run['id']!r} is produced twice; "
                                  f"rename an experiment or variant")
    for run in plan.runs.values():
        if run.get("selection"):
            plan.selections[run["selection"]] = {"dataset": run["dataset"], "seed": run["seed"],
                                                 "per_class": config["selection"]["per_class"]}
    cmp = config.get("compare_layer")
    if cmp:
        seed = cmp.get("seed", 0)
        after = cmp["run"] if "run" in cmp else f"base-{cmp['base']}"
        if after not in plan.runs:
            raise ConfigError(f"config key 'compare_layer.run': {after!r} is no run of this config; runs: "
                              f"{', '.join(r for r in plan.runs if not r.startswith('base-'))}")
        dataset = plan.runs[after]["dataset"]
        sel = selection_id(dataset, config["selection"]["per_class"], seed)
        plan.selections[sel] = {"dataset": dataset, "seed": seed, "per_class": config["selection"]["per_class"]}
        # With `all`, a criterion that cannot score the compared layer is left out by the job (logged).
        plan.compare_layer = {**cmp, "seed": seed, "selection": sel, "after": after,
                              "criteria": criteria_of(cmp.get("criteria", "all"), "compare_layer.criteria", criteria),
                              "all_criteria": cmp.get("criteria", "all") == "all"}
    return plan
