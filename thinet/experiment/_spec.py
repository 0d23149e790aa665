"""A job's settings as typed values: the spec file the workflow writes for each run
(`results/<config>/specs/<run>.json`, `workflow/rules/common.smk`) read once, key by key, into frozen
dataclasses, which are all a job function takes.

`JobSpec` holds a run's parts: the run itself (`RunSpec`, as the plan expanded it, with its fine-tuning,
training and pretraining schedules checked), its dataset (`DatasetSpec`), the config's `data`
(`DataSpec`), `selection` (`SelectionSpec`) and `mlflow` (`TrackingSpec`) sections, and where it runs
(`device`, `amp`). The §4.1 comparison has a spec of its own (`CompareLayerSpec`), and so has the
selection job (`SelectionJobSpec`, given on its command line).

A missing key, an unknown key (a typo) or a value of the wrong type is one `SpecError` naming the
dotted key and the file, raised when the spec is read, before any model or data is touched. The files
stay the workflow's JSON: `to_dict()` gives back exactly the keys and values read, which is what the
MLflow params and the record of a kept model are made from.

>>> SelectionSpec.from_dict({"per_class": 2, "samples_per_image": 4}).samples_per_image
4
>>> try:
...     SelectionSpec.from_dict({"per_class": 2, "samples_per_imgae": 4}, where="s.json", key="selection")
... except SpecError as err:
...     print(err)
s.json: unknown key 'selection.samples_per_imgae' (did you mean 'selection.samples_per_image'?)
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, TypeVar

from thinet.experiment._config import ConfigError

S = TypeVar("S", bound="_Spec")


class SpecError(ConfigError):
    """A job spec file lacks a key, has one no job reads, or holds a value of the wrong type; the
    message names the dotted key and the file."""


def _dotted(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _kind_of(hint: Any) -> str:
    """A type hint in words, for errors ('an int', 'a mapping or null')."""
    if hint is type(None):
        return "null"
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_kind_of(a) for a in args)
    if typing.get_origin(hint) is tuple:
        return "a list"
    if hint is dict or typing.get_origin(hint) is dict or (isinstance(hint, type) and issubclass(hint, _Spec)):
        return "a mapping"
    return {bool: "true or false", int: "an int", float: "a number", str: "a string"}.get(hint, str(hint))


def _convert(hint: Any, value: Any, where: str, key: str) -> Any:
    """`value` checked against the type hint `hint` (nested specs read, lists made tuples); numbers are
    not converted (1 stays 1, 0.5 stays 0.5), so what a job writes keeps its string forms."""
    if hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]  # the specs use `X | None` only
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, type) and issubclass(hint, _Spec):
        return hint.from_dict(value, where=where, key=key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{where}: key {key!r} must be a list, got {value!r}")
        return tuple(_convert(args[0], item, where, f"{key}[{i}]") for i, item in enumerate(value))
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}.get(hint)
    if ok is None and (hint is dict or origin is dict):
        ok = lambda v: isinstance(v, Mapping)  # noqa: E731
    if ok is None:
        raise TypeError(f"spec key {key!r}: no check for type {hint!r}")
    if not ok(value):
        raise SpecError(f"{where}: key {key!r} must be {_kind_of(hint)}, got {value!r}")
    return value


def _plain(value: Any) -> Any:
    """A spec value as JSON holds it (specs as mappings, tuples as lists)."""
    if isinstance(value, _Spec):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class _Spec:
    """What every spec part shares: reading from a mapping with each key checked, and back.

    `_keys` records the keys read, in the file's order, so that `to_dict` gives back exactly them (a key
    the planner writes only when set, such as `reestimate_bn`, stays absent)."""

    _keys: tuple[str, ...] = field(default=(), kw_only=True, repr=False, compare=False)

    @classmethod
    def _fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls) if not f.name.startswith("_")}

    @classmethod
    def _allowed(cls, data: Mapping[str, Any], where: str, key: str) -> tuple[set[str], set[str]]:
        """(required keys, allowed keys) of this part; by default the fields without and with a default."""
        spec_fields = cls._fields()
        required = {name for name, f in spec_fields.items()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        return required, set(spec_fields)

    @classmethod
    def from_dict(cls: type[S], data: Any, *, where: str = "spec", key: str = "") -> S:
        """Read one part of a spec; `where` names the file in errors, `key` the part's dotted key."""
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: key {key or '<top level>'!r} must be a mapping, got {data!r}")
        required, allowed = cls._allowed(data, where, key)
        for name in data:
            if name not in allowed:
                close = difflib.get_close_matches(str(name), sorted(allowed), n=1)
                hint = f" (did you mean {_dotted(key, close[0])!r}?)" if close else ""
                raise SpecError(f"{where}: unknown key {_dotted(key, str(name))!r}{hint}")
        for name in cls._fields():
            if name in required and name not in data:
                raise SpecError(f"{where}: key {_dotted(key, name)!r} is missing")
        hints = typing.get_type_hints(cls)
        values = {name: _convert(hints[name], value, where, _dotted(key, name)) for name, value in data.items()}
        spec = cls(**values, _keys=tuple(data))
        spec._check(where, key)
        return spec

    def _check(self, where: str, key: str) -> None:
        """Checks across keys, after reading (a SpecError)."""

    def to_dict(self) -> dict[str, Any]:
        """The mapping this part was read from (every field, for a part built in code)."""
        names = self._keys or tuple(self._fields())
        return {name: _plain(getattr(self, name)) for name in names}


