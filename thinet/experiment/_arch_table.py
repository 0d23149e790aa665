"""Data-free reproduction of the #Param and #FLOPs columns of Tables 1 and 3 (and, with a
`TimingPlan`, their f./b. columns: `_arch_timing.py`).

Each paper recipe is applied to the original VGG-16 / ResNet-50 (v1) through
`prune_pair`, keeping the first channels (which channels are kept does not
change the shapes), and the result is counted at 3×224×224. The gcos rows (TPAMI 2019, reconstructed:
`thinet.grouping`) then group every conv but conv1_1 into g groups; the model size is the paper's
(float32, 1 MB = 2^20 bytes: `thinet.types.size_mb`).

    >>> rows = arch_table(names=["ThiNet-GAP"])
    >>> rows[0]["model"], round(rows[0]["params_M"], 2), rows[0]["paper_params_M"]
    ('ThiNet-GAP', 8.32, 8.32)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from thinet.experiment._arch_timing import TimingPlan, add_timing, timing_plan_of
from thinet.experiment._jobs import log
from thinet.grouping import convert_model
from thinet.runtime import layer_type_times, model_counts, write_text_atomic
from thinet.models import create_model
from thinet.strategies import get_strategy, prune_with_first_channels, to_gap
from thinet.types import ARCH_TABLE_COLUMNS, ARCH_TIMING_COLUMNS, PruningError, size_mb

COUNT_INPUT_SIZE = (3, 224, 224)
# Tracing input: VGG's adaptive avgpool gives fc6 its 7×7 map at any size; ResNet's GAP likewise.
TRACE_INPUT = {"vgg16": (1, 3, 32, 32), "resnet50_v1": (1, 3, 64, 64)}
IMAGENET_CLASSES = 1000
# gcos's groups depend on data; any partition gives the same shapes, and a random one (seed 0) has the
# same channel shuffle before each grouped conv that a data-chosen one has (timing), without data.
DATA_FREE_GROUPING = "random_nols"


@dataclass(frozen=True)
class Recipe:
    """One row: a base model, an optional GAP head, a strategy at a keep ratio, the paper's numbers (None:
    the paper gives none), and `groups` > 1 to group its convs afterwards (gcos)."""

    name: str
    base: str
    strategy: str | None
    keep_ratio: float
    gap: bool
    paper_params_M: float | None
    paper_flops_B: float | None
    groups: int = 1


# Reference columns copied from the paper (Table 1: VGG-16, Table 3: ResNet-50); never used in a computation.
RECIPES: tuple[Recipe, ...] = (
    Recipe("VGG-16", "vgg16", None, 1.0, False, 138.34, 30.94),
    Recipe("ThiNet-Conv", "vgg16", "vgg16_conv", 0.5, False, 131.44, 9.58),
    Recipe("ThiNet-GAP", "vgg16", "vgg16_conv", 0.5, True, 8.32, 9.34),
    Recipe("ThiNet-Tiny", "vgg16", "vgg16_tiny", 0.25, True, 1.32, 2.01),
    # The journal's abstract gives ThiNet-Tiny with gcos 2.66 MB and no parameter or FLOP count.
    Recipe("ThiNet-Tiny gcos g=2", "vgg16", "vgg16_tiny", 0.25, True, None, None, groups=2),
    Recipe("ThiNet-Tiny gcos g=4", "vgg16", "vgg16_tiny", 0.25, True, None, None, groups=4),
    Recipe("ResNet-50", "resnet50_v1", None, 1.0, False, 25.56, 7.72),
    Recipe("ThiNet-70", "resnet50_v1", "resnet_bottleneck", 0.7, False, 16.94, 4.88),
    Recipe("ThiNet-50", "resnet50_v1", "resnet_bottleneck", 0.5, False, 12.38, 3.41),
    Recipe("ThiNet-30", "resnet50_v1", "resnet_bottleneck", 0.3, False, 8.66, 2.20),
)


def build_recipe(recipe: Recipe, device: str | torch.device = "meta") -> nn.Module:
    """The recipe's architecture, first channels kept.

    On the default "meta" device tensors have shapes but no storage: no weight is
    initialised or multiplied, which makes the table take seconds; the surgery is the same.
    """
    with torch.device(device):
        model = create_model(recipe.base, IMAGENET_CLASSES).eval()
    if recipe.gap:
        model = to_gap(model, IMAGENET_CLASSES)
    if recipe.strategy is not None:
        x = torch.zeros(TRACE_INPUT[recipe.base], device=device)
        steps = get_strategy(recipe.strategy)(model, recipe.keep_ratio, x)
        model = prune_with_first_channels(model, steps, x)
        if recipe.groups > 1:
            model = convert_model(model, recipe.groups, DATA_FREE_GROUPING, example_inputs=x)
    return model


def original_of(recipe: Recipe) -> Recipe:
    """The unpruned row of `recipe`'s base (VGG-16 for ThiNet-GAP), its speed-ups' reference."""
    return next(r for r in RECIPES if r.base == recipe.base and r.strategy is None and not r.gap)


def arch_table(names: list[str] | None = None, progress: Callable[[str], None] | None = None,
               device: str | torch.device = "meta", timing: TimingPlan | None = None) -> list[dict]:
    """Rows of ARCH_TABLE_COLUMNS for the recipes `names` (all by default); `params_M` in the paper's
    convention (no conv/linear biases), `params_with_biases_M` beside it; with `timing`, also
    ARCH_TIMING_COLUMNS, each row's original timed beside it."""
    known = [r.name for r in RECIPES]
    wanted = known if names is None else list(names)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise PruningError(f"unknown arch-table row(s) {unknown}; known: {', '.join(known)}")
    if timing is not None and timing.rows is not None and set(timing.rows) - set(known):
        raise PruningError(f"unknown timed row(s) {sorted(set(timing.rows) - set(known))}; known: {', '.join(known)}")
    counted = set(wanted) | ({original_of(r).name for r in RECIPES if r.name in wanted} if timing else set())
    rows = []
    for recipe in RECIPES:
        if recipe.name not in counted:
            continue
        if progress:
            progress(recipe.name)
        model = build_recipe(recipe, device)
        counts = model_counts(model, COUNT_INPUT_SIZE)
        rows.append({
            "model": recipe.name,
            "params_M": counts["params"] / 1e6,
            "params_with_biases_M": counts["params_with_biases"] / 1e6,
            "flops_B": counts["flops"] / 1e9,
            "size_MB": size_mb(counts["params"]),
            "paper_params_M": recipe.paper_params_M,
            "paper_flops_B": recipe.paper_flops_B,
        })
        del model
    if timing is not None:
        by_name = {r.name: r for r in RECIPES}
        rows = add_timing(rows, {r["model"]: original_of(by_name[r["model"]]).name for r in rows},
                          lambda name, on: build_recipe(by_name[name], on), timing, progress)
    return [row for row in rows if row["model"] in wanted]


