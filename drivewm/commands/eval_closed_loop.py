"""`drivewm eval closed-loop`: drive leaderboard routes with an agent and report (DESIGN.md §5, §7).

    drivewm eval closed-loop --agent NAME [--ckpt C] --routes FILE [--route-ids 0,3]
        [--max-route-length M] --backend lite|carla [--host H --port P] [--seeds S] [--workers W]
        [--ray ADDRESS|local] --out DIR [--resume] [--timeout S]

Every finished route lands in `<out>/checkpoint.json`; `--resume` skips finished (agent, route, seed);
at the end `<out>/report.md`, `report.html` and `results.json` cover every agent run into `<out>`.
The evaluation itself is `drivewm.evaluation.closed_loop` (protocol `closed-loop-v1`); this module
only parses the command line.
"""

from __future__ import annotations

import argparse

from drivewm.commands.args import (
    device,
    host,
    in_range,
    input_file,
    non_negative_float,
    non_negative_int,
    output_dir,
    port,
    positive_float,
    positive_int,
    size_wxh,
)


def add_closed_loop_parser(eval_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `closed-loop` under `drivewm eval`."""
    from drivewm.evaluation.closed_loop import DEFAULT_PROTOCOL, ClosedLoopConfig
    from drivewm.factory import AGENTS

    p = eval_subparsers.add_parser(
        "closed-loop",
        help="drive routes in closed loop (lite simulator or a CARLA server) and report",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--agent", required=True, help=f"agent name: {', '.join(AGENTS)}")
    p.add_argument("--ckpt", type=input_file, default=None, help="trained checkpoint (drivewm, cv)")
    p.add_argument("--routes", required=True, help="leaderboard route XML (a path or a vendored name: routes_devtest)")
    p.add_argument("--route-ids", default=None, help="comma-separated route ids (default: all)")
    p.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        help=f"frozen evaluation protocol: {', '.join(ClosedLoopConfig.protocols())} (default {DEFAULT_PROTOCOL})",
    )
    p.add_argument(
        "--max-route-length",
        type=positive_float,
        default=None,
        help="drive only the first M metres of each route (overrides the protocol)",
    )
    p.add_argument("--backend", choices=("lite", "carla"), default="lite")
    p.add_argument("--host", type=host, default="127.0.0.1", help="CARLA server host (--backend carla)")
    p.add_argument("--port", type=port, default=2000, help="CARLA server port (--backend carla)")
    p.add_argument(
        "--carla-timeout", type=positive_float, default=10.0, help="CARLA client timeout [s] (--backend carla)"
    )
    p.add_argument("--seeds", type=_seeds, default=(0,), help="a count (3 → seeds 0,1,2) or a list (0,5,7)")
    p.add_argument("--workers", type=positive_int, default=1, help="parallel processes (or Ray CPUs with --ray local)")
    p.add_argument(
        "--ray", default=None, metavar="ADDRESS", help="run routes as Ray tasks ('local' or a cluster address)"
    )
    p.add_argument(
        "--out", type=output_dir, required=True, help="output folder (shared by all agents of one comparison)"
    )
    p.add_argument("--resume", action="store_true", help="skip (agent, route, seed) already in the checkpoint")
    p.add_argument(
        "--timeout", type=positive_float, default=None, help="wall-clock budget per route [s] (default: none)"
    )
    p.add_argument(
        "--step-timeout", type=positive_float, default=30.0, help="watchdog on one agent step / simulator step [s]"
    )
    p.add_argument(
        "--replan-hz",
        type=in_range(2.0, 10.0),
        default=None,
        help="replan rate of planning agents, 2-10 Hz (overrides the protocol)",
    )
    p.add_argument("--camera-size", type=size_wxh, default=None, help="camera resolution WxH (overrides the protocol)")
    p.add_argument(
        "--vehicles", type=non_negative_int, default=None, help="background vehicles, lite (overrides the protocol)"
    )
    p.add_argument(
        "--pedestrians", type=non_negative_int, default=None, help="pedestrians, lite (overrides the protocol)"
    )
    p.add_argument("--device", type=device, default="cpu", help="torch device of the learned model")
    p.add_argument(
        "--frames-every", type=non_negative_float, default=1.0, help="video frame interval [s] (0: no videos)"
    )
    p.add_argument("--no-report", action="store_true", help="skip writing the report")
    p.set_defaults(func=run)
    return p


def _seeds(text: str) -> tuple[int, ...]:
    """`--seeds`: a count or a list (`parse_seeds`), refused at parse time when bad."""
    from drivewm.evaluation.closed_loop import parse_seeds

    try:
        return tuple(parse_seeds(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--seeds ")) from None


OVERRIDES = {
    "max_route_length": "max_route_length",
    "replan_hz": "replan_hz",
    "vehicles": "num_vehicles",
    "pedestrians": "num_pedestrians",
}
"""Flags (argparse dest) that override a protocol field (ClosedLoopConfig name)."""


def run(args: argparse.Namespace) -> int:
    from drivewm.evaluation.closed_loop import ClosedLoopConfig, evaluate_closed_loop, write_report

    overrides = {field: getattr(args, dest) for dest, field in OVERRIDES.items() if getattr(args, dest) is not None}
    if args.camera_size is not None:
        overrides["camera_size"] = args.camera_size
    cfg = ClosedLoopConfig.from_protocol(
        args.protocol,
        agent=args.agent,
        ckpt=None if args.ckpt is None else str(args.ckpt),
        device=args.device,
        routes=args.routes,
        route_ids=args.route_ids,
        seeds=tuple(args.seeds),
        backend=args.backend,
        host=args.host,
        port=args.port,
        carla_timeout=args.carla_timeout,
        workers=args.workers,
        ray=args.ray,
        frames_every=args.frames_every,
        step_timeout=args.step_timeout,
        route_timeout=args.timeout,
        **overrides,
    )
    summary = evaluate_closed_loop(cfg, args.out, resume=args.resume, log=lambda line: print(line, flush=True))
    print(
        f"closed loop {args.agent}: {len(summary.ran)} route runs in {summary.wall_seconds:.0f} s"
        + (f", {len(summary.skipped)} reused (--resume)" if summary.skipped else ""),
        flush=True,
    )
    if not args.no_report:
        paths = write_report(args.out)
        print(f"report: {paths['html']}", flush=True)
    return 0
