"""ThiNet's layer-by-layer loop (§3.1, Fig. 1): select → prune → fine-tune, one layer at a time.

Each step chooses the producer's channels with a criterion, removes them
(`thinet.surgery.prune_pair`, or `prune_unit` for a coupled step), fine-tunes per the `FinetunePlan` and saves
`step_XXX.pt` in the work directory. A killed run restarts at the first
unfinished step; fine-tuning inside a step resumes from its epoch checkpoint.

>>> plan = FinetunePlan.from_config({"per_layer": {"epochs": 1, "lr": 1e-3},
...                                  "group_end_extra": {"epochs": 1, "lr": 1e-4},
...                                  "final": {"epochs": 12, "lr": 1e-3, "lr_end": 1e-5}})
>>> [name for name, _ in plan.phases(group_end=True, last=False)]
['per_layer', 'group_end_extra']
>>> # model = prune_chain(model, steps, criterion="thinet", selection_batches=subset_loader,
>>> #                     finetune=plan, train_loader=train_loader, workdir="runs/vgg",
>>> #                     seed=0, device="cuda", example_inputs=torch.randn(1, 3, 224, 224))
"""
from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from thinet.models import find_layer, out_channels_of
from thinet.runtime import (
    DEFAULT_CHECKPOINT_MINUTES,
    DistInfo, LogFn, OptimizerSettings, Schedule, atomic_save, barrier, check_or_write_manifest, derive_seed, dist_info,
    finetune_path, latest_step, reestimate_batchnorm, rng_state, set_rng_state, step_path, train,
)
from thinet.types import PruneStep, PruningError, Selection, check_keep_ratio

EvaluateFn = Callable[[nn.Module, str, int], Mapping[str, float] | None]


def _random_state(train_loader: Iterable | None) -> dict[str, Any]:
    # A shuffling loader's own generator runs on across the chain's fine-tunes; a step checkpoint
    # keeps it (and the global RNGs) so that a resumed process sees the data order it would have seen.
    generator = getattr(train_loader, "generator", None)
    return {"global": rng_state(), "loader": generator.get_state() if generator is not None else None}


def _restore_random_state(state: Mapping[str, Any] | None, train_loader: Iterable | None) -> None:
    if state is None:
        return
    set_rng_state(state["global"])
    generator = getattr(train_loader, "generator", None)
    if generator is not None and state["loader"] is not None:
        generator.set_state(state["loader"])


@dataclass(frozen=True)
class FinetunePlan:
    """Fine-tuning after each step (§4.2): `per_layer` after every step but the last,
    `group_end_extra` in addition after steps marked `group_end`, and `final`
    after the last step, in place of `per_layer` ("when pruning the last layer,
    more epochs (12 epochs) are adopted")."""

    per_layer: Schedule
    group_end_extra: Schedule | None
    final: Schedule

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "finetune") -> "FinetunePlan":
        unknown = sorted(set(config) - {"per_layer", "group_end_extra", "final"})
        if unknown:
            raise ValueError(f"{where}.{unknown[0]} is not a fine-tuning key (per_layer, group_end_extra, final)")
        for key in ("per_layer", "final"):
            if key not in config:
                raise ValueError(f"{where}.{key} is missing")
        extra = config.get("group_end_extra")
        return cls(Schedule.from_config(config["per_layer"], f"{where}.per_layer"),
                   None if extra is None else Schedule.from_config(extra, f"{where}.group_end_extra"),
                   Schedule.from_config(config["final"], f"{where}.final"))

    def to_dict(self) -> dict[str, Any]:
        return {"per_layer": self.per_layer.to_dict(), "final": self.final.to_dict(),
                "group_end_extra": None if self.group_end_extra is None else self.group_end_extra.to_dict()}

    def phases(self, *, group_end: bool, last: bool, finetune_after: bool = True) -> list[tuple[str, Schedule]]:
        """The (name, schedule) fine-tuning phases that follow one step (none where the recipe
        fine-tunes only after a later step)."""
        if last:
            return [("final", self.final)]
        if not finetune_after:
            return []
        if group_end and self.group_end_extra is not None:
            return [("per_layer", self.per_layer), ("group_end_extra", self.group_end_extra)]
        return [("per_layer", self.per_layer)]


def _count_images(batches: Any) -> int | None:
    """Images behind the selection batches, when knowable without iterating them."""
    if isinstance(batches, torch.Tensor):
        return int(batches.shape[0])
    dataset = getattr(batches, "dataset", None)
    return len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None