RESNET_ROWS = tuple(r.name for r in RECIPES if r.base == "resnet50_v1")


def arch_layer_times(names: tuple[str, ...] = RESNET_ROWS, timing: TimingPlan | None = None) -> dict[str, dict]:
    """Forward ms by layer type (`thinet.runtime.layer_type_times`) of the rows `names`, interleaved:
    by default the original and the pruned ResNet-50s, to check §4.3's "BN and pooling > 40 %"."""
    by_name = {r.name: r for r in RECIPES}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise PruningError(f"unknown arch-table row(s) {unknown}; known: {', '.join(by_name)}")
    timing = timing or TimingPlan()
    torch.manual_seed(0)
    models = {name: build_recipe(by_name[name], timing.device) for name in names}
    return layer_type_times(models, (3, timing.image_size, timing.image_size), batch_size=timing.batch_size,
                            device=timing.device, rounds=timing.rounds)


COLUMNS = ARCH_TABLE_COLUMNS


def _columns(rows: list[dict]) -> tuple[str, ...]:
    return COLUMNS + (ARCH_TIMING_COLUMNS if rows and "forward_ms" in rows[0] else ())


def _cells(row: dict, columns: tuple[str, ...], digits: int) -> list[str]:
    return ["" if row[c] is None else row[c] if isinstance(row[c], str) else str(row[c])
            if isinstance(row[c], int) else f"{row[c]:.{digits}f}" for c in columns]


def format_csv(rows: list[dict]) -> str:
    """CSV with ARCH_TABLE_COLUMNS (and the timing columns when measured), 6 decimals: counts to the unit
    (M/B), so that differences to the paper are computed from exact counts, not from rounded ones."""
    columns = _columns(rows)
    return "\n".join([",".join(columns)] + [",".join(_cells(r, columns, 6)) for r in rows]) + "\n"


def format_markdown(rows: list[dict]) -> str:
    """The same table as a Markdown pipe table, 2 decimals (the paper's precision)."""
    columns = _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cells(r, columns, 2)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


FORMATS: dict[str, Callable[[list[dict]], str]] = {"csv": format_csv, "md": format_markdown}


def run_arch_table_job(out: str, timing: dict | None = None, device: str = "auto") -> None:
    """The workflow's arch-table job: `arch_table.csv`, timed when the config's `arch_timing` is set."""
    plan = timing_plan_of(timing, device)
    if plan is not None:
        log.info(plan.describe())
    write_text_atomic(out, format_csv(arch_table(progress=log.info, timing=plan)))
