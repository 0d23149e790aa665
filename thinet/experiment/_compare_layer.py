"""§4.1's single-layer comparison: prune one layer with each criterion, evaluate before fine-tuning.

Every criterion prunes its own copy of the same model, from the same selection
images, and is evaluated on the same images; only the choice of channels differs.

>>> rows = run_compare_layer(model="vgg16_small", dataset="fashion_mnist", checkpoint="vgg.pt")  # doctest: +SKIP
>>> write_compare_csv(rows, "results/default/compare_layer.csv")  # doctest: +SKIP
"""
from __future__ import annotations

import copy
import csv
import io
import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from thinet.criteria import CriterionContext, available_criteria, get_criterion, load_criterion_modules, run_criterion
from thinet.experiment._data_job import checked_data
from thinet.experiment._jobs import log, resolve_device
from thinet.experiment._spec import CompareLayerSpec
from thinet.runtime import write_text_atomic
from thinet.types import COMPARE_LAYER_COLUMNS, LayerPair, PruningError, check_keep_ratio

UNPRUNED = "none"  # the criterion column of the unpruned model's row


def resolve_pair(model: nn.Module, layer: str, example_inputs: torch.Tensor) -> LayerPair:
    """The prunable pair whose producer is `layer`: a module name, or a paper name (conv1_1) of a VGG-style model.

    >>> from thinet.models import create_model
    >>> resolve_pair(create_model("vgg16_small", 10), "conv1_1", torch.zeros(1, 1, 32, 32))
    LayerPair(producer='features.0', consumer='features.3')
    """
    from thinet.models import vgg_conv_names
    from thinet.strategies import find_prunable_pairs

    producer = layer
    if layer not in dict(model.named_modules()):
        try:
            producer = vgg_conv_names(model).get(layer, layer)
        except ValueError:
            pass
    pairs = find_prunable_pairs(model, example_inputs)
    for pair in pairs:
        if pair.producer == producer:
            return pair
    known = ", ".join(p.producer for p in pairs) or "none"
    raise PruningError(f"--layer {layer!r} (module {producer!r}) is not a prunable layer of "
                       f"{type(model).__name__}; prunable layers: {known}")


def compare_layer(model: nn.Module, pair: LayerPair, selection_batches: Iterable[Any], eval_batches: Iterable[Any], *,
                  criteria: Sequence[str], keep_ratio: float, example_inputs: torch.Tensor, seed: int = 0,
                  samples_per_image: int = 10, device: torch.device | str | None = None,
                  eval_max_images: int | None = None, skip_refused: bool = False) -> list[dict[str, Any]]:
    """Rows `{criterion, keep_ratio, top1, top5, eval_images}`: the unpruned model, then each criterion.

    `model` is left as it was: every criterion prunes a deep copy. A criterion that cannot score the layer
    (`thinet.criteria.layer_refusal`: no BatchNorm for `bn_scale`, ...) is an error naming it, before any
    compute; with `skip_refused` (the criteria came from `all`) it is left out with a line on the log.
    """
    from thinet.criteria import layer_refusal
    from thinet.runtime import evaluate
    from thinet.surgery import check_pair, prune_pair

    for name in criteria:
        get_criterion(name)  # unknown names fail here, before any compute
    kept = []
    for name in criteria:
        reason = layer_refusal(name, model, pair, example_inputs)
        if reason is None:
            kept.append(name)
        elif skip_refused:
            log.info("compare-layer: criterion %r cannot score layer %r (%s); left out", name, pair.producer, reason)
        else:
            raise PruningError(f"criterion {name!r} cannot score layer {pair.producer!r}: {reason}")
    criteria = kept
    CriterionContext(model, pair, selection_batches, keep_ratio=keep_ratio, seed=seed,
                     samples_per_image=samples_per_image, device=device)  # validates the settings
    check_pair(model, pair, example_inputs)

    def row(criterion: str, ratio: float, net: nn.Module) -> dict[str, Any]:
        result = evaluate(net, eval_batches, device=device, max_images=eval_max_images)
        return {"criterion": criterion, "keep_ratio": ratio, "top1": result["top1"], "top5": result["top5"],
                "eval_images": result["images"]}

    rows = [row(UNPRUNED, 1.0, model)]
    for name in criteria:
        pruned = copy.deepcopy(model)
        ctx = CriterionContext(pruned, pair, selection_batches, keep_ratio=keep_ratio, seed=seed,
                               samples_per_image=samples_per_image, device=device, example_inputs=example_inputs)
        prune_pair(pruned, pair, run_criterion(name, ctx), example_inputs=example_inputs)
        rows.append(row(name, keep_ratio, pruned))
    return rows


