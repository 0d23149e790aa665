"""`thinet bench startup`: what a command and a workflow job pay before their first useful work, each
as a ratio to `python -c "import torch"`, measured side by side in one run.

Every command runs in a fresh process: once untimed (it fills the page cache and, for a job, creates
its MLflow store), then `runs` rounds in which every command runs once, in turn, so that a machine
slowing down or speeding up during the benchmark moves every command alike; each command's minimum
over the rounds is reported, and its ratio to the minimum of `import torch`.

The commands:

- `import torch`, the unit;
- `import torch` and one `torch.optim.SGD`: the floor of every job that trains. Building an optimizer
  imports `torch._dynamo` (`Optimizer.add_param_group` is wrapped by `torch._disable_dynamo`), the
  same seconds `import torchvision` spends in `torchvision.ops`;
- `import torch` and `import torch_pruning`: the floor of a chain job, which cuts (Torch-Pruning's
  dependency graph) before it trains. `torch_pruning` imports timm (its op counter), timm imports
  torchvision, torchvision imports `torch._dynamo`: the optimizer's import is already paid there.
  Both floors end with `os._exit`, as the probe ends the job, so that neither counts the interpreter's
  teardown (the unit, `python -c "import torch"`, does: the issue's definition);
- `thinet criteria` and `thinet --help`, the console script;
- the pruning chain job, `workflow/scripts/prune_chain.py` with the smoke config's
  `vgg_criteria-thinet-r0.5-s0` on a Fashion-MNIST fixture of 4 images per class (an untrained base, the
  data manifest and the selection subset made by the workflow's own job functions), on the CPU, from
  process start to its first training step: a global optimizer step pre-hook ends the process there.
  That covers its imports, spec, model, plan, loaders and tracker, and the first layer's selection, cut
  and evaluation (milliseconds on this model; the fixture's data loading too). Once with MLflow off,
  once on (a sqlite store in the temporary folder), each round in a fresh work folder.

>>> print(startup_markdown({"runs": 5, "rows": [
...     {"command": "thinet --help", "seconds": 1.9, "ratio": 1.06, "target": COMMAND_TARGET}]}))
| command | seconds (min) | × import torch | target |
| --- | ---: | ---: | --- |
| thinet --help | 1.90 | 1.06 | ≤ 1.5: meets |
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Issue 30: at most these multiples of `import torch`.
COMMAND_TARGET = 1.5
JOB_TARGET = 1.6
CHAIN_RUN = "vgg_criteria-thinet-r0.5-s0"
FIXTURE_PER_CLASS = 4
# The exit status of a job the probe ended at its first training step.
FIRST_STEP_EXIT = 86
_PROBE = f"""
import os, runpy, sys
from torch.optim.optimizer import register_optimizer_step_pre_hook
register_optimizer_step_pre_hook(lambda *_: os._exit({FIRST_STEP_EXIT}))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
# The floors end as the probe ends the job, by os._exit: interpreter teardown (0.4-0.9 s here, more the
# more modules are loaded) is not start-up, and the job skips it.
_SGD = "import os, torch; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1); os._exit(0)"
_TORCH_PRUNING = "import os, torch, torch_pruning; os._exit(0)"


@dataclass
class _Command:
    label: str
    argv: Callable[[int], list[str]]  # by round (a job gets a fresh work folder each time)
    target: float | None = None
    status: int = 0


def repository() -> Path:
    """The clone this package runs from (the job's script and the smoke config live there)."""
    return Path(__file__).resolve().parents[2]


def thinet_command() -> list[str]:
    """The `thinet` console script beside this Python, else `python -m thinet`."""
    script = Path(sys.executable).with_name("thinet")
    if script.is_file():
        return [str(script)]
    found = shutil.which("thinet")
    return [found] if found else [sys.executable, "-m", "thinet"]


def _commands(job: Callable[[bool, int], list[str]] | None) -> list[_Command]:
    thinet = thinet_command()
    commands = [
        _Command('python -c "import torch"', lambda _: [sys.executable, "-c", "import torch"]),
        _Command("import torch + one SGD optimizer, no teardown (a training job's floor)",
                 lambda _: [sys.executable, "-c", _SGD]),
        _Command("import torch + torch_pruning, no teardown (a chain job's floor)",
                 lambda _: [sys.executable, "-c", _TORCH_PRUNING]),
        _Command("thinet criteria", lambda _: [*thinet, "criteria"], COMMAND_TARGET),
        _Command("thinet --help", lambda _: [*thinet, "--help"], COMMAND_TARGET),
    ]
    if job is not None:
        commands += [
            _Command("chain job to its first training step, MLflow off", lambda i: job(False, i), JOB_TARGET,
                     FIRST_STEP_EXIT),
            _Command("chain job to its first training step, MLflow on", lambda i: job(True, i), JOB_TARGET,
                     FIRST_STEP_EXIT),
        ]
    return commands


