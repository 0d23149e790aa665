"""What a pruning chain leaves in its work directory, and how a restart reads it back.

`chain.json` records the chain's settings; `step_XXX.pt` holds the whole model
after step XXX was pruned and fine-tuned. A restart with other settings is
refused, naming the first key that differs.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> check_or_write_manifest(d, {"criterion": "thinet", "steps": [{"keep_ratio": 0.5}]})
>>> check_or_write_manifest(d, {"criterion": "thinet", "steps": [{"keep_ratio": 0.3}]})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
thinet.types.PruningError: ... steps[0].keep_ratio=0.5 ...
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from thinet.runtime._checkpoint import atomic_write_json, load_checkpoint
from thinet.types import PruningError

MANIFEST = "chain.json"


def step_path(workdir: str | os.PathLike, index: int) -> Path:
    return Path(workdir) / f"step_{index:03d}.pt"


def finetune_path(workdir: str | os.PathLike, index: int, phase: int) -> Path:
    """The training checkpoint of fine-tuning phase `phase` of step `index` (removed when the step is saved)."""
    return Path(workdir) / f"step_{index:03d}.finetune{phase}.pt"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {f"{prefix}.length": len(value)}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def check_or_write_manifest(workdir: str | os.PathLike, settings: dict[str, Any]) -> None:
    """Write `chain.json`, or check that the one present holds the same settings."""
    path = Path(workdir) / MANIFEST
    new = json.loads(json.dumps(settings))  # the form it takes on disk (tuples -> lists)
    if not path.exists():
        atomic_write_json(new, path)
        return
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PruningError(f"{path} is not valid JSON ({err}); remove it to start the chain afresh") from None
    old_flat, new_flat = _flatten(old), _flatten(new)
    for key in sorted(set(old_flat) | set(new_flat)):
        if old_flat.get(key, "<absent>") != new_flat.get(key, "<absent>"):
            raise PruningError(
                f"{path} was written with {key}={old_flat.get(key, '<absent>')!r} but this run has "
                f"{key}={new_flat.get(key, '<absent>')!r}; use another work directory or remove it")


def latest_step(workdir: str | os.PathLike, num_steps: int) -> tuple[int, dict[str, Any] | None]:
    """(index, checkpoint) of the highest complete step checkpoint, or (-1, None)."""
    for index in range(num_steps - 1, -1, -1):
        path = step_path(workdir, index)
        if not path.exists():
            continue
        try:
            ckpt = load_checkpoint(path)
        except Exception as err:  # an unreadable file is skipped, never trusted
            print(f"prune_chain: ignoring unreadable {path}: {err}", file=sys.stderr)
            continue
        if isinstance(ckpt, dict) and ckpt.get("step") == index and ckpt.get("complete"):
            return index, ckpt
    return -1, None
