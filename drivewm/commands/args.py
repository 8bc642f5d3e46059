"""Typed argument values shared by every `drivewm` command: a bad value is refused while the command
line is parsed, in one line naming the flag (`argparse` prefixes "argument --port: "), before any
work starts.

    p.add_argument("--port", type=port, default=2000)
    p.add_argument("--workers", type=positive_int, default=1)
    p.add_argument("--out", type=output_dir, required=True)

Each type is a plain function `str -> value` that raises `argparse.ArgumentTypeError` with the
reason; numbers must be finite (no nan/inf). Path types return the text unchanged once it passed
(commands record their arguments as JSON). Paths are checked for their kind (a folder where a file
belongs, a file where a folder belongs), never created: an output folder is made when the command
writes to it, and an input's existence is checked when the command starts.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

PORT_RANGE = (1, 65535)


def number(kind: type, low: float | None = None, high: float | None = None, above: float | None = None):
    """An argument type: a finite `kind` (int or float) with `low ≤ value ≤ high` and `value > above`
    (each bound optional). The reason names the range."""
    parts = [f"≥ {low:g}"] if low is not None else []
    parts += [f"> {above:g}"] if above is not None else []
    parts += [f"≤ {high:g}"] if high is not None else []
    noun = "an integer" if kind is int else "a number"
    what = f"{noun} {' and '.join(parts)}".strip()

    def parse(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if (
            (low is not None and value < low)
            or (high is not None and value > high)
            or (above is not None and not value > above)
        ):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


positive_int = number(int, low=1)
"""An integer ≥ 1 (counts: workers, scenes, batch size)."""
non_negative_int = number(int, low=0)
"""An integer ≥ 0 (seeds, optional counts where 0 means none/all)."""
positive_float = number(float, above=0)
"""A finite number > 0 (timeouts, lengths, durations)."""
non_negative_float = number(float, low=0)
"""A finite number ≥ 0 (intervals where 0 means off)."""
fraction = number(float, low=0, high=1)
"""A finite number in [0, 1]."""


def in_range(low: float, high: float) -> Callable[[str], float]:
    """A finite number in [low, high] (e.g. a replan rate of 2–10 Hz)."""
    return number(float, low=low, high=high)


def port(text: str) -> int:
    """A TCP port, 1–65535."""
    try:
        return number(int, low=PORT_RANGE[0], high=PORT_RANGE[1])(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a TCP port in {PORT_RANGE[0]}–{PORT_RANGE[1]}, got {text!r}"
        ) from None


def host(text: str) -> str:
    """A host name or address (non-empty, no spaces, no scheme or port); whether it resolves is checked
    when the command connects."""
    value = text.strip()
    if not value or any(c.isspace() for c in value) or "://" in value or "/" in value:
        raise argparse.ArgumentTypeError(f"expected a host name or IP address, got {text!r}")
    return value


def device(text: str) -> str:
    """A torch device that exists here: `cpu`, `cuda`, `cuda:1`, `mps` …"""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu or cuda:0, got {text!r}") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise argparse.ArgumentTypeError(f"{text}: no such CUDA device here ({torch.cuda.device_count()} available)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available here")
    return text


def size_wxh(text: str) -> tuple[int, int]:
    """`WIDTHxHEIGHT` in pixels, each ≥ 8 (e.g. 400x225)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 400x225, got {text!r}") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"width and height must be at least 8 pixels, got {text!r}")
    return w, h


def input_file(text: str) -> str:
    """A file to read: refused when it is a folder (or unreadable). Whether it exists is checked when the
    command starts — in one line naming it — because a pipeline (the demo) parses its later steps
    before the earlier ones have written their inputs."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, expected a file")
    if path.exists() and not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} is not readable")
    return text


def input_dir(text: str) -> str:
    """A folder to read: refused when it is a file. Whether it exists is checked when the command
    starts (see `input_file`)."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, expected a folder")
    return text


def output_dir(text: str) -> str:
    """A folder to write into: missing (it is created when written to) or an existing folder, never a
    file, and not below a file."""
    from occupancy.atomic import check_output_dir

    try:
        check_output_dir(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def output_file(text: str) -> str:
    """A file to write: not an existing folder, and its folder is not a file."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, expected a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: {parent} is a file, not a folder")
    return text


def name_list(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (at least one), e.g. `Town01,Town02`."""
    names = tuple(t.strip() for t in (text or "").split(",") if t.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, e.g. a,b; got {text!r}")
    return names


__all__ = [
    "device",
    "fraction",
    "host",
    "in_range",
    "input_dir",
    "input_file",
    "name_list",
    "non_negative_float",
    "non_negative_int",
    "number",
    "output_dir",
    "output_file",
    "port",
    "positive_float",
    "positive_int",
    "size_wxh",
]
