"""Atomic file output, the one way the suite writes results: write a temporary file
in the target folder, then os.replace it over the target. A run killed mid-write
leaves the previous file intact, never a torn one.

>>> import tempfile, os
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.txt")
>>> write_text_atomic(p, "hi"); open(p).read()
'hi'
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# Read once at import: the umask can only be read by setting it, which races with other threads.
_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds.

    The temporary file keeps `path`'s extension (or `suffix`), for writers that infer
    the format from it (matplotlib, torch.save).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix or os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # on disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)  # mkstemp's 0600 is for secrets, not results
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in _FULL:
            raise _disk_full(path, folder, err.errno) from err
        raise
    except RuntimeError as err:
        # torch.save given a path reports a full disk as a failed check, without errno:
        # "[enforce fail at inline_container.cc:671] . unexpected pos 1536 vs 1430".
        if not any(sign in str(err) for sign in _TORCH_WRITE_FAILED):
            raise
        if _free_bytes(folder) < _FULL_BELOW_BYTES:  # read before the partial file is removed
            raise _disk_full(path, folder, errno.ENOSPC) from err
        raise RuntimeError(f"cannot write {path}: {err}") from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


_FULL = {errno.ENOSPC: "No space left on device: the disk is full",
         errno.EDQUOT: "Disk quota exceeded: the disk quota of this user is full"}
_TORCH_WRITE_FAILED = ("inline_container.cc", "PytorchStreamWriter failed")
# A torch write that failed with less than this left free on the disk failed because the disk filled up.
_FULL_BELOW_BYTES = 1 << 20


def _free_bytes(folder: str) -> int:
    stats = os.statvfs(folder)
    # root may write into the blocks reserved for it; other users may not
    blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail
    return blocks * stats.f_frsize


def _disk_full(path: str, folder: str, code: int) -> OSError:
    """The error of a write that found no room: it names the file and says the disk is full."""
    try:
        free = f"{_free_bytes(folder) / 2**20:.1f} MiB free in {folder}"
    except OSError:
        free = "free space unknown"
    return OSError(code, f"cannot write {path}: {_FULL[code]} ({free}); free some space or point the "
                         f"output elsewhere, then rerun (the previous file, if any, is intact)")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))