def _read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SpecError(f"job spec {str(path)!r} does not exist") from None
    except json.JSONDecodeError as err:
        raise SpecError(f"{path}: not a JSON spec ({err})") from None


# ---------------------------------------------------------------- the parts

@dataclass(frozen=True)
class DatasetSpec(_Spec):
    """The config's `datasets.<name>` entry plus its `name` (what the data step verifies)."""

    name: str
    root: str
    image_size: int | None = None
    skip_unreadable_images: bool = False
    image_checksums: bool = False
    fixture: dict[str, Any] | None = None


@dataclass(frozen=True)
class DataSpec(_Spec):
    """The config's `data` section: batch sizes, subsets of the splits, timing, preprocessing."""

    batch_size: int
    eval_batch_size: int
    num_workers: int
    train_images: int | None
    step_eval_images: int
    final_eval_images: int | None
    timing_batch_size: int
    timing_rounds: int
    timing_min_run_time: float
    preprocessing: str


@dataclass(frozen=True)
class SelectionSpec(_Spec):
    """The config's `selection` section (§4.2): N images per class, samples per image."""

    per_class: int
    samples_per_image: int


@dataclass(frozen=True)
class TrackingSpec(_Spec):
    """The config's `mlflow` section, with the experiment's name filled in by the workflow."""

    enabled: bool
    experiment: str
    log_model: bool


@dataclass(frozen=True)
class TrainingSpec(_Spec):
    """What every training of a run shares (`run.training`): the batch, the training subset, the
    optimizer's bias rule (`thinet.runtime.OptimizerSettings`) and the preprocessing."""

    batch_size: int
    train_images: int | None
    optimizer: dict[str, Any]
    preprocessing: str

    def _check(self, where: str, key: str) -> None:
        from thinet.runtime import OptimizerSettings

        try:
            OptimizerSettings.from_config(self.optimizer, _dotted(key, "optimizer"))
        except ValueError as err:
            raise SpecError(f"{where}: {err}") from None


# The keys of a run besides those every run has, by kind: (required, optional), as build_plan writes them.
_EXPERIMENT = ("experiment", "variant", "strategy", "criterion", "keep_ratio", "source_hash")
_FINE_TUNED = _EXPERIMENT + ("train", "checkpoint")
RUN_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "base": (("base", "model_args", "pretrained", "checkpoint", "gap", "train"), ("pretrain",)),
    "original": (_FINE_TUNED, ()),
    "gap": (_FINE_TUNED, ()),
    "transfer": (_FINE_TUNED, ()),
    "scratch": (_FINE_TUNED, ("kept", "base", "model_args", "gap")),
    "chain": (_EXPERIMENT + ("finetune", "selection", "selection_settings"), ("reestimate_bn",)),
    "grouped": (_EXPERIMENT + ("grouping", "groups", "train", "selection", "selection_settings"), ()),
}


