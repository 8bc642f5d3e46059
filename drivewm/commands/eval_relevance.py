"""`drivewm eval relevance`: does a world model's future rank candidate plans like their simulated truth?

    drivewm eval relevance --model cv-gt,empty,oracle [--ckpt CKPT] [--no-plan-conditioning]
        --towns Town03 --scenes 20 --plans 32 --out reports/relevance [--seed S]

Writes <out>/results.json (config, seed, git commit, package versions, per-scene records),
<out>/report.md, <out>/report.html and BEV figures in <out>/figures/ (see
`drivewm.evaluation.relevance`). `drivewm` gives two rows, with and without plan conditioning
(`--no-plan-conditioning`: only the latter).
"""

from __future__ import annotations

import argparse
import logging
import sys


def add_relevance_parser(eval_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `relevance` under `drivewm eval`."""
    from drivewm.evaluation.relevance import MODEL_NAMES

    p = eval_subparsers.add_parser(
        "relevance",
        help="action relevance: rank candidate plans with a world model vs their simulated truth",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--model", required=True, help=f"comma-separated world models: {', '.join(MODEL_NAMES)}")
    p.add_argument("--ckpt", default=None, help="trained checkpoint (drivewm, cv)")
    p.add_argument(
        "--no-plan-conditioning",
        action="store_true",
        help="evaluate the learned model only with its plan pathway off (default: both rows)",
    )
    p.add_argument("--towns", default="Town03", help="comma-separated (held-out) towns")
    p.add_argument("--scenes", type=int, default=20, help="number of scenes")
    p.add_argument("--plans", type=int, default=32, help="candidate plans per scene (≥ 4)")
    p.add_argument("--seed", type=int, default=0, help="global seed (scene i uses (seed, i))")
    p.add_argument("--vehicles", type=int, default=40, help="background vehicles")
    p.add_argument("--pedestrians", type=int, default=20, help="pedestrians")
    p.add_argument("--unsafe-fraction", type=float, default=0.3, help="share of plans built to be unsafe")
    p.add_argument("--oracle-dt", type=float, default=0.1, help="branch step of the simulated truth [s]")
    p.add_argument("--figures", type=int, default=4, help="scenes drawn in the report")
    p.add_argument("--latency-repeats", type=int, default=3, help="timed repeats per model and N")
    p.add_argument("--device", default="cpu", help="torch device of the learned model")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same config")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the evaluation from parsed arguments (bad input: `drivewm.cli` prints one line, exit 2)."""
    from drivewm.evaluation.relevance import RelevanceConfig, report_table, run_relevance

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = RelevanceConfig(
        towns=tuple(t.strip() for t in args.towns.split(",") if t.strip()),
        scenes=args.scenes,
        plans=args.plans,
        models=tuple(m.strip() for m in args.model.split(",") if m.strip()),
        ckpt=args.ckpt,
        plan_conditioning=not args.no_plan_conditioning,
        seed=args.seed,
        num_vehicles=args.vehicles,
        num_pedestrians=args.pedestrians,
        unsafe_fraction=args.unsafe_fraction,
        oracle_dt=args.oracle_dt,
        figures=args.figures,
        latency_repeats=args.latency_repeats,
        device=args.device,
    ).validate()
    results = run_relevance(cfg, args.out, progress=lambda m: print(m, file=sys.stderr, flush=True), resume=args.resume)
    head, rows = report_table(results)
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(r))
    print(f"report: {args.out}/report.html")
    return 0
