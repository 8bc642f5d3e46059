"""The `drivewm` command line: one vocabulary everywhere (DESIGN.md §5).

Each top-level command lives in its own module under `drivewm/commands/` exposing
`add_parser(subparsers)`; the module sets `func` on its parser. `drivewm fit` hands its
arguments to LightningCLI unchanged.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> module implementing it (imported lazily, so `drivewm --help` is fast)
COMMANDS: dict[str, str] = {
    "data": "drivewm.commands.data",
    "demo": "drivewm.commands.demo",
    "eval": "drivewm.commands.evaluate",
    "fit": "drivewm.commands.fit",
    "routes": "drivewm.commands.routes",
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fit" and "fit" in COMMANDS:
        return int(importlib.import_module(COMMANDS["fit"]).run_fit(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, FileNotFoundError, ValueError) as err:
        print(f"drivewm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
