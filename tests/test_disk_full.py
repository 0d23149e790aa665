"""A full disk under an atomic save: the error names the file and says the disk is full (issue 25, item 6).

torch.save given a path reports a full disk only as `[enforce fail at inline_container.cc:671] .
unexpected pos 576 vs 534` (measured on a 1 MiB tmpfs with torch 2.15), with no path and no errno.
"""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
import torch

from thinet.runtime import atomic_path, atomic_save, load_checkpoint
from thinet.runtime import _atomic

TORCH_FULL_DISK = "[enforce fail at inline_container.cc:671] . unexpected pos 576 vs 534"


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (needs root and mount); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:  # lazily when a failed writer still holds a file there
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_real_full_disk_names_the_file_and_says_it_is_full(tiny_disk):
    path = tiny_disk / "state.pt"
    atomic_save({"step": 1, "weights": torch.ones(1000)}, path)
    before = path.read_bytes()
    with pytest.raises(OSError) as caught:
        atomic_save({"step": 2, "weights": torch.zeros(500_000)}, path)  # 2 MB on a 1 MiB disk
    assert caught.value.errno == errno.ENOSPC
    assert str(path) in str(caught.value) and "the disk is full" in str(caught.value)
    assert path.read_bytes() == before and load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["state.pt"]  # no partial temporary file left


def _statvfs_with_free_blocks(blocks: int):
    real = os.statvfs

    class Full:
        def __init__(self, folder):
            stats = real(folder)
            self.f_frsize, self.f_bfree, self.f_bavail = stats.f_frsize, blocks, blocks

    return Full


def test_torchs_position_check_on_a_full_disk_becomes_a_disk_full_error(tmp_path, monkeypatch):
    # Where a writer hands torch a path (not atomic_save), the failed position check is all there is:
    # the free space decides.
    path = tmp_path / "model.pt"
    monkeypatch.setattr(_atomic.os, "statvfs", _statvfs_with_free_blocks(0))
    with pytest.raises(OSError) as caught, atomic_path(path) as tmp:
        Path(tmp).write_bytes(b"\0" * 512)
        raise RuntimeError(TORCH_FULL_DISK)
    assert caught.value.errno == errno.ENOSPC
    assert f"cannot write {path}: No space left on device: the disk is full" in str(caught.value)
    assert isinstance(caught.value.__cause__, RuntimeError)  # torch's own message kept as the cause
    assert list(tmp_path.iterdir()) == []


def test_torchs_position_check_with_room_left_names_the_file_without_blaming_the_disk(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    monkeypatch.setattr(_atomic.os, "statvfs", _statvfs_with_free_blocks(10**6))
    with pytest.raises(RuntimeError, match=f"cannot write {path}: .*inline_container") as caught, \
            atomic_path(path):
        raise RuntimeError(TORCH_FULL_DISK)
    assert "disk is full" not in str(caught.value)


def test_a_quota_error_names_the_file(tmp_path):
    path = tmp_path / "a.txt"
    with pytest.raises(OSError, match=f"cannot write {path}: Disk quota exceeded") as caught, atomic_path(path):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")
    assert caught.value.errno == errno.EDQUOT
