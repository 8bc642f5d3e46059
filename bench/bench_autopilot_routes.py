"""Autopilot vs blind agent on the leaderboard routes of the vendored towns (DESIGN.md §8,
issue 4 "Measure"): route completion, collisions the ego causes vs suffers, red lights, driving
score, with the traffic density stated (vehicles and pedestrians per km of road around the route).

Both agents drive the same route from the same seeded world in ONE batched `LiteWorld` (W = 2:
copy 0 autopilot, copy 1 blind), so they meet identical initial traffic. Long routes can be cut to
their first `--max-length` metres to fit CPU time.

Run: `python bench/bench_autopilot_routes.py [--files routes_devtest.xml,routes_training.xml]
      [--max-length 300] [--max-routes 0] [--per-town 0] [--seed 0] [--out results.json]`.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def road_km_near(town, route_xy: np.ndarray, radius: float) -> float:
    """Length [km] of non-junction driving lanes within `radius` of the route (where traffic spawns)."""
    sub = route_xy[:: max(1, len(route_xy) // 200)]
    total = 0.0
    for ln in town.lanes:
        if ln.is_junction:
            continue
        d = np.linalg.norm(ln.points[:, None, :] - sub[None], axis=-1).min(1)
        seg = np.linalg.norm(np.diff(ln.points, axis=0), axis=1)
        total += float(seg[(d[:-1] < radius)].sum())
    return total / 1000.0


def run_route(route, town, cfg, seed: int, max_length: float, max_seconds: float | None) -> dict:
    from carla_bridge.autopilot import Autopilot
    from carla_bridge.lite.random_route import truncate_route
    from carla_bridge.lite.world import LiteWorld
    from carla_bridge.route_planner import plan_route_for
    from carla_bridge.scoring import score_route

    plan = truncate_route(plan_route_for(route, town), max_length)
    world = LiteWorld(town, cfg)
    world.reset(plan, seed)
    world = world.branch(2)
    agent = Autopilot()
    blind = torch.tensor([False, True])
    limit = world.route.timeout if max_seconds is None else min(max_seconds, world.route.timeout)
    events = []
    t0 = time.perf_counter()
    for _ in range(round(limit / cfg.dt)):
        events += world.step(agent.controls(world, blind))
        if bool(world.state.route.done.all()):
            break
    wall = time.perf_counter() - t0
    km = road_km_near(town, plan.polyline, cfg.spawn_radius)
    out = {
        "route": route.id,
        "town": town.name,
        "length_m": round(plan.length, 1),
        "vehicles_per_km": round(cfg.num_vehicles / km, 1),
        "pedestrians_per_km": round(cfg.num_pedestrians / km, 1),
        "sim_seconds": round(world.time, 1),
        "wall_seconds": round(wall, 1),
    }
    for w, name in enumerate(("autopilot", "blind")):
        ev = [e for e in events if e.world == w]
        rc = float(world.route_completion()[w])
        s = score_route(ev, rc, plan.length)
        col = [e for e in ev if e.kind.startswith("collisions")]
        out[name] = {
            "rc": round(rc, 1),
            "ds": round(s.driving_score, 1),
            "caused": sum(1 for e in col if e.details.get("ego_at_fault")),
            "suffered": sum(1 for e in col if not e.details.get("ego_at_fault")),
            "red_light": sum(1 for e in ev if e.kind == "red_light"),
            "status": s.status,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default="routes_devtest.xml,routes_training.xml")
    ap.add_argument("--max-length", type=float, default=300.0)
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--max-routes", type=int, default=0, help="0 = all")
    ap.add_argument("--per-town", type=int, default=0, help="at most N routes per (file, town); 0 = all")
    ap.add_argument("--vehicles", type=int, default=50)
    ap.add_argument("--pedestrians", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from carla_bridge.lite.config import LiteConfig
    from carla_bridge.maps import available_towns, load_town
    from carla_bridge.routes import parse_routes

    towns = set(available_towns())
    cfg = LiteConfig(num_vehicles=args.vehicles, num_pedestrians=args.pedestrians)
    routes = [(f, r) for f in args.files.split(",") for r in parse_routes(f) if r.town in towns]
    if args.per_town:
        seen: dict[tuple[str, str], int] = {}
        keep = []
        for f, r in routes:
            seen[(f, r.town)] = seen.get((f, r.town), 0) + 1
            if seen[(f, r.town)] <= args.per_town:
                keep.append((f, r))
        routes = keep
    if args.max_routes:
        routes = routes[: args.max_routes]
    rows = []
    print(
        f"{'file':22s} {'route':>5s} {'town':7s} {'len':>5s} {'veh/km':>6s} {'ped/km':>6s} | "
        f"{'AP RC':>6s} {'caused':>6s} {'suff':>4s} {'red':>3s} {'DS':>5s} | "
        f"{'BL RC':>6s} {'caused':>6s} {'suff':>4s} {'red':>3s} {'DS':>5s} | wall"
    )
    for f, r in routes:
        row = run_route(r, load_town(r.town), cfg, args.seed, args.max_length, args.max_seconds)
        row["file"] = f
        rows.append(row)
        a, b = row["autopilot"], row["blind"]
        print(
            f"{f:22s} {r.id:>5s} {r.town:7s} {row['length_m']:5.0f} {row['vehicles_per_km']:6.1f} "
            f"{row['pedestrians_per_km']:6.1f} | {a['rc']:6.1f} {a['caused']:6d} {a['suffered']:4d} "
            f"{a['red_light']:3d} {a['ds']:5.1f} | {b['rc']:6.1f} {b['caused']:6d} {b['suffered']:4d} "
            f"{b['red_light']:3d} {b['ds']:5.1f} | {row['wall_seconds']:.0f}s",
            flush=True,
        )
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(rows, fh, indent=1)
    for name in ("autopilot", "blind"):
        rc = np.mean([r[name]["rc"] for r in rows])
        ds = np.mean([r[name]["ds"] for r in rows])
        caused = sum(r[name]["caused"] for r in rows)
        suffered = sum(r[name]["suffered"] for r in rows)
        red = sum(r[name]["red_light"] for r in rows)
        print(
            f"{name:9s}: routes {len(rows)}  mean RC {rc:5.1f}%  mean DS {ds:5.1f}  collisions caused {caused}  "
            f"suffered {suffered}  red lights {red}"
        )


if __name__ == "__main__":
    main()