def _validate(model: nn.Module, steps: Sequence[PruneStep], criterion: str, plan: Any, train_loader: Any,
              example_inputs: Any, selection_batches: Any = None, samples_per_image: int = 10) -> Any:
    """Check every step before any compute; returns the dependency graph traced for it."""
    from thinet.criteria import check_layers, get_criterion
    from thinet.surgery import build_graph, check_pair, find_unit

    if plan is not None and not isinstance(plan, FinetunePlan):
        raise PruningError(f"finetune must be a FinetunePlan or None, got {type(plan).__name__}")
    if plan is not None and train_loader is None:
        raise PruningError("prune_chain: fine-tuning (a FinetunePlan) needs a train_loader")
    if not steps:
        raise PruningError("the pruning chain has no steps")
    # A criterion may carry `precheck(num_images, samples_per_image, num_channels, layer)`,
    # so that a chain fails before its first layer rather than halfway through.
    precheck = getattr(get_criterion(criterion), "precheck", None)
    num_images = _count_images(selection_batches)
    graph = build_graph(model, example_inputs)
    for index, step in enumerate(steps):
        if not isinstance(step, PruneStep):
            raise PruningError(f"step {index} must be a PruneStep, got {step!r}")
        check_keep_ratio(step.keep_ratio, f"layer {step.pair.producer!r} (step {index})")
        if step.coupled:
            unit = find_unit(graph, step.pair.producer, shared=True)
            if step.pair.consumer not in unit.consumers:
                raise PruningError(f"step {index}: {step.pair.consumer!r} is not a consumer of the channel unit "
                                   f"{unit.describe()}")
            # A criterion marked `grouped_units` keeps the same count in every group of a grouped unit.
            if unit.groups > 1 and not getattr(get_criterion(criterion), "grouped_units", False):
                raise PruningError(f"criterion {criterion!r} cannot prune the grouped unit of layer "
                                   f"{step.pair.producer!r} ({unit.describe()}): it does not keep the same count "
                                   "in every group; use thinet or thinet_nols")
        else:
            check_pair(model, step.pair, example_inputs, graph=graph)
        if precheck is not None and num_images is not None:
            channels = out_channels_of(find_layer(model, step.pair.producer, "producer"), step.pair.producer)
            precheck(num_images, samples_per_image, channels, step.pair.producer)
    # A criterion that cannot score a layer (no BatchNorm, no ReLU after it) names it now, not at that step.
    check_layers(criterion, model, [step.pair for step in steps], example_inputs)
    return graph


def _manifest(steps: Sequence[PruneStep], criterion: str, plan: FinetunePlan | None, seed: int,
              samples_per_image: int, optimizer: OptimizerSettings, reestimate_bn: bool,
              settings: Mapping[str, Any] | None) -> dict[str, Any]:
    manifest = {"criterion": criterion, "seed": seed, "samples_per_image": samples_per_image,
                "reestimate_bn": reestimate_bn,
                "finetune": None if plan is None else plan.to_dict(), "optimizer": optimizer.to_dict(),
                "steps": [{"producer": s.pair.producer, "consumer": s.pair.consumer, "keep_ratio": s.keep_ratio,
                           "group_end": s.group_end, "finetune_after": s.finetune_after,
                           **({"coupled": True} if s.coupled else {})} for s in steps]}
    clash = set(manifest) & set(settings or {})
    if clash:
        raise PruningError(f"settings key {sorted(clash)[0]!r} is reserved by prune_chain")
    return {**manifest, **(settings or {})}


def _select(model: nn.Module, step: PruneStep, index: int, criterion: str, batches: Iterable, seed: int,
            samples_per_image: int, device: torch.device, example_inputs: Any,
            info: DistInfo, unit: Any = None) -> Selection:
    from thinet.criteria import CriterionContext, run_criterion

    ctx = CriterionContext(model=model, pair=step.pair, batches=batches, keep_ratio=step.keep_ratio,
                           seed=derive_seed(seed, "select", index), samples_per_image=samples_per_image,
                           device=device, example_inputs=example_inputs, unit=unit)
    selection = run_criterion(criterion, ctx)
    if info.enabled:  # every rank must cut the same channels, whatever GPU nondeterminism did
        box = [selection]
        torch.distributed.broadcast_object_list(box, src=0)
        selection = box[0]
    return selection


