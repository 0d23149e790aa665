"""Reading and writing IDX files (the MNIST/Fashion-MNIST format), gzipped or not."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from thinet.runtime import write_bytes_atomic

_UBYTE = 0x08


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an unsigned-byte IDX file of `ndim` dimensions; errors name the file.

    >>> read_idx(Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"), 1).shape  # doctest: +SKIP
    (10000,)
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"cannot read IDX file {path}: {err} (corrupt or truncated download?)") from err
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path} is truncated: {len(raw)} bytes, shorter than its {header}-byte header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or raw[3] != ndim:
        raise ValueError(f"IDX file {path} has magic number 0x{raw[:4].hex()}, expected 0x000008{ndim:02x} "
                         f"(unsigned bytes, {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise ValueError(f"IDX file {path} has {len(raw)} bytes but its header {dims} implies {expected} "
                         "(truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as IDX, gzipped when `path` ends in .gz (atomically)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    raw = header + array.tobytes()
    # mtime=0 keeps gzip output byte-identical for the same array.
    data = gzip.compress(raw, mtime=0) if Path(path).suffix == ".gz" else raw
    write_bytes_atomic(Path(path), data)
