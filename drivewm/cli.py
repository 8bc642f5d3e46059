"""The `drivewm` command line: one vocabulary everywhere (DESIGN.md §5).

Each top-level command lives in its own module under `drivewm/commands/` exposing
`add_parser(subparsers)`; the module sets `func` on its parser. `drivewm fit` hands its
arguments to LightningCLI unchanged.

One error boundary (`run_guarded`) serves every command: a failure the user can act on — a bad
flag, a missing, unreadable or corrupt file, a full disk, an unreachable or wrong server — ends as
ONE line `drivewm <command>: error: <what, naming the file or flag>` on stderr and exit status 2;
anything else (a bug) as one line `drivewm <command>: internal error: …` and exit status 1; Ctrl-C
as `interrupted` and 130. `--debug` (anywhere on the command line) shows the traceback instead.
Argument values are typed (`drivewm.commands.args`): a bad number, port or path is refused while
parsing, in one line naming the flag.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pickle
import sys
import zipfile
from collections.abc import Callable
from typing import NoReturn

# command name -> module implementing it (imported lazily, so `drivewm --help` is fast)
COMMANDS: dict[str, str] = {
    "data": "drivewm.commands.data",
    "demo": "drivewm.commands.demo",
    "eval": "drivewm.commands.evaluate",
    "fit": "drivewm.commands.fit",
    "routes": "drivewm.commands.routes",
    "sim": "drivewm.commands.sim",
}

DEBUG_FLAG = "--debug"


class UserError(Exception):
    """An error the user can act on: printed as one line, exit status 2, no traceback."""


EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    argparse.ArgumentError,  # a bad option of `drivewm fit` (LightningCLI / jsonargparse)
    OSError,  # missing/unreadable/unwritable files, full disk, file-size limit, refused or unreachable servers
    ValueError,  # bad values and corrupt files (JSONDecodeError, UnicodeDecodeError included)
    EOFError,  # truncated files
    zipfile.BadZipFile,  # corrupt .npz / torch checkpoints
    pickle.UnpicklingError,  # corrupt or unsafe pickles
    MemoryError,
)
"""Failures caused by the input or the environment: one line, exit status 2."""

ERROR_STATUS = 2
INTERNAL_ERROR_STATUS = 1
INTERRUPTED_STATUS = 130

_OS_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EFBIG: "the file-size limit was reached (ulimit -f) or the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EACCES: "permission denied",
    errno.EROFS: "the file system is read-only",
}


def describe_error(err: BaseException) -> str:
    """One line saying what went wrong, naming the file for OS errors (`strerror: filename`)."""
    if isinstance(err, OSError) and err.strerror:
        text = err.strerror
        names = [str(n) for n in (err.filename, err.filename2) if n is not None]
        if names:
            text = f"{text}: {' -> '.join(names)}"
        hint = _OS_HINTS.get(err.errno or 0)
        if hint and hint.lower() not in text.lower():
            text = f"{text} ({hint})"
    else:
        text = str(err).strip() or type(err).__name__
        if isinstance(err, KeyError | EOFError | MemoryError):
            text = f"{type(err).__name__}: {text}"
    return " ".join(text.split())  # one line


def run_guarded(label: str, command: Callable[[], int | None], debug: bool = False) -> int:
    """Run `command` and return its exit status, turning every exception into one line on stderr
    (see the module docstring); with `debug` exceptions propagate with their traceback."""
    if debug:
        return int(command() or 0)
    try:
        return int(command() or 0)
    except KeyboardInterrupt:
        print(f"drivewm {label}: interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS
    except EXPECTED_ERRORS as err:
        print(f"drivewm {label}: error: {describe_error(err)}", file=sys.stderr)
        return ERROR_STATUS
    except Exception as err:
        print(
            f"drivewm {label}: internal error: {type(err).__name__}: {describe_error(err)} "
            f"(a bug; rerun with {DEBUG_FLAG} for the traceback)",
            file=sys.stderr,
        )
        return INTERNAL_ERROR_STATUS


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line (`drivewm eval closed-loop: error: argument
    --port: …; see --help`), exit status 2; its subparsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        self.exit(ERROR_STATUS, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="drivewm", description=__doc__.splitlines()[0])
    parser.add_argument(DEBUG_FLAG, action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    argv = [a for a in argv if a != DEBUG_FLAG]
    if argv and argv[0] == "fit" and "fit" in COMMANDS:
        return int(importlib.import_module(COMMANDS["fit"]).run_fit(argv[1:], debug=debug) or 0)
    args = build_parser().parse_args(argv)
    label = " ".join(
        str(part)
        for part in (
            args.command,
            getattr(args, "eval_command", None) or getattr(args, "data_command", None),
            getattr(args, "sim_command", None),
        )
        if part
    )
    return run_guarded(label, lambda: args.func(args), debug=debug)


if __name__ == "__main__":  # `python -m drivewm.cli`: run the imported module, so its error classes are the ones raised
    from drivewm.cli import main as _main

    sys.exit(_main())
