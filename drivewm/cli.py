"""The `drivewm` command line: one vocabulary everywhere (DESIGN.md §5).

Each top-level command lives in its own module under `drivewm/commands/` exposing
`add_parser(subparsers)`; the module sets `func` on its parser. `drivewm fit` hands its
arguments to LightningCLI unchanged.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

# command name -> module implementing it (imported lazily, so `drivewm --help` is fast)
COMMANDS: dict[str, str] = {
    "data": "drivewm.commands.data",
    "demo": "drivewm.commands.demo",
    "eval": "drivewm.commands.evaluate",
    "fit": "drivewm.commands.fit",
    "sim": "drivewm.commands.sim",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drivewm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


class UserError(Exception):
    """An error the user can act on: printed as one line, exit status 2, no traceback."""


EXPECTED_ERRORS: tuple[type[Exception], ...] = (UserError, FileNotFoundError, ValueError)
"""Failures caused by the input (a bad flag, a missing or corrupt file): one line, exit status 2."""

ERROR_STATUS = 2


def run_guarded(label: str, command: Callable[[], int | None]) -> int:
    """Run `command` and return its exit status; an expected error (`EXPECTED_ERRORS`) is printed
    as the one line `drivewm <label>: error: <message>` and gives `ERROR_STATUS`."""
    try:
        return int(command() or 0)
    except EXPECTED_ERRORS as err:
        print(f"drivewm {label}: error: {err}", file=sys.stderr)
        return ERROR_STATUS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fit" and "fit" in COMMANDS:
        return int(importlib.import_module(COMMANDS["fit"]).run_fit(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    label = " ".join(str(part) for part in (args.command, getattr(args, "eval_command", None)) if part)
    return run_guarded(label, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
