"""Atomic file writes: the one implementation every writer of the project uses (DESIGN.md §9).

A file is written to a unique hidden temporary file in its own folder, flushed to disk, then renamed
over the target (`os.replace`, atomic on POSIX): a reader — or a rerun after kill -9 — sees either
the old file or the new one, never half of one. The temporary file is removed in a `finally` on any
exit that did not rename it (an exception, a full disk or file-size limit, Ctrl-C); one left behind by
a writer that was killed outright (kill -9) carries that writer's host and process id in its name,
and the next successful write of the same file removes it once that process is gone. It lives in
`occupancy/` because that is the lowest package that writes files (`labels.npz`, figures);
everything above imports it from here.

    with atomic_path("out/frames.npz") as tmp:      # any writer that wants a path
        np.savez_compressed(tmp, **arrays)
    write_json_atomic("out/results.json", results)
    out = check_output_dir(args.out)                # before any work: an output folder, not a file
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _temp_prefix(path: Path, pid: int | None = None) -> str:
    """`.<name>.<host>-<pid>.`: the temporary files of `path` written by one process."""
    return f".{path.name}.{_HOST_TAG}-{os.getpid() if pid is None else pid}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of `path` left by writers on this host that no longer run (killed
    outright mid-write); returns what was removed. Temporaries of live writers are kept."""
    path = Path(path)
    removed = []
    head = f".{path.name}.{_HOST_TAG}-"
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for p in siblings:
        if not (p.name.startswith(head) and p.name.endswith(".tmp")):
            continue
        pid_text = p.name[len(head) :].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (parents created); on a clean exit it is flushed and
    renamed to `path`, on any other exit it is removed (`finally`) and the exception propagates (an
    `OSError` — full disk, file-size limit — naming `path`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is None or Path(err.filename) == tmp:  # name the file being written, not the temporary
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)  # gone after a successful rename; the half-written file otherwise
    remove_orphans(path)


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


def check_output_dir(path: str | os.PathLike) -> Path:
    """`path` as an output folder, checked before any work: it may be missing (created when written
    to) or an existing folder; `ValueError` naming it when it is a file or lies below a file."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {path} is an existing file; choose a folder")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"output folder {path} cannot be created: {parent} is a file")
    return out


__all__ = [
    "atomic_path",
    "check_output_dir",
    "remove_orphans",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
