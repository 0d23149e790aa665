"""The models a run starts from, by kind: a base model (from scratch, pretrained or a checkpoint),
a GAP head on another model (ThiNet-GAP, §4.2), another model's architecture from random
initialisation ("Train from scratch", Tables 1 and 4), or a model carried to a new dataset with a
new classifier (Table 4). The workflow's training jobs and `thinet prune --gap` use the same code.

>>> import torchvision
>>> gap_model(torchvision.models.vgg11(weights=None), num_classes=10).classifier
Sequential(
  (0): Linear(in_features=512, out_features=10, bias=True)
)
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Callable

import torch
from torch import nn
from torchvision.models import VGG

from thinet.experiment._jobs import load_model
from thinet.experiment._spec import RunSpec
from thinet.models import VGGGap, create_model, init_weights, input_size_of, replace_last_linear
from thinet.runtime import derive_seed
from thinet.strategies import get_strategy, prune_with_first_channels, to_gap
from thinet.types import PruningError

# (run settings, training dataset, the model the run starts from or None) -> the model to train
Builder = Callable[[RunSpec, Any, "nn.Module | None"], nn.Module]
_BUILDERS: dict[str, Builder] = {}


def _builder(kind: str) -> Callable[[Builder], Builder]:
    def add(fn: Builder) -> Builder:
        _BUILDERS[kind] = fn
        return fn
    return add


def build_run_model(run: RunSpec, data: Any, source: nn.Module | None) -> nn.Module:
    """The starting model of a workflow run of kind base, gap, scratch or transfer (`run`, a `RunSpec`), for
    the training split `data`, from the model `source` the run starts from (None for a base).

    >>> # build_run_model(RunSpec.from_dict(plan.runs["base-vgg"]), train_split, None) -> a VGG
    """
    if run.kind not in _BUILDERS:
        raise ValueError(f"run {run.id!r}: no model builder for kind {run.kind!r}; known: {sorted(_BUILDERS)}")
    return _BUILDERS[run.kind](run, data, source)


def check_gap_ready(model: nn.Module, label: str) -> None:
    """PruningError unless `model` is a VGG with its FC head (what `thinet prune --gap` replaces).

    The workflow does not ask this: its CI configs put a new GAP head on a small GAP-shaped VGG
    standing in for VGG-16, which `gap_model` does as readily."""
    if not isinstance(model, VGG):
        raise PruningError(f"--gap needs a VGG model; {label} is {type(model).__name__}")
    if isinstance(model, VGGGap):
        raise PruningError(f"--gap: {label} already ends in global average pooling")


def gap_model(model: nn.Module, num_classes: int, seed: int = 0) -> nn.Module:
    """ThiNet-GAP's head: VGG's classifier replaced by global average pooling and a new Linear."""
    return to_gap(model, num_classes, seed=seed)


def scratch_model(model: nn.Module, seed: int) -> nn.Module:
    """A copy of `model`'s (pruned) architecture with every parameter drawn anew from `seed`, by the
    architecture's own initialisation (`thinet.models.init_weights`), as its unpruned original was."""
    fresh = copy.deepcopy(model)
    torch.manual_seed(derive_seed(seed, "scratch-init"))
    init_weights(fresh)
    return fresh


def pruned_architecture(run: RunSpec, data: Any) -> nn.Module:
    """The architecture a chain of `run`'s strategy and keep ratio makes of `run`'s base, built without
    data (first channels kept; which ones does not change the shapes), randomly initialised."""
    model = _base(replace(run, pretrained=False, checkpoint=None), data, None)
    x = torch.zeros(1, *input_size_of(model))
    return prune_with_first_channels(model, get_strategy(run.strategy)(model, run.keep_ratio, x), x)


def load_kept_weights(model: nn.Module, path: str, like: str) -> nn.Module:
    """`model` with the state_dict kept at `path`; a file of another architecture is an error naming both."""
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except RuntimeError as err:
        detail = (str(err).splitlines()[1:] or [str(err)])[0].strip()
        raise ValueError(f"{path} does not fit the architecture of run {like!r} ({detail}); retrain it with "
                         f"`snakemake --forcerun pretrain_scratch`") from None
    return model


@_builder("base")
def _base(run: RunSpec, data: Any, source: nn.Module | None) -> nn.Module:
    model = create_model(run.model, num_classes=data.num_classes, pretrained=bool(run.pretrained),
                         checkpoint=run.checkpoint, **(run.model_args or {}))
    if run.gap:
        model = to_gap(model, data.num_classes)
    want = (data.in_channels, data.image_size, data.image_size)
    if tuple(input_size_of(model)) != want:
        raise ValueError(f"config key 'bases.{run.base}.model_args': model {run.model} takes input "
                         f"{tuple(input_size_of(model))} but dataset {run.dataset} gives {want}; "
                         f"set in_chans/input_size or datasets.{run.dataset}.image_size")
    return model


@_builder("gap")
def _gap(run: RunSpec, data: Any, source: nn.Module | None) -> nn.Module:
    return gap_model(source, data.num_classes, seed=run.seed)


@_builder("scratch")
def _scratch(run: RunSpec, data: Any, source: nn.Module | None) -> nn.Module:
    model = scratch_model(source, run.seed)
    return load_kept_weights(model, run.checkpoint, run.after) if run.kept else model


@_builder("transfer")
def _transfer(run: RunSpec, data: Any, source: nn.Module | None) -> nn.Module:
    return replace_last_linear(load_model(run.checkpoint), data.num_classes)  # a model of another config