def prune_chain(model: nn.Module, steps: Sequence[PruneStep], *, criterion: str, selection_batches: Iterable,
                finetune: FinetunePlan | None, train_loader: Iterable | None, workdir: str | os.PathLike, seed: int,
                device: str | torch.device, example_inputs: torch.Tensor, evaluate_fn: EvaluateFn | None = None,
                log: LogFn | None = None, samples_per_image: int = 10,
                settings: Mapping[str, Any] | None = None, progress: bool = True,
                amp: str | bool | None = None, channels_last: bool | None = None,
                optimizer: OptimizerSettings | Mapping[str, Any] | None = None,
                reestimate_bn: bool = False,
                checkpoint_minutes: float | None = DEFAULT_CHECKPOINT_MINUTES,
                verify_cuts: bool = True) -> nn.Module:
    """Prune `steps` in order and return the pruned, fine-tuned model.

    `finetune=None` prunes without fine-tuning (then `train_loader` may be None).
    `evaluate_fn(model, phase, step_index)` is called with phase "pruned" (just
    after the surgery) and "finetuned" (after that step's fine-tuning, for the
    steps that are fine-tuned); what it returns is stored in the step checkpoint. `log(global_step, metrics)`
    receives the fine-tuning metrics (`train_loss`, `train_accuracy`, `lr`, ...,
    `chain_step`), with one step counter across the whole chain. `settings`
    (e.g. model and dataset names) are recorded in `chain.json` with the chain's
    own; a restart with any different value raises PruningError naming the key.
    `optimizer` sets the bias rule of every fine-tuning phase (`thinet.runtime.OptimizerSettings`).
    `reestimate_bn` recomputes every BatchNorm's statistics on the selection images right after each
    surgery, before the "pruned" evaluation and the fine-tuning (the same for every criterion).
    The model is returned because a resumed run loads it from disk. Inside a step's
    fine-tuning, `train` saves every `checkpoint_minutes` and on SIGTERM/SIGINT.
    `verify_cuts` compares each cut with the masked reference on a few selection images
    (`thinet.surgery.verify_cut`, one copy of the model and two forward passes); a cut that is not
    exact is undone (the model is as after the previous step) and stops the chain with a PruningError.
    """
    from thinet.surgery import build_graph, find_unit, prune_pair, prune_unit, verify_cut

    device = torch.device(device)
    model = model.to(device)
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = example_inputs.to(device)
    graph = _validate(model, steps, criterion, finetune, train_loader, example_inputs, selection_batches,
                      samples_per_image)
    workdir = Path(workdir)
    info = dist_info()
    if info.is_main:
        workdir.mkdir(parents=True, exist_ok=True)
        check_or_write_manifest(workdir, _manifest(steps, criterion, finetune, seed, samples_per_image,
                                                   OptimizerSettings.from_config(optimizer), reestimate_bn,
                                                   settings))
    barrier(info)

    done, ckpt = latest_step(workdir, len(steps))
    if ckpt is not None:
        model = ckpt["model"].to(device)
        graph = build_graph(model, example_inputs)
        _restore_random_state(ckpt.get("random_state"), train_loader)
        left = len(steps) - done - 1
        print(f"prune_chain: resuming from {step_path(workdir, done)} (step {done}, {steps[done].pair.producer}); "
              f"{left} step(s) left", file=sys.stderr)
    batches_per_epoch = len(train_loader) if finetune is not None else 0  # type: ignore[arg-type]
    offset = 0
    for index, step in enumerate(steps):
        phases = [] if finetune is None else finetune.phases(group_end=step.group_end, last=index == len(steps) - 1,
                                                             finetune_after=step.finetune_after)
        if index <= done:
            offset += sum(s.total_steps(batches_per_epoch) for _, s in phases)
            continue
        # One trace serves the whole chain: a cut changes channel counts, never the modules or their wiring.
        unit = find_unit(graph, step.pair.producer, shared=True) if step.coupled else None
        selection = _select(model, step, index, criterion, selection_batches, seed, samples_per_image, device,
                            example_inputs, info, unit)
        reference = copy.deepcopy(model) if verify_cuts else None
        if step.coupled:
            model = prune_unit(model, unit, selection, example_inputs=example_inputs, graph=graph)
        else:
            model = prune_pair(model, step.pair, selection, example_inputs=example_inputs, graph=graph)
        if reference is not None:  # not exact: the step is undone and the chain stops, naming the layer
            verify_cut(model, reference, unit if step.coupled else step.pair, selection, selection_batches,
                       where=f"step {index}")
            del reference
        if reestimate_bn:
            reestimate_batchnorm(model, selection_batches, device=device)
        metrics: dict[str, Any] = {}
        if evaluate_fn is not None:
            metrics["pruned"] = dict(evaluate_fn(model, "pruned", index) or {})
        for phase_index, (phase, schedule) in enumerate(phases):
            def forward_log(step_in_phase: int, values: dict[str, float], _base: int = offset) -> None:
                if log is not None:
                    log(_base + step_in_phase, {**{f"train_{k}" if k in ("loss", "accuracy") else k: v
                                                   for k, v in values.items()}, "chain_step": index})
            train(model, train_loader, schedule, device=device, amp=amp, channels_last=channels_last,
                  checkpoint_path=finetune_path(workdir, index, phase_index),
                  seed=derive_seed(seed, "finetune", index, phase_index), log=forward_log,
                  progress=progress, desc=f"step {index} {step.pair.producer} {phase}", optimizer=optimizer,
                  checkpoint_minutes=checkpoint_minutes)
            offset += schedule.total_steps(batches_per_epoch)
        if evaluate_fn is not None and phases:
            metrics["finetuned"] = dict(evaluate_fn(model, "finetuned", index) or {})
        if info.is_main:
            atomic_save({"model": model, "step": index, "layer": step.pair.producer, "selection": selection,
                         "metrics": metrics, "random_state": _random_state(train_loader), "complete": True},
                        step_path(workdir, index))
            for phase_index in range(len(phases)):
                finetune_path(workdir, index, phase_index).unlink(missing_ok=True)
        barrier(info)
    return model
