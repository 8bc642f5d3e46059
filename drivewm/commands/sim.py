"""`drivewm sim run`: drive leaderboard routes in the lite simulator with the privileged autopilot
(or the blind baseline) through the closed-loop runner (`carla_bridge.closed_loop.runner.run_route`,
the one closed-loop driver) under a rule set (`--rules leaderboard-2.0|bench2drive`) and write
`results.json` (one runner record per route: status, route completion, infractions with time and
place, driving score, timings, and what became of each of the route's scenarios — run, or why not;
the global statistics of `carla_bridge.statistics`) and an animation per route. `--maps DIR` finds
the routes' towns by name among the .xodr files of DIR."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from carla_bridge.lite.config import LiteConfig
from carla_bridge.rules import DEFAULT_RULES, available_rules
from drivewm.commands.args import output_dir

AGENTS = ("autopilot", "blind")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="embedded lite simulator")
    ss = p.add_subparsers(dest="sim_command", required=True)
    run = ss.add_parser("run", help="drive routes in the lite simulator")
    run.add_argument("--routes", required=True, help="leaderboard routes XML (path or vendored name)")
    run.add_argument("--route-ids", default="0", help="comma-separated route ids (default: 0)")
    run.add_argument("--town", default=None, help="town name or .xodr path (default: the route's town)")
    run.add_argument("--maps", default=None, help="folder of .xodr files where the routes' towns are found by name")
    run.add_argument("--agent", default="autopilot", choices=AGENTS)
    run.add_argument("--out", type=output_dir, required=True, help="output directory")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "--rules",
        default=DEFAULT_RULES,
        help=f"rule set: {' | '.join(available_rules())} or a rule-set .json (default {DEFAULT_RULES})",
    )
    run.add_argument("--max-seconds", type=float, default=None, help="simulated time limit per route [s]")
    run.add_argument("--max-length", type=float, default=None, help="drive only the first M metres of each route")
    run.add_argument("--vehicles", type=int, default=50)
    run.add_argument("--pedestrians", type=int, default=30)
    run.add_argument("--animation", default="gif", choices=("gif", "none"))
    run.add_argument("--frame-every", type=int, default=10, help="simulation steps between animation frames")
    run.set_defaults(func=run_command)


class _LiteFactory:
    """Town name → a fresh `LiteBackend` without cameras (the autopilot reads the simulator state); the
    last one made stays reachable (`last`) for its scenario summary."""

    def __init__(self, config: LiteConfig) -> None:
        self.config = config
        self.last = None

    def __call__(self, town: str):
        from carla_bridge.lite.backend import LiteBackend

        self.last = LiteBackend(town, self.config)
        return self.last


def run_command(args: argparse.Namespace) -> int:
    import torch

    from carla_bridge.closed_loop.agent import SIM_DT, AutopilotAgent
    from carla_bridge.closed_loop.runner import RunLimits, run_route
    from carla_bridge.maps import load_town
    from carla_bridge.recorder.tables import write_json_atomic
    from carla_bridge.routes import parse_routes, plan_route_for, with_maps
    from carla_bridge.rules import load_rules
    from carla_bridge.statistics import global_statistics
    from drivewm.evaluation.closed_loop.render import render_route_gif

    torch.set_num_threads(1)  # small tensors: threads only add overhead
    rules = load_rules(args.rules)
    routes = with_maps(parse_routes(args.routes), args.maps)
    by_id = {r.id: r for r in routes}
    wanted = [s.strip() for s in str(args.route_ids).split(",") if s.strip()]
    if not wanted:
        raise ValueError("--route-ids is empty")
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise ValueError(f"--route-ids {missing} not in {args.routes} (available: {', '.join(sorted(by_id))})")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise ValueError(f"--max-seconds must be positive, got {args.max_seconds}")
    if args.frame_every < 1:
        raise ValueError(f"--frame-every must be ≥ 1, got {args.frame_every}")
    chosen = [by_id[rid] if args.town is None else dataclasses.replace(by_id[rid], town=args.town) for rid in wanted]
    for route in chosen:  # bad towns and routes off the map fail here, before anything is written
        plan_route_for(route, load_town(route.town))
    cfg = LiteConfig(num_vehicles=args.vehicles, num_pedestrians=args.pedestrians, rules=rules)
    limits = RunLimits(
        max_route_length=args.max_length,
        max_sim_seconds=args.max_seconds,
        frames_every=0.0 if args.animation == "none" else args.frame_every * SIM_DT,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"command": "sim run", "config": {k: v for k, v in vars(args).items() if k != "func"}}
    result.update(seed=args.seed, rules=rules.to_dict(), routes=[])
    for route in chosen:
        frames = out / f"route_{route.id}_{args.agent}.frames.npz"
        factory = _LiteFactory(cfg)
        rec = run_route(factory, AutopilotAgent(blind=args.agent == "blind"), route, args.seed, limits, frames, rules)
        rec["scenarios"] = factory.last.scenario_summary() if factory.last is not None else []
        rec["animation"] = None
        if rec.get("frames"):
            gif = render_route_gif(
                rec["frames"], out / f"route_{route.id}_{args.agent}.gif", title=f"{args.agent} · route {route.id}"
            )
            rec["animation"] = gif.name
        result["routes"].append(rec)
        result["statistics"] = global_statistics(result["routes"], rules)
        write_json_atomic(out / "results.json", result)
        print(
            f"route {route.id} ({route.town}): RC {rec['route_completion']:.1f}%  DS {rec['driving_score']:.1f}  "
            f"{rec['status']}  [{rec['timing']['wall_seconds']:.1f} s wall]"
        )
        for sc in rec["scenarios"]:
            if not sc["built"]:
                print(f"  scenario {sc['name']} ({sc['type']}) not run: {sc['reason']}")
    return 0