def _check_settings(keep_ratio: float, per_class: int, samples_per_image: int, eval_max_images: int | None) -> None:
    # Checked before datasets and models are loaded, so a typo costs nothing.
    check_keep_ratio(keep_ratio, "the compared layer")
    for key, value in (("per_class", per_class), ("samples_per_image", samples_per_image),
                       ("eval_max_images", 1 if eval_max_images is None else eval_max_images)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PruningError(f"{key} {value!r} must be a positive int")


def run_compare_layer(*, model: str, dataset: str, checkpoint: str | os.PathLike | None = None,
                      data_root: str | os.PathLike | None = None, layer: str = "conv1_1", keep_ratio: float = 0.4,
                      per_class: int = 10, samples_per_image: int = 10, seed: int = 0,
                      eval_max_images: int | None = None, device: str | torch.device | None = None,
                      criteria: Sequence[str] | None = None, criteria_modules: Sequence[str] = (),
                      config: str = "adhoc", batch_size: int = 64, image_size: int | None = None,
                      preprocessing: str = "torchvision",
                      manifest: str | os.PathLike | None = None, skip_refused: bool = False) -> list[dict[str, Any]]:
    """Build model and data by name, run `compare_layer`, return rows with the compare_layer.csv columns.

    `criteria` defaults to every registered criterion that can score the layer (after loading
    `criteria_modules`); `manifest` is the data step's (its verified files are read, not the listing).
    """
    from thinet.data import get_dataset, selection_subset
    from thinet.models import create_model, example_inputs

    _check_settings(keep_ratio, per_class, samples_per_image, eval_max_images)
    load_criterion_modules(criteria_modules)
    names = list(criteria) if criteria else available_criteria()
    for name in names:
        get_criterion(name)
    dev = resolve_device(None if device is None else str(device))
    train = get_dataset(dataset, "train", root=data_root, image_size=image_size, preprocessing=preprocessing,
                        manifest=manifest)
    val = get_dataset(dataset, "val", root=data_root, image_size=image_size, preprocessing=preprocessing,
                      manifest=manifest)
    net = create_model(model, train.num_classes, checkpoint=checkpoint).to(dev).eval()
    example = example_inputs(net)
    pair = resolve_pair(net, layer, example)
    subset = selection_subset(train, per_class=per_class, seed=seed)
    rows = compare_layer(
        net, pair, DataLoader(subset, batch_size=batch_size), DataLoader(val, batch_size=256),
        criteria=names, keep_ratio=keep_ratio, example_inputs=example, seed=seed,
        samples_per_image=samples_per_image, device=dev, eval_max_images=eval_max_images,
        skip_refused=skip_refused or not criteria)
    fixed = {"config": config, "dataset": dataset, "model": model, "layer": pair.producer, "seed": seed}
    return [{column: {**fixed, **r}[column] for column in COMPARE_LAYER_COLUMNS} for r in rows]


def write_compare_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write rows as compare_layer.csv (ARCHITECTURE.md columns), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COMPARE_LAYER_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def compare_markdown(rows: Sequence[dict[str, Any]], layer_label: str | None = None) -> str:
    """A Markdown table of the rows; in §4.1's own setting (CUB-200, VGG-16-GAP, conv1_1, r = 0.4) with
    the paper's values beside them, elsewhere without (another setting has no paper value to compare).

    >>> print(compare_markdown([{"criterion": "thinet", "keep_ratio": 0.4, "top1": 80.0, "top5": 99.0,
    ...                          "eval_images": 10, "layer": "features.0", "dataset": "cub200", "model": "vgg16"}]))
    ... # doctest: +ELLIPSIS
    ### Single-layer comparison: vgg16 on cub200, layer features.0, r = 0.4 (before fine-tuning)
    ...
    | thinet | 0.4 | 80.00 | 99.00 | 10 | 70.75 |
    ...
    >>> "paper" in compare_markdown([{"criterion": "thinet", "keep_ratio": 0.4, "top1": 80.0, "top5": 99.0,
    ...                               "eval_images": 10, "layer": "features.0", "dataset": "d", "model": "m"}])
    False
    """
    # The report floor is loaded only here, where its paper values are shown, not in every job.
    from thinet.report import PAPER_COMPARE_LAYER, PAPER_COMPARE_LAYER_SETTING, is_paper_compare_setting

    if not rows:
        raise ValueError("compare_markdown: no rows")
    pruned = [r for r in rows if r["criterion"] != UNPRUNED]
    ratio = pruned[0]["keep_ratio"] if pruned else rows[0]["keep_ratio"]
    first = rows[0]
    layer = layer_label or first["layer"]
    setting = PAPER_COMPARE_LAYER_SETTING
    in_setting = all(is_paper_compare_setting(r["dataset"], r["model"], r["layer"], ratio) for r in rows)
    paper_head = (f" paper top-1 (%), {setting['dataset']} {setting['model']} conv1_1 r={setting['keep_ratio']} |"
                  if in_setting else "")
    lines = [
        f"### Single-layer comparison: {first['model']} on {first['dataset']}, layer {layer}, "
        f"r = {ratio} (before fine-tuning)",
        "",
        f"| criterion | keep ratio | top-1 (%) | top-5 (%) | images |{paper_head}",
        "| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if in_setting else ""),
    ]
    for r in rows:
        paper = PAPER_COMPARE_LAYER.get(r["criterion"])
        paper_cell = f" {'' if paper is None else f'{paper:.2f}'} |" if in_setting else ""
        lines.append(f"| {r['criterion']} | {r['keep_ratio']} | {r['top1']:.2f} | {r['top5']:.2f} | "
                     f"{r['eval_images']} |{paper_cell}")
    notes = f"`{UNPRUNED}` is the unpruned model."
    if in_setting:
        notes = ("The paper column is the §4.1 text (Luo et al., ICCV 2017): top-1 on CUB-200 after removing "
                 "60 % of VGG-16-GAP's conv1_1 filters, before fine-tuning; blank where the paper reports none. "
                 + notes)
    lines += ["", notes, ""]
    return "\n".join(lines)


def write_compare_outputs(rows: Sequence[dict[str, Any]], layer: str, out_csv: str | os.PathLike | None = None,
                          out_md: str | os.PathLike | None = None) -> str:
    """Write compare_layer.csv / .md (when given) and return the Markdown table; `layer` as the user named it."""
    label = layer if layer == rows[0]["layer"] else f"{layer} ({rows[0]['layer']})"
    table = compare_markdown(rows, layer_label=label)
    if out_csv:
        write_compare_csv(rows, out_csv)
    if out_md:
        write_text_atomic(out_md, table)
    return table


def run_compare_layer_job(spec: CompareLayerSpec, model_file: str | os.PathLike, out_csv: str | os.PathLike,
                          out_md: str | os.PathLike) -> None:
    """The workflow's compare-layer job (config key `compare_layer`), on the base model in `model_file`,
    reading the data manifest (`checked_data`: the data step's, or the same check done here)."""
    cmp, dataset = spec.compare_layer, spec.dataset
    with checked_data(spec, f"{out_csv}.data.json") as spec:
        rows = run_compare_layer(
            model=spec.model, dataset=dataset.name, checkpoint=model_file, data_root=dataset.root,
            image_size=dataset.image_size, preprocessing=spec.data.preprocessing, layer=cmp.layer,
            keep_ratio=cmp.keep_ratio, per_class=spec.selection.per_class,
            samples_per_image=spec.selection.samples_per_image, seed=cmp.seed,
            eval_max_images=spec.data.final_eval_images,
            device=None if spec.device == "auto" else spec.device, criteria=list(cmp.criteria),
            criteria_modules=list(spec.criteria_modules), config=spec.config, manifest=spec.manifest,
            skip_refused=cmp.all_criteria)
    log.info("%s", write_compare_outputs(rows, cmp.layer, out_csv, out_md))
