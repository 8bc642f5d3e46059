"""`drivewm eval closed-loop`: drive leaderboard routes with an agent and report (DESIGN.md §5, §7).

    drivewm eval closed-loop --agent NAME [--ckpt C] --routes FILE [--route-ids 0,3]
        [--max-route-length M] --backend lite|carla [--host H --port P] [--seeds S] [--workers W]
        [--ray ADDRESS|local] --out DIR [--resume] [--timeout S]

Every finished route lands in `<out>/checkpoint.json`; `--resume` skips finished (agent, route, seed);
at the end `<out>/report.md`, `report.html` and `results.json` cover every agent run into `<out>`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_closed_loop_parser(eval_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `closed-loop` under `drivewm eval`."""
    from drivewm.factory import AGENTS

    p = eval_subparsers.add_parser(
        "closed-loop",
        help="drive routes in closed loop (lite simulator or a CARLA server) and report",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--agent", required=True, help=f"agent name: {', '.join(AGENTS)}")
    p.add_argument("--ckpt", default=None, help="trained checkpoint (drivewm, cv)")
    p.add_argument("--routes", required=True, help="leaderboard route XML (a path or a vendored name: routes_devtest)")
    p.add_argument("--route-ids", default=None, help="comma-separated route ids (default: all)")
    p.add_argument("--max-route-length", type=float, default=None, help="drive only the first M metres of each route")
    p.add_argument("--backend", choices=("lite", "carla"), default="lite")
    p.add_argument("--host", default="127.0.0.1", help="CARLA server host (--backend carla)")
    p.add_argument("--port", type=int, default=2000, help="CARLA server port (--backend carla)")
    p.add_argument("--carla-timeout", type=float, default=10.0, help="CARLA client timeout [s] (--backend carla)")
    p.add_argument("--seeds", default="1", help="a count (3 → seeds 0,1,2) or a list (0,5,7)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (or Ray CPUs with --ray local)")
    p.add_argument(
        "--ray", default=None, metavar="ADDRESS", help="run routes as Ray tasks ('local' or a cluster address)"
    )
    p.add_argument("--out", required=True, help="output folder (shared by all agents of one comparison)")
    p.add_argument("--resume", action="store_true", help="skip (agent, route, seed) already in the checkpoint")
    p.add_argument("--timeout", type=float, default=None, help="wall-clock budget per route [s] (default: none)")
    p.add_argument("--step-timeout", type=float, default=30.0, help="watchdog on one agent step / simulator step [s]")
    p.add_argument("--replan-hz", type=float, default=2.0, help="replan rate of planning agents (2-10 Hz)")
    p.add_argument("--camera-size", default="400x225", help="camera resolution WxH")
    p.add_argument("--vehicles", type=int, default=30, help="background vehicles (lite)")
    p.add_argument("--pedestrians", type=int, default=20, help="pedestrians (lite)")
    p.add_argument("--device", default="cpu", help="torch device of the learned model")
    p.add_argument("--frames-every", type=float, default=1.0, help="video frame interval [s] (0: no videos)")
    p.add_argument("--no-report", action="store_true", help="skip writing the report")
    p.set_defaults(func=run)
    return p


def _camera_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--camera-size must look like 400x225, got {text!r}") from None
    if w < 8 or h < 8:
        raise ValueError(f"--camera-size must be at least 8x8, got {text!r}")
    return w, h


def run(args: argparse.Namespace) -> int:
    from carla_bridge.closed_loop.harness import BackendSpec, parse_seeds, run_evaluation, select_routes
    from carla_bridge.closed_loop.report import write_report
    from carla_bridge.closed_loop.runner import RunLimits
    from carla_bridge.routes import parse_routes
    from drivewm.factory import AgentSpec

    camera = _camera_size(args.camera_size)
    spec = AgentSpec(args.agent, args.ckpt, args.device, args.replan_hz, camera)
    if args.ckpt and not Path(args.ckpt).is_file():
        raise FileNotFoundError(f"--ckpt {args.ckpt} does not exist")
    if args.backend == "carla" and args.agent in ("autopilot", "oracle"):
        raise ValueError(f"agent {args.agent!r} reads the lite simulator's state; use --backend lite")
    routes = select_routes(parse_routes(args.routes), args.route_ids)
    seeds = parse_seeds(args.seeds)
    if args.workers < 1:
        raise ValueError(f"--workers must be ≥ 1, got {args.workers}")
    if args.backend == "carla":
        from carla_bridge.live.backend import CarlaServerUnavailable, connect

        try:
            connect(args.host, args.port, args.carla_timeout)  # one clear line now if no server answers
        except CarlaServerUnavailable as err:
            raise ValueError(str(err)) from None
    backend = BackendSpec(
        kind=args.backend,
        host=args.host,
        port=args.port,
        timeout_s=args.carla_timeout,
        num_vehicles=args.vehicles,
        num_pedestrians=args.pedestrians,
        camera_size=camera,
        render=spec.needs_images or args.frames_every > 0,
    )
    limits = RunLimits(
        max_route_length=args.max_route_length,
        step_timeout=args.step_timeout,
        sim_timeout=args.step_timeout,
        route_timeout=args.timeout,
        replan_hz=args.replan_hz,
        camera_size=camera,
        frames_every=args.frames_every,
    )
    config = {k: v for k, v in vars(args).items() if k != "func"}
    summary = run_evaluation(
        spec,
        args.agent,
        routes,
        seeds,
        args.out,
        backend=backend,
        limits=limits,
        workers=args.workers,
        ray_address=args.ray,
        resume=args.resume,
        config=config,
        log=lambda line: print(line, flush=True),
    )
    print(
        f"closed loop {args.agent}: {len(summary.ran)} route runs in {summary.wall_seconds:.0f} s"
        + (f", {len(summary.skipped)} reused (--resume)" if summary.skipped else ""),
        flush=True,
    )
    if not args.no_report:
        paths = write_report(args.out)
        print(f"report: {paths['html']}", flush=True)
    return 0
