"""`drivewm routes generate`: leaderboard-2.0 route files with scenarios for any town.

    drivewm routes generate --town Town05 --scenarios Accident,SignalizedJunctionLeftTurn --count 5 \\
        --seed 0 --out routes_town05.xml [--maps DIR]

Each route carries one scenario whose trigger point sits where its type makes sense (junction types
before a junction, two-way types on two-way roads, highway types on multi-lane roads; see
`carla_bridge.scenarios.generate`), with parameters drawn from the official routes' ranges; every route is
re-planned from the file's keypoints and its scenario built before it is kept. `--scenarios all` asks for
every known type. The file is written atomically; types the town cannot host are named.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from drivewm.cli import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("routes", help="scenario route files", description=__doc__.split("\n\n")[0])
    rsub = p.add_subparsers(dest="routes_command", required=True)
    g = rsub.add_parser("generate", help="write leaderboard-2.0 routes with scenarios for a town")
    g.add_argument("--town", required=True, help="town name (vendored, or found in --maps) or a .xodr path")
    g.add_argument("--scenarios", required=True, help="comma-separated scenario types, or 'all'")
    g.add_argument("--count", type=int, required=True, help="routes per scenario type")
    g.add_argument("--seed", type=int, default=0, help="seeds every placement and parameter")
    g.add_argument("--out", type=Path, required=True, help="routes XML file to write")
    g.add_argument("--maps", default=None, help="folder of .xodr files where --town is found by name")
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    g.set_defaults(func=run_generate)


def _types(text: str) -> list[str]:
    from carla_bridge.scenarios import SCENARIO_TYPES

    if text.strip().lower() == "all":
        return list(SCENARIO_TYPES)
    types = [t.strip() for t in text.split(",") if t.strip()]
    if not types:
        raise UserError("--scenarios is empty (give types, e.g. Accident,HardBreakRoute, or 'all')")
    unknown = [t for t in types if t not in SCENARIO_TYPES]
    if unknown:
        raise UserError(f"unknown scenario types {unknown}; known: {', '.join(sorted(SCENARIO_TYPES))}")
    return list(dict.fromkeys(types))


def run_generate(args: argparse.Namespace) -> int:
    import torch

    from carla_bridge.maps import find_town, load_town
    from carla_bridge.routes import write_routes
    from carla_bridge.scenarios.generate import generate_routes

    torch.set_num_threads(1)
    types = _types(args.scenarios)
    if args.count < 1:
        raise UserError(f"--count must be ≥ 1, got {args.count}")
    town_arg = str(find_town(args.town, args.maps)) if args.maps else args.town
    town = load_town(town_arg)
    t0 = time.perf_counter()

    def progress(typ: str, n: int) -> None:
        if not args.quiet:
            print(f"  {typ}: {n}/{args.count}", flush=True)

    routes, report = generate_routes(town, types, args.count, args.seed, progress=progress)
    if not routes:
        raise UserError(f"{town.name} offers no place for any of {', '.join(types)}")
    if args.maps or args.town.endswith(".xodr"):
        routes = [dataclasses.replace(r, town=town.name) for r in routes]
    write_routes(args.out, routes)
    print(
        f"wrote {len(routes)} routes ({', '.join(f'{k} {v}' for k, v in report.found.items())}) on {town.name} "
        f"to {args.out} in {time.perf_counter() - t0:.0f} s"
    )
    for typ in report.missing:
        print(f"  {typ}: only {report.found[typ]} of {args.count} — {town.name} offers too few places for it")
    return 0