@dataclass(frozen=True)
class RunSpec(_Spec):
    """One run of the plan (`build_plan`): the keys every run has, and those of its kind (`RUN_KEYS`).

    `finetune` (a chain's), `train` and `pretrain` stay the config's mappings (they are logged as MLflow
    params and recorded beside kept models); they are checked when read, and `finetune_plan()` is the
    chain's `thinet.pipeline.FinetunePlan`.
    """

    id: str
    kind: str
    hash: str
    dataset: str
    model: str
    seed: int
    after: str | None
    training: TrainingSpec
    experiment: str | None = None
    variant: str | None = None
    strategy: str | None = None
    criterion: str | None = None
    keep_ratio: float | None = None
    source_hash: str | None = None
    base: str | None = None
    model_args: dict[str, Any] | None = None
    pretrained: bool | None = None
    checkpoint: str | None = None
    gap: bool | None = None
    train: dict[str, Any] | None = None
    pretrain: dict[str, Any] | None = None
    finetune: dict[str, Any] | None = None
    reestimate_bn: bool = False
    selection: str | None = None
    selection_settings: SelectionSpec | None = None
    grouping: str | None = None
    groups: int | None = None
    kept: bool = False

    @classmethod
    def _allowed(cls, data: Mapping[str, Any], where: str, key: str) -> tuple[set[str], set[str]]:
        common = {name for name, f in cls._fields().items() if f.default is dataclasses.MISSING}
        kind = data.get("kind")
        if "kind" not in data:
            raise SpecError(f"{where}: key {_dotted(key, 'kind')!r} is missing")
        if kind not in RUN_KEYS:
            raise SpecError(f"{where}: key {_dotted(key, 'kind')!r} is {kind!r}, not a kind of run "
                            f"({', '.join(RUN_KEYS)})")
        required, optional = RUN_KEYS[kind]
        return common | set(required), common | set(required) | set(optional)

    def _check(self, where: str, key: str) -> None:
        from thinet.pipeline import FinetunePlan
        from thinet.runtime import Schedule

        try:
            for name in ("train", "pretrain"):
                if getattr(self, name) is not None:
                    Schedule.from_config(getattr(self, name), _dotted(key, name))
            if self.finetune is not None:
                FinetunePlan.from_config(self.finetune, _dotted(key, "finetune"))
        except ValueError as err:
            raise SpecError(f"{where}: {err}") from None

    def finetune_plan(self) -> Any:
        """The chain's fine-tuning (`thinet.pipeline.FinetunePlan`), named by its config key in errors."""
        from thinet.pipeline import FinetunePlan

        return FinetunePlan.from_config(self.finetune or {}, where=f"experiments.{self.experiment}.finetune")


@dataclass(frozen=True)
class JobSpec(_Spec):
    """Everything a job knows about its run (`results/<config>/specs/<run>.json`): the run, the model
    it starts from (`source`, the run it comes `after`), its data and the config's sections.

    >>> JobSpec.from_file("results/smoke/specs/vgg_criteria-thinet-r0.5-s0.json").run.keep_ratio  # doctest: +SKIP
    0.5
    """

    config: str
    run: RunSpec
    source: RunSpec | None
    dataset: DatasetSpec
    data: DataSpec
    selection: SelectionSpec
    device: str
    amp: bool
    mlflow: TrackingSpec
    output_dir: str
    manifest: str | None
    criteria_modules: tuple[str, ...]
    work_dir: str | None = None
    model_args: dict[str, Any] | None = None

    def _check(self, where: str, key: str) -> None:
        if self.run.kind == "chain" and self.work_dir is None:
            raise SpecError(f"{where}: key 'work_dir' is missing (a chain's per-layer checkpoints live there)")

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "JobSpec":
        """The spec the workflow wrote to `path`, checked; errors name the key and `path`."""
        return cls.from_dict(_read_json(path), where=str(path))


@dataclass(frozen=True)
class CompareSpec(_Spec):
    """The plan's `compare_layer` (§4.1): the layer, rate, seed and criteria, the run compared
    (`after`) and its selection subset."""

    layer: str
    keep_ratio: float
    seed: int
    criteria: tuple[str, ...]
    after: str
    selection: str
    all_criteria: bool = False
    base: str | None = None
    run: str | None = None


@dataclass(frozen=True)
class CompareLayerSpec(_Spec):
    """The §4.1 comparison job's spec (`results/<config>/compare_layer.spec.json`)."""

    config: str
    compare_layer: CompareSpec
    model: str
    dataset: DatasetSpec
    data: DataSpec
    selection: SelectionSpec
    device: str
    manifest: str | None
    criteria_modules: tuple[str, ...]

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "CompareLayerSpec":
        """The spec the workflow wrote to `path`, checked; errors name the key and `path`."""
        return cls.from_dict(_read_json(path), where=str(path))


@dataclass(frozen=True)
class SelectionJobSpec(_Spec):
    """The selection job's settings (rule selection_subset): N images per class of a dataset's training
    split, drawn with `seed`, read through the data step's manifest."""

    dataset: str
    seed: int
    per_class: int
    root: str
    manifest: str | None = None
    image_size: int | None = None


def load_spec(path: str | os.PathLike) -> JobSpec:
    """A job's settings, as the workflow wrote them to results/<config>/specs/<run>.json, checked
    (`JobSpec.from_file`).

    >>> spec = load_spec("results/smoke/specs/base-vgg.json")  # doctest: +SKIP
    """
    return JobSpec.from_file(path)
