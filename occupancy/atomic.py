"""Atomic file writes: the one implementation every writer of the project uses (DESIGN.md §9).

A file is written to a unique hidden temporary file in its own folder, flushed to disk, then renamed
over the target (`os.replace`, atomic on POSIX): a reader — or a rerun after kill -9 — sees either
the old file or the new one, never half of one, and a failed write leaves no temporary file behind.
It lives in `occupancy/` because that is the lowest package that writes files (`labels.npz`,
figures); everything above imports it from here.

    with atomic_path("out/frames.npz") as tmp:      # any writer that wants a path
        np.savez_compressed(tmp, **arrays)
    write_json_atomic("out/results.json", results)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (parents created); on a clean exit it is flushed and
    renamed to `path`, on any exception it is removed and the exception propagates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically; return the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(
    path: str | os.PathLike, obj: object, indent: int | None = None, default: Callable[[Any], Any] | None = None
) -> Path:
    """Write `obj` as JSON to `path` atomically. `default` converts values JSON does not know (e.g.
    `str` for paths in a report); without it they raise `TypeError` and nothing is written."""
    return write_text_atomic(path, json.dumps(obj, indent=indent, default=default))


__all__ = ["atomic_path", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]
