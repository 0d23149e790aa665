"""`thinet bench models`: ThiNet with `--strategy auto` on today's CNNs, built without weights.

Each model is pruned at rate r by `prune_chain` (ThiNet, no fine-tuning, every cut verified
against the masked reference) on random images at a small input size, with the sample count of
`thinet prune --strategy auto` (at least 16 samples per channel of the widest unit,
`thinet.sampling.samples_per_image_for`); params and FLOPs before and after and the time the
chain took are measured. The README's model table is this function's markdown.

    >>> rows = run_models_bench(["torchvision:resnet18"], image_size=32, images=4)  # doctest: +SKIP
    >>> print(models_markdown(rows))  # doctest: +SKIP
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from typing import Any

import torch

from thinet.models import create_model, example_inputs, out_channels_of
from thinet.pipeline import prune_chain
from thinet.runtime import count_flops, count_params
from thinet.sampling import SAMPLES_PER_CHANNEL, samples_per_image_for
from thinet.strategies import plan_units
from thinet.types import PruneStep

# Today's CNNs, then one network of each family issue 24 names: concatenation (DenseNet, above), channel
# shuffle (ShuffleNetV2), a split into mixed-kernel convs (MixNet), weight-standardised convs (NF-ResNet).
MODELS = ("torchvision:resnet18", "torchvision:resnet50", "torchvision:mobilenet_v2", "timm:mobilenetv3_small_100",
          "timm:efficientnet_b0", "timm:regnetx_002", "timm:convnext_atto", "torchvision:densenet121",
          "torchvision:shufflenet_v2_x0_5", "timm:mixnet_s", "timm:nf_resnet26")


def samples_needed(model: torch.nn.Module, steps: Sequence[PruneStep], images: int,
                   per_channel: float = SAMPLES_PER_CHANNEL) -> int:
    """Samples per image so that every step has at least `per_channel` samples per channel of its producer
    (10 per image at least; `thinet.sampling.samples_per_image_for`, the rule of `thinet prune --strategy auto`).
    `per_channel=1` is Eq. 6's bare minimum."""
    modules = dict(model.named_modules())
    widest = max(out_channels_of(modules[s.pair.producer]) for s in steps)
    return samples_per_image_for(images, widest, per_channel)


def prune_random(name: str, keep_ratio: float = 0.5, *, image_size: int = 64, images: int = 8,
                 shared_channels: bool = False, seed: int = 0,
                 samples_per_channel: float = SAMPLES_PER_CHANNEL) -> dict[str, Any]:
    """Prune model `name` (no weights) with ThiNet on `images` random images; its row of the table.

    Each unit gets at least `samples_per_channel` × the widest unit's channels samples (`samples_needed`).
    """
    torch.manual_seed(seed)
    model = create_model(name, 10).eval()
    model.thinet_input_size = (3, image_size, image_size)
    example = example_inputs(model)
    size = (3, image_size, image_size)
    plan = plan_units(model, example, shared_channels=shared_channels)
    before = count_params(model), count_flops(model, size)
    gen = torch.Generator().manual_seed(seed)
    batches = [torch.randn(images, *size, generator=gen)]
    per_image = 0
    start = time.perf_counter()
    if plan.units:  # a model with no unit (every consumer refused) is a row of the table too: nothing cut
        steps = plan.steps(keep_ratio)
        per_image = samples_needed(model, steps, images, samples_per_channel)
        with tempfile.TemporaryDirectory() as workdir:
            model = prune_chain(model, steps, criterion="thinet", selection_batches=batches, finetune=None,
                                train_loader=None, workdir=workdir, seed=seed, device="cpu", example_inputs=example,
                                samples_per_image=per_image, progress=False)
    seconds = time.perf_counter() - start
    after = count_params(model), count_flops(model, size)
    return {"model": name, "units": len(plan.units), "coupled": sum(not u.plain for u in plan.units),
            "skipped": len(plan.skipped), "params_before": before[0], "params_after": after[0],
            "flops_before": before[1], "flops_after": after[1], "seconds": seconds, "samples_per_image": per_image,
            "model_out": model,
            "plan": plan}


def run_models_bench(models: Sequence[str] = MODELS, keep_ratio: float = 0.5, *, image_size: int = 64,
                     images: int = 8, shared_channels: bool = False, seed: int = 0,
                     samples_per_channel: float = SAMPLES_PER_CHANNEL) -> list[dict[str, Any]]:
    """`prune_random` for each model, without the pruned modules."""
    rows = []
    for name in models:
        row = prune_random(name, keep_ratio, image_size=image_size, images=images,
                           shared_channels=shared_channels, seed=seed, samples_per_channel=samples_per_channel)
        rows.append({k: v for k, v in row.items() if k not in ("model_out", "plan")})
    return rows


def models_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a markdown table (params in millions, FLOPs in MFLOPs at the bench's input)."""
    header = ("| model | units (coupled) | layers skipped | params before → after (M) | "
              "MFLOPs before → after | FLOPs cut | pruning time (s) |")
    lines = [header, "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cut = 1 - r["flops_after"] / r["flops_before"]
        lines.append(f"| {r['model']} | {r['units']} ({r['coupled']}) | {r['skipped']} | "
                     f"{r['params_before'] / 1e6:.2f} → {r['params_after'] / 1e6:.2f} | "
                     f"{r['flops_before'] / 1e6:.1f} → {r['flops_after'] / 1e6:.1f} | {100 * cut:.0f} % | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)
