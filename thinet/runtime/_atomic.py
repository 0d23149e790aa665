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
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))