def prepare_chain_job(work: Path) -> Callable[[bool, int], list[str]]:
    """Lay out a chain job of the smoke config in `work` (fixture, manifest, selection, base model) and
    return `argv(mlflow, round)`: its command line, writing a spec with a work folder of its own."""
    from thinet.data import get_dataset, make_fixture
    from dataclasses import replace

    from thinet.experiment import (
        DatasetSpec, RunSpec, SelectionJobSpec, build_plan, build_run_model, load_config, run_prepare_data_job,
        run_selection_job, save_model,
    )

    repo = repository()
    script = repo / "workflow" / "scripts" / "prune_chain.py"
    if not script.is_file():
        raise FileNotFoundError(f"thinet bench startup times the workflow's job {script}: run it from a clone")
    root = make_fixture("fashion_mnist", work / "fmnist", per_class=FIXTURE_PER_CLASS, seed=0)
    config = load_config([repo / "config" / "smoke.yaml"], repo / "workflow" / "schemas" / "config.schema.yaml",
                         {"name": "bench_startup", "datasets": {"fashion_mnist": {"root": str(root)}}})
    plan = build_plan(config)
    run = plan.runs[CHAIN_RUN]
    dataset = {"name": run["dataset"], **config["datasets"][run["dataset"]]}
    manifest = work / "data.json"
    run_prepare_data_job(DatasetSpec.from_dict(dataset), manifest, workers=1)
    selection = work / "selection.json"
    run_selection_job(SelectionJobSpec.from_dict({**plan.selections[run["selection"]], "root": str(root),
                                                  "manifest": str(manifest), "image_size": dataset.get("image_size")}),
                      selection)
    base = plan.runs[run["after"]]
    data = get_dataset(run["dataset"], "train", root=root, manifest=manifest)
    source = work / "base.pt"
    save_model(build_run_model(replace(RunSpec.from_dict(base), pretrained=False, checkpoint=None), data, None), source)

    def argv(mlflow: bool, round_: int) -> list[str]:
        out = work / f"{'on' if mlflow else 'off'}-{round_}"
        spec = {"config": config["name"], "run": run, "source": base, "dataset": dataset, "data": config["data"],
                "selection": config["selection"], "device": "cpu", "amp": config["amp"],
                "mlflow": {**config["mlflow"], "enabled": mlflow, "experiment": "thinet-bench-startup"},
                "output_dir": str(out), "manifest": str(manifest), "criteria_modules": config["criteria_modules"],
                "work_dir": str(out / "work")}
        out.mkdir(parents=True, exist_ok=True)
        (out / "spec.json").write_text(json.dumps(spec))
        return [sys.executable, "-c", _PROBE, str(script), "--spec", str(out / "spec.json"),
                "--selection", str(selection), "--source", str(source), "--out", str(out / "model.pt"),
                "--eval-out", str(out / "eval.csv"), "--threads", str(config["threads"]),
                "--checkpoint-minutes", str(config["checkpoint_minutes"]), "--log", str(out / "job.log")]

    return argv


def _timed(command: _Command, round_: int, cwd: Path, env: dict[str, str]) -> float:
    argv = command.argv(round_)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != command.status:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{command.label}: exit status {done.returncode}, expected {command.status}"
                           f"{' (the job ended before its first training step)' if done.returncode == 0 else ''}"
                           f":\n{tail}")
    return seconds


def run_startup_bench(runs: int = 5, *, jobs: bool = True, work: str | os.PathLike | None = None,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Each command's minimum wall seconds over `runs` rounds and its ratio to `import torch`'s.

    `jobs=False` leaves the chain job out (seconds instead of a minute). `work`: the folder the job's
    files go to (default: a temporary folder, removed after)."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    with tempfile.TemporaryDirectory(prefix="thinet-startup-") as tmp:
        folder = Path(work) if work is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        commands = _commands(prepare_chain_job(folder) if jobs else None)
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the store under `folder`
        best = {c.label: float("inf") for c in commands}
        for round_ in range(runs + 1):  # round 0 is the untimed warm-up
            for command in commands:
                seconds = _timed(command, round_, folder, env)
                if round_:
                    best[command.label] = min(best[command.label], seconds)
            if progress:
                progress(f"round {round_}/{runs}{' (warm-up, untimed)' if round_ == 0 else ''} done")
    unit = best[commands[0].label]
    rows = [{"command": c.label, "seconds": best[c.label], "ratio": best[c.label] / unit, "target": c.target}
            for c in commands]
    return {"runs": runs, "rows": rows}


def startup_markdown(result: dict[str, Any]) -> str:
    """The result as a markdown table: seconds, ratio to `import torch`, target and verdict."""
    lines = ["| command | seconds (min) | × import torch | target |", "| --- | ---: | ---: | --- |"]
    for row in result["rows"]:
        target = "" if row["target"] is None else (
            f"≤ {row['target']:.1f}: {'meets' if row['ratio'] <= row['target'] else 'misses'}")
        lines.append(f"| {row['command']} | {row['seconds']:.2f} | {row['ratio']:.2f} | {target} |")
    return "\n".join(lines)

