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
from pathlib import Path
from typing import Any

import torch

from thinet.runtime._atomic import atomic_path, write_text_atomic


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save(obj, path)`, atomically; a full disk is an OSError(ENOSPC) naming `path`."""
    # Through a Python file object: its write reports ENOSPC with errno, where torch's own file
    # writer only fails a position check ("enforce fail at inline_container.cc ... unexpected pos").
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint this suite wrote (whole pickled models, so not `weights_only`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    return torch.load(path, map_location=map_location, weights_only=False)
