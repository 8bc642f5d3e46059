"""`drivewm eval <what>`: evaluations, one sub-subcommand each.

    drivewm eval open-loop ...     (drivewm.commands.eval_open_loop)
    drivewm eval closed-loop ...   (drivewm.commands.eval_closed_loop)
    drivewm eval relevance ...     (drivewm.commands.eval_relevance)

Each sub-subcommand lives in a module exposing `add_<name>_parser(eval_subparsers)`; register new
ones in `EVAL_COMMANDS`. The commands only parse arguments: the evaluations themselves live in
`drivewm.evaluation.<task>` (config, metrics, evaluate, render), and each writes results.json
(config, protocol, git commit, package versions), report.md and report.html.
"""

from __future__ import annotations

import argparse
import importlib

# sub-subcommand -> "module:function" registering it under `drivewm eval`
EVAL_COMMANDS: dict[str, str] = {
    "open-loop": "drivewm.commands.eval_open_loop:add_open_loop_parser",
    "closed-loop": "drivewm.commands.eval_closed_loop:add_closed_loop_parser",
    "relevance": "drivewm.commands.eval_relevance:add_relevance_parser",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate world models and agents (open-loop, closed-loop, ...)")
    evsub = p.add_subparsers(dest="eval_command", required=True)
    for target in EVAL_COMMANDS.values():
        module, func = target.split(":")
        getattr(importlib.import_module(module), func)(evsub)
