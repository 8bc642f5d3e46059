"""`drivewm eval relevance`: does a world model's future rank candidate plans like their simulated truth?

    drivewm eval relevance --model cv-gt,empty,oracle [--ckpt CKPT] [--no-plan-conditioning]
        --towns Town03 --scenes 20 [--protocol relevance-v1] --out reports/relevance [--seed S]

Writes <out>/results.json (config, protocol, seed, git commit, package versions, per-scene records),
<out>/report.md, <out>/report.html and BEV figures in <out>/figures/ (see
`drivewm.evaluation.relevance`). `drivewm` gives two rows, with and without plan conditioning
(`--no-plan-conditioning`: only the latter). The protocol's settings (plans, traffic, thresholds) come
from its frozen file; the flags marked "overrides the protocol" change them for this run only, and the
report says so.
"""

from __future__ import annotations

import argparse
import logging
import sys

from drivewm.commands.args import (
    device,
    fraction,
    input_file,
    name_list,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
)

OVERRIDES = {
    "plans": "plans",
    "vehicles": "num_vehicles",
    "pedestrians": "num_pedestrians",
    "unsafe_fraction": "unsafe_fraction",
    "oracle_dt": "oracle_dt",
}
"""Flags (argparse dest) that override a protocol field (RelevanceConfig name)."""


def add_relevance_parser(eval_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `relevance` under `drivewm eval`."""
    from drivewm.evaluation.relevance import DEFAULT_PROTOCOL, MODEL_NAMES, RelevanceConfig

    p = eval_subparsers.add_parser(
        "relevance",
        help="action relevance: rank candidate plans with a world model vs their simulated truth",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "--model", type=name_list, required=True, help=f"comma-separated world models: {', '.join(MODEL_NAMES)}"
    )
    p.add_argument("--ckpt", type=input_file, default=None, help="trained checkpoint (drivewm, cv)")
    p.add_argument(
        "--no-plan-conditioning",
        action="store_true",
        help="evaluate the learned model only with its plan pathway off (default: both rows)",
    )
    p.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        help=f"frozen evaluation protocol: {', '.join(RelevanceConfig.protocols())} (default {DEFAULT_PROTOCOL})",
    )
    p.add_argument("--towns", type=name_list, default=("Town03",), help="comma-separated (held-out) towns")
    p.add_argument("--scenes", type=positive_int, default=20, help="number of scenes")
    p.add_argument("--seed", type=non_negative_int, default=0, help="global seed (scene i uses (seed, i))")
    p.add_argument(
        "--plans", type=positive_int, default=None, help="candidate plans per scene, ≥ 4 (overrides the protocol)"
    )
    p.add_argument(
        "--vehicles", type=non_negative_int, default=None, help="background vehicles (overrides the protocol)"
    )
    p.add_argument("--pedestrians", type=non_negative_int, default=None, help="pedestrians (overrides the protocol)")
    p.add_argument(
        "--unsafe-fraction",
        type=fraction,
        default=None,
        help="share of plans built to be unsafe (overrides the protocol)",
    )
    p.add_argument(
        "--oracle-dt",
        type=positive_float,
        default=None,
        help="branch step of the simulated truth [s] (overrides the protocol)",
    )
    p.add_argument("--figures", type=non_negative_int, default=4, help="scenes drawn in the report")
    p.add_argument("--latency-repeats", type=positive_int, default=3, help="timed repeats per model and N")
    p.add_argument("--device", type=device, default="cpu", help="torch device of the learned model")
    p.add_argument("--out", type=output_dir, required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same config")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the evaluation from parsed arguments (bad input: `drivewm.cli` prints one line, exit 2)."""
    from drivewm.evaluation.relevance import RelevanceConfig, evaluate_relevance, report_table

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = {field: getattr(args, dest) for dest, field in OVERRIDES.items() if getattr(args, dest) is not None}
    cfg = RelevanceConfig.from_protocol(
        args.protocol,
        towns=tuple(args.towns),
        scenes=args.scenes,
        models=tuple(args.model),
        ckpt=None if args.ckpt is None else str(args.ckpt),
        plan_conditioning=not args.no_plan_conditioning,
        seed=args.seed,
        figures=args.figures,
        latency_repeats=args.latency_repeats,
        device=args.device,
        **overrides,
    ).validate()
    results = evaluate_relevance(
        cfg, args.out, progress=lambda m: print(m, file=sys.stderr, flush=True), resume=args.resume
    )
    head, rows = report_table(results)
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(r))
    print(f"report: {args.out}/report.html")
    return 0
