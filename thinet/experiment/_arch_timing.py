"""The f./b. columns of Tables 1 and 3, data-free: forward/backward time of the paper's eight
architectures on the user's hardware, their speed-up against the original, and the FLOPs ratio.

Every row of one table is timed in the same run, interleaved (`thinet.runtime.time_models`), so
the speed-ups are comparable on a noisy machine. The paper timed a batch of 32 at 224×224 on one
M40 GPU; the CPU default is a smaller batch (`TimingPlan.for_device`), stated in every row.

    >>> plan = TimingPlan.for_device("cpu")
    >>> plan.batch_size, plan.image_size
    (8, 224)
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from thinet.experiment._jobs import device_label, resolve_device
from thinet.runtime import time_models
from thinet.types import ARCH_TIMING_COLUMNS

# The paper's forward/backward ms (batch 32, 224×224, one M40 GPU; Tables 1 and 3), never used
# in a computation except the paper's own speed-ups.
PAPER_MS: dict[str, tuple[float, float]] = {
    "VGG-16": (189.92, 407.56), "ThiNet-Conv": (76.71, 152.05), "ThiNet-GAP": (71.73, 145.51),
    "ThiNet-Tiny": (29.51, 55.83), "ResNet-50": (188.27, 269.32), "ThiNet-70": (169.38, 243.37),
    "ThiNet-50": (153.60, 212.29), "ThiNet-30": (144.45, 200.67),
}
# Batch size of the timings when none is given: the paper's on CUDA, one that keeps the eight
# architectures to a few minutes on a 2-core CPU otherwise.
DEFAULT_BATCH = {"cuda": 32, "cpu": 8}
def timing_shape_problem(batch_size: int | None, image_size: int) -> str | None:
    """Why ResNet-50's BatchNorm cannot train at this batch and image size (one value per channel), else None.

    Its last stage is image_size / 32 wide and the backward pass is timed in train mode.

    >>> timing_shape_problem(1, 32)[:40]
    'batch_size 1 at image_size 32 leaves Res'
    >>> timing_shape_problem(2, 32) is None, timing_shape_problem(None, 32) is None
    (True, True)
    """
    side = math.ceil(image_size / 32)
    if batch_size is None or batch_size * side * side > 1:
        return None
    return (f"batch_size {batch_size} at image_size {image_size} leaves ResNet-50's last BatchNorm one value per "
            f"channel ({side}x{side} maps, one image), which cannot train for the backward pass: use batch_size >= 2, "
            f"image_size >= 33, or rows without the ResNet-50 family")


@dataclass(frozen=True)
class TimingPlan:
    """How the timing columns are measured: device, batch, square image side, interleaved rounds,
    the Timer's `min_run_time` per measurement (s), threads (None: torch's), AMP and channels-last, and
    which rows (None: all; the others keep empty timing cells)."""

    device: str = "cpu"
    batch_size: int = DEFAULT_BATCH["cpu"]
    image_size: int = 224
    rounds: int = 5
    min_run_time: float = 0.2
    threads: int | None = None
    amp: bool = False
    channels_last: bool = False
    rows: tuple[str, ...] | None = None

    @classmethod
    def for_device(cls, device: str, batch_size: int | None = None, **options) -> TimingPlan:
        """The plan for `device` with its default batch unless `batch_size` is given."""
        kind = torch.device(device).type
        return cls(device=device, batch_size=batch_size or DEFAULT_BATCH.get(kind, DEFAULT_BATCH["cpu"]), **options)

    def describe(self) -> str:
        """One line stating the setting, for the output (the paper's beside it)."""
        precision = "AMP" if self.amp else "fp32"
        layout = ", channels-last" if self.channels_last else ""
        threads = self.threads or torch.get_num_threads()
        return (f"timing: {self.device}, batch {self.batch_size}, {self.image_size}x{self.image_size}, "
                f"{threads} thread(s), {precision}{layout}, median (IQR) of {self.rounds} interleaved rounds of "
                f"torch.utils.benchmark blocked_autorange; paper: one M40 GPU, batch 32, 224x224")


def add_timing(rows: list[dict], originals: dict[str, str], build: Callable[[str, str], torch.nn.Module],
               plan: TimingPlan, progress: Callable[[str], None] | None = None) -> list[dict]:
    """`rows` with the timing columns (ARCH_TIMING_COLUMNS) added; `originals` maps each row's model
    to its original's (timed too when not a row), `build(name, device)` builds one architecture."""
    asked = [r["model"] for r in rows if plan.rows is None or r["model"] in plan.rows]
    names = list(dict.fromkeys(asked + [originals[name] for name in asked]))  # originals timed too
    problem = "ResNet-50" in names and timing_shape_problem(plan.batch_size, plan.image_size)
    if problem:  # before any network is built
        raise ValueError(f"timing: {problem}")
    timed_rows = [r for r in rows if r["model"] in names]
    device = resolve_device(plan.device, "timing device")
    torch.manual_seed(0)
    models = {name: build(name, plan.device) for name in names}
    times = time_models(models, (3, plan.image_size, plan.image_size), batch_size=plan.batch_size,
                        device=device, rounds=plan.rounds, min_run_time=plan.min_run_time, threads=plan.threads,
                        channels_last=plan.channels_last, amp=plan.amp, progress=progress)
    del models
    flops = {r["model"]: r["flops_B"] for r in rows}
    out = []
    for row in rows:
        if row not in timed_rows:
            out.append({**row, **dict.fromkeys(ARCH_TIMING_COLUMNS)})
            continue
        name, original = row["model"], originals[row["model"]]
        mine, base = times[name], times[original]
        # Rows the paper has no time for (the gcos reconstructions) get none: NaN, never a made-up number.
        paper_f, paper_b = PAPER_MS.get(name, (math.nan, math.nan))
        out.append({
            **row,
            "flops_ratio": flops[original] / row["flops_B"] if original in flops else float("nan"),
            "forward_ms": mine["forward_ms"], "forward_iqr_ms": mine["forward_iqr_ms"],
            "backward_ms": mine["backward_ms"], "backward_iqr_ms": mine["backward_iqr_ms"],
            "forward_speedup": base["forward_ms"] / mine["forward_ms"],
            "backward_speedup": base["backward_ms"] / mine["backward_ms"],
            "paper_forward_ms": paper_f, "paper_backward_ms": paper_b,
            "paper_forward_speedup": PAPER_MS.get(original, (math.nan,))[0] / paper_f,
            "paper_backward_speedup": PAPER_MS.get(original, (math.nan, math.nan))[1] / paper_b,
            "timing_device": device_label(device), "timing_batch_size": plan.batch_size,
            "timing_image_size": plan.image_size, "timing_threads": mine["threads"],
            "timing_amp": int(plan.amp), "timing_channels_last": int(plan.channels_last),
        })
    return out


def format_breakdown(times: dict[str, dict[str, float]], plan: TimingPlan) -> str:
    """Markdown table of `layer_type_times` output: ms per layer type and its share of the pass.

    >>> print(format_breakdown({"m": {"conv": 3.0, "bn": 1.0, "total": 4.0}}, TimingPlan()).splitlines()[3])
    | m | 3.00 (75%) | 1.00 (25%) | 4.00 |
    """
    kinds = [k for k in next(iter(times.values())) if k != "total"]
    setting = (f"{plan.device}, batch {plan.batch_size}, {plan.image_size}x{plan.image_size}, "
               f"{plan.threads or torch.get_num_threads()} thread(s), fp32, median of {plan.rounds} interleaved passes")
    lines = [f"Forward time by layer type (module hooks), ms (share of the pass); {setting}",
             "| model | " + " | ".join(kinds) + " | total |", "|" + " --- |" * (len(kinds) + 2)]
    for name, spent in times.items():
        cells = [f"{spent[k]:.2f} ({100 * spent[k] / spent['total']:.0f}%)" for k in kinds]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {spent['total']:.2f} |")
    return "\n".join(lines) + "\n"


def timing_plan_of(config_timing: dict | None, device: str) -> TimingPlan | None:
    """The plan of the workflow's `arch_timing` config key on the config's `device` (None: not timed).

    >>> timing_plan_of({"batch_size": None, "image_size": 64, "rounds": 2}, "cpu").batch_size
    8
    """
    if config_timing is None:
        return None
    resolved = resolve_device(device, "config key 'device'")
    options = {k: tuple(v) if k == "rows" and v is not None else v for k, v in config_timing.items()
               if k != "batch_size"}
    return TimingPlan.for_device(str(resolved), config_timing.get("batch_size"), **options)
