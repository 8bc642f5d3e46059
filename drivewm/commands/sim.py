"""`drivewm sim run`: drive leaderboard routes in the lite simulator with the privileged autopilot
(or the blind baseline) and write `results.json` (route completion, infractions with time and
location, driving score, timings) and a BEV animation per route."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

AGENTS = ("autopilot", "blind")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="embedded lite simulator")
    ss = p.add_subparsers(dest="sim_command", required=True)
    run = ss.add_parser("run", help="drive routes in the lite simulator")
    run.add_argument("--routes", required=True, help="leaderboard routes XML (path or vendored name)")
    run.add_argument("--route-ids", default="0", help="comma-separated route ids (default: 0)")
    run.add_argument("--town", default=None, help="town name or .xodr path (default: the route's town)")
    run.add_argument("--agent", default="autopilot", choices=AGENTS)
    run.add_argument("--out", required=True, help="output directory")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--max-seconds", type=float, default=None, help="simulated time limit per route [s]")
    run.add_argument("--max-length", type=float, default=None, help="drive only the first M metres of each route")
    run.add_argument("--vehicles", type=int, default=50)
    run.add_argument("--pedestrians", type=int, default=30)
    run.add_argument("--animation", default="gif", choices=("gif", "mp4", "none"))
    run.add_argument("--frame-every", type=int, default=10, help="simulation steps between animation frames")
    run.set_defaults(func=run_command)


def _atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("drivewm", "torch", "numpy", "carla"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def run_route(
    route,
    town,
    agent_name: str,
    seed: int,
    cfg,
    max_seconds: float | None,
    max_length: float | None,
    animation: str,
    frame_every: int,
    out_dir: Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Drive one route; returns its result record (and writes its animation)."""
    from tqdm import tqdm

    from carla_bridge.autopilot import Autopilot, AutopilotParams
    from carla_bridge.lite.backend import LiteBackend
    from carla_bridge.lite.bev import BevRenderer
    from carla_bridge.lite.random_route import truncate_route
    from carla_bridge.route_planner import plan_route_for
    from carla_bridge.scoring import score_route

    plan = plan_route_for(route, town)
    if max_length is not None:
        plan = truncate_route(plan, max_length)
    backend = LiteBackend(town, cfg)
    backend.reset(plan, seed)
    agent = Autopilot(AutopilotParams(blind=agent_name == "blind"))
    world = backend.world
    limit = world.route.timeout if max_seconds is None else min(max_seconds, world.route.timeout)
    n_steps = round(limit / cfg.dt)
    bev = BevRenderer(town, plan.polyline) if animation != "none" else None
    frames = []
    agent_s = 0.0
    wall0 = time.perf_counter()
    bar = tqdm(total=n_steps, desc=f"route {route.id} ({agent_name})", unit="step", disable=not progress, leave=False)
    steps = 0
    for steps in range(1, n_steps + 1):
        t0 = time.perf_counter()
        control = agent.control(world)
        agent_s += time.perf_counter() - t0
        backend.step(control)
        bar.update(1)
        if bev is not None and steps % frame_every == 0:
            rc = float(world.route_completion()[0])
            frames.append(
                bev.frame(world, 0, f"t={world.time:5.1f}s v={float(world.ego_speed()[0]):4.1f} RC={rc:5.1f}%")
            )
        if backend.done:
            break
    bar.close()
    wall = time.perf_counter() - wall0
    events = [e for e in backend.events if e.world == 0]
    rc = float(world.route_completion()[0])
    if not backend.done:
        # the run was cut by --max-seconds: close the percentage criteria like the end of a route
        from carla_bridge.backend import Event
        from carla_bridge.infractions import outside_percentage

        pct = float(outside_percentage(world.state["outside"], world.route.length)[0])
        if pct > 0:
            ego = world.ego_pose()[0]
            events.append(
                Event("outside_route_lanes", world.time, (float(ego[0]), float(ego[1])), (), {"percentage": pct})
            )
    score = score_route(events, rc, plan.length)
    anim_path = None
    if bev is not None and frames:
        import imageio.v2 as imageio

        anim_path = out_dir / f"route_{route.id}_{agent_name}.{animation}"
        if animation == "gif":
            imageio.mimsave(anim_path, frames, duration=frame_every * cfg.dt, loop=0)
        else:
            imageio.mimsave(anim_path, frames, fps=max(1, round(1.0 / (frame_every * cfg.dt))))
    collisions = [e for e in events if e.kind.startswith("collisions")]
    return {
        "route_id": route.id,
        "town": town.name,
        "agent": agent_name,
        "seed": seed,
        "route_length_m": round(plan.length, 2),
        "scores": score.to_dict(),
        "collisions_caused": sum(1 for e in collisions if e.details.get("ego_at_fault")),
        "collisions_suffered": sum(1 for e in collisions if not e.details.get("ego_at_fault")),
        "infractions": [e.to_dict() for e in events],
        "timings": {
            "sim_seconds": round(world.time, 3),
            "wall_seconds": round(wall, 3),
            "steps": steps,
            "sim_step_ms": round(1000 * backend.step_seconds / max(steps, 1), 3),
            "agent_step_ms": round(1000 * agent_s / max(steps, 1), 3),
            "realtime_factor": round(world.time / max(wall, 1e-9), 3),
        },
        "traffic": {
            "vehicles": cfg.num_vehicles,
            "pedestrians": cfg.num_pedestrians,
            "spawn_radius_m": cfg.spawn_radius,
        },
        "animation": None if anim_path is None else anim_path.name,
    }


def run_command(args: argparse.Namespace) -> int:
    import torch

    from carla_bridge.lite.config import LiteConfig
    from carla_bridge.maps import load_town
    from carla_bridge.routes import parse_routes
    from carla_bridge.scoring import RouteScore, aggregate, infractions_per_km

    torch.set_num_threads(1)  # small tensors: threads only add overhead
    routes = parse_routes(args.routes)
    by_id = {r.id: r for r in routes}
    wanted = [s.strip() for s in str(args.route_ids).split(",") if s.strip()]
    if not wanted:
        raise ValueError("--route-ids is empty")
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise ValueError(f"--route-ids {missing} not in {args.routes} (available: {', '.join(sorted(by_id))})")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise ValueError(f"--max-seconds must be positive, got {args.max_seconds}")
    cfg = LiteConfig(num_vehicles=args.vehicles, num_pedestrians=args.pedestrians)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "command": "sim run",
        "config": {k: v for k, v in vars(args).items() if k != "func"},
        "seed": args.seed,
        "git_commit": _git_commit(),
        "versions": _versions(),
        "routes": [],
    }
    scores = []
    for rid in wanted:
        route = by_id[rid]
        town = load_town(args.town if args.town else route.town)
        rec = run_route(
            route,
            town,
            args.agent,
            args.seed,
            cfg,
            args.max_seconds,
            args.max_length,
            args.animation,
            args.frame_every,
            out,
        )
        result["routes"].append(rec)
        s = rec["scores"]
        scores.append(
            RouteScore(
                s["route_completion"],
                s["infraction_penalty"],
                s["driving_score"],
                s["route_length_m"],
                s["km_driven"],
                s["counts"],
                s["status"],
            )
        )
        result["aggregate"] = aggregate(scores)
        result["infractions_per_km"] = infractions_per_km(scores)
        _atomic_json(out / "results.json", result)
        print(
            f"route {rid} ({town.name}): RC {s['route_completion']:.1f}%  DS {s['driving_score']:.1f}  "
            f"{s['status']}  [{rec['timings']['wall_seconds']:.1f} s wall]"
        )
    return 0
