"""Autopilot vs blind route follower on the leaderboard routes of the vendored towns, scored under both
rule sets side by side (issue 13: under leaderboard-2.0 rules the autopilot must score DS ≥ 85 on the
four devtest routes cut to 200 m, the blind follower clearly below): route completion, driving score,
status, Bench2Drive success, and every infraction of the autopilot with its time and place, with the
traffic density stated (vehicles and pedestrians per km of road around the route).

Both agents drive the same route from the same seeded world in ONE batched `LiteWorld` (W = 2: copy 0
autopilot, copy 1 blind), so they meet identical initial traffic; one such world per rule set (the
motion is the same until a route ends; the rule set decides when). Long routes are cut to their first
`--max-length` metres.

Run: `python bench/bench_autopilot_routes.py [--files routes_devtest.xml] [--max-length 200]
      [--max-routes 0] [--per-town 0] [--seed 0] [--rules leaderboard-2.0,bench2drive] [--out rows.json]`.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

AGENTS = ("autopilot", "blind")


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


def drive(plan, town, cfg, seed: int, max_seconds: float | None) -> tuple[list, float, float, float]:
    """Autopilot (world 0) and blind agent (world 1) on one route; returns (events, route length as the
    criteria measure it [m], sim seconds, wall seconds)."""
    from carla_bridge.autopilot import Autopilot
    from carla_bridge.lite.world import LiteWorld

    world = LiteWorld(town, cfg)
    world.reset(plan, seed)
    world = world.branch(2)
    agent = Autopilot()
    blind = torch.tensor([False, True])
    limit = world.route.timeout if max_seconds is None else min(max_seconds, world.route.timeout)
    events = []
    t0 = time.perf_counter()
    for _ in range(round(limit / cfg.dt) + 1):
        events += world.step(agent.controls(world, blind))
        if bool(world.state.route.done.all()):
            break
    events += world.finish()
    return events, world.route.criteria.points.length, world.time, time.perf_counter() - t0


def score(events, world: int, length: float, rules) -> dict:
    from carla_bridge.scoring import ROUTE_COMPLETION, score_route

    ev = [e for e in events if e.world == world]
    rc = next(e.details["percentage"] for e in ev if e.kind == ROUTE_COMPLETION)
    s = score_route(ev, rc, length, rules)
    return {
        "rc": round(s.route_completion, 2),
        "ds": round(s.driving_score, 2),
        "penalty": round(s.infraction_penalty, 4),
        "status": s.status,
        "success": s.success,
        "counts": {k: v for k, v in s.counts.items() if v},
        "infractions": [
            {
                "kind": e.kind,
                "time": round(e.time, 2),
                "xy": [round(v, 1) for v in e.location],
                **{k: e.details[k] for k in ("percentage", "distance", "other_class") if k in e.details},
            }
            for e in ev
            if e.kind != ROUTE_COMPLETION
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default="routes_devtest.xml")
    ap.add_argument("--max-length", type=float, default=200.0)
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--max-routes", type=int, default=0, help="0 = all")
    ap.add_argument("--per-town", type=int, default=0, help="at most N routes per (file, town); 0 = all")
    ap.add_argument("--vehicles", type=int, default=50)
    ap.add_argument("--pedestrians", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rules", default="leaderboard-2.0,bench2drive", help="comma-separated rule sets")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from carla_bridge.lite.config import LiteConfig
    from carla_bridge.lite.random_route import truncate_route
    from carla_bridge.maps import available_towns, load_town
    from carla_bridge.route_planner import plan_route_for
    from carla_bridge.routes import parse_routes
    from carla_bridge.rules import load_rules

    rule_sets = [load_rules(r) for r in args.rules.split(",")]
    towns = set(available_towns())
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
    head = " | ".join(f"{'RC':>6s} {rs.name[:12]:>12s} DS {'status':22s}" for rs in rule_sets)
    print(f"{'file':20s} {'route':>5s} {'town':7s} {'len':>5s} {'veh/km':>6s} {'agent':9s} | {head}")
    rows = []
    for f, r in routes:
        town = load_town(r.town)
        plan = truncate_route(plan_route_for(r, town), args.max_length)
        row = {"file": f, "route": r.id, "town": town.name, "length_m": round(plan.length, 1), "seed": args.seed}
        for rules in rule_sets:
            cfg = LiteConfig(num_vehicles=args.vehicles, num_pedestrians=args.pedestrians, rules=rules)
            events, length, sim_s, wall = drive(plan, town, cfg, args.seed, args.max_seconds)
            km = road_km_near(town, plan.polyline, cfg.spawn_radius)
            row.update(
                vehicles_per_km=round(cfg.num_vehicles / km, 1), pedestrians_per_km=round(cfg.num_pedestrians / km, 1)
            )
            for w, name in enumerate(AGENTS):
                row.setdefault(name, {})[rules.name] = score(events, w, length, rules)
            row.setdefault("timing", {})[rules.name] = {"sim_seconds": round(sim_s, 1), "wall_seconds": round(wall, 1)}
        rows.append(row)
        for name in AGENTS:
            cells = " | ".join(
                f"{c['rc']:6.1f} {c['ds']:15.1f} {c['status'][:22]:22s}"
                for c in (row[name][rs.name] for rs in rule_sets)
            )
            where = f"{f:20s} {r.id:>5s} {r.town:7s} {row['length_m']:5.0f} {row['vehicles_per_km']:6.1f}"
            print(f"{where} {name:9s} | {cells}", flush=True)
        for rs in rule_sets:
            for inf in row["autopilot"][rs.name]["infractions"]:
                print(f"    autopilot [{rs.name}] {inf}")
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(rows, fh, indent=1)
    print()
    for rs in rule_sets:
        for name in AGENTS:
            cell = [r[name][rs.name] for r in rows]
            rc, ds = np.mean([c["rc"] for c in cell]), np.mean([c["ds"] for c in cell])
            col = sum(sum(v for k, v in c["counts"].items() if k.startswith("collisions")) for c in cell)
            red = sum(c["counts"].get("red_light", 0) for c in cell)
            ms = sum(c["counts"].get("min_speed_infractions", 0) for c in cell)
            succ = [c["success"] for c in cell if c["success"] is not None]
            extra = f"  success {sum(succ)}/{len(succ)}" if succ else ""
            print(
                f"{rs.name:16s} {name:9s}: routes {len(rows)}  mean RC {rc:5.1f}%  mean DS {ds:5.1f}  "
                f"collisions {col}  red lights {red}  min-speed events {ms}{extra}"
            )


if __name__ == "__main__":
    main()
