"""Atomic checkpoint files: write to a temporary file beside the target, then rename.

A run killed mid-write leaves the previous checkpoint intact, never a torn file.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
>>> atomic_save({"step": 3}, path)
>>> load_checkpoint(path)["step"]
3
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch


def _file_mode() -> int:
    """Mode a plainly created file would get (mkstemp's 0600 is for secrets, not results)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save(obj, path)`, atomically."""
    _atomic_write(path, lambda handle: torch.save(obj, handle), "wb")


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` as indented JSON, atomically."""
    _atomic_write(path, lambda handle: handle.write(json.dumps(obj, indent=2, sort_keys=True) + "\n"), "w")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint this suite wrote (whole pickled models, so not `weights_only`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    return torch.load(path, map_location=map_location, weights_only=False)
