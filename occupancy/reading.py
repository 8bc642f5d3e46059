"""Reading a dataset's files so that every failure names the file: the readers the dataset loader
(`drivewm.data`) and the dataset check (`carla_bridge.recorder.check`) share, so the check opens
each file exactly as training will.

A truncated JPEG, a corrupt JSON or `.npz`, a missing key: each becomes a `CorruptFileError` (a
`ValueError`) saying which file and why, instead of a library's bare message ("image file is
truncated", "Expecting value: line 1 column 1", "Bad CRC-32") that names nothing. Missing files and
permission errors stay `OSError`s, which carry their file name.

    data = read_json(path, "route file")
    arrays = load_npz(path, "branch file", keys=("ego", "collision"))
    image, (w, h) = decode_image(path, "camera image")    # fully decoded RGB + the file's size
    with reading(path, "labels"):                        # any other reader
        ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


class CorruptFileError(ValueError):
    """A file exists but cannot be read as what it should be (the message names it)."""


@contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn any failure inside the block into a `CorruptFileError` naming `what` and `path`; OS errors
    that name their file (missing, permission) and errors already naming `path` pass unchanged."""
    try:
        yield
    except CorruptFileError:
        raise
    except OSError as err:
        if err.filename is not None:
            raise
        raise CorruptFileError(f"{what} {path} is unreadable: {_reason(err)}") from err
    except Exception as err:
        if str(path) in str(err):
            raise
        raise CorruptFileError(f"{what} {path} is corrupt: {_reason(err)}") from err


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """The parsed content of a JSON file."""
    with reading(path, what):
        return json.loads(Path(path).read_bytes())


def find_corrupt_json(folder: str | os.PathLike, what: str = "JSON file") -> None:
    """`CorruptFileError` naming the first `*.json` in `folder` that does not parse (None if all do):
    for libraries that load a folder of JSON files and fail without naming the file (the devkit)."""
    for path in sorted(Path(folder).glob("*.json")):
        read_json(path, what)


def load_npz(
    path: str | os.PathLike, what: str = "npz file", keys: Sequence[str] | None = None, optional: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """Every array of an `.npz` (or the named `keys`, plus the `optional` ones present), decompressed
    now, so a damaged member fails here and not in the middle of training. No pickles."""
    with reading(path, what), np.load(path, allow_pickle=False) as z:
        names = list(z.files) if keys is None else [*keys, *(k for k in optional if k in z.files)]
        missing = [k for k in names if k not in z.files]
        if missing:
            raise CorruptFileError(f"{what} {path} lacks the field(s) {missing} (has {sorted(z.files)})")
        return {k: z[k] for k in names}


def decode_image(
    path: str | os.PathLike, what: str = "image", draft: tuple[int, int] | None = None
) -> tuple[Any, tuple[int, int]]:
    """(fully decoded RGB `PIL.Image`, the file's own (width, height)); a truncated or corrupt file
    fails here. `draft` (w, h) lets a JPEG decode at a reduced size not below it (fast, as the
    dataset loader reads)."""
    from PIL import Image

    with reading(path, what), Image.open(path) as im:
        size = im.size
        if draft is not None:
            im.draft("RGB", draft)
        rgb = im.convert("RGB")
        rgb.load()
        return rgb, size


__all__ = ["CorruptFileError", "decode_image", "find_corrupt_json", "load_npz", "read_json", "reading"]
