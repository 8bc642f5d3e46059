"""Maps benchmark: load + lane graph, lights, static scene per vendored town; route planning; BEV raster.

Run: python bench/bench_maps.py   (prints a markdown table; each town is built in a fresh cache)
"""

from __future__ import annotations

import time

import numpy as np

from carla_bridge.maps import available_towns, clear_cache, load_town
from carla_bridge.routes import parse_routes, plan_route_for
from occupancy.grid import GridSpec


def main() -> None:
    print("| town | lanes | lane km | load+graph [s] | lights [s] | static scene [s] | BEV raster 200×200 [ms] |")
    print("|---|---|---|---|---|---|---|")
    grid = GridSpec.occ3d()
    for name in available_towns():
        clear_cache()
        t0 = time.perf_counter()
        town = load_town(name)
        t1 = time.perf_counter()
        _ = town.traffic_lights
        t2 = time.perf_counter()
        scene = town.static
        t3 = time.perf_counter()
        sp = town.spawn_points(20.0, rng=0)
        n = min(50, len(sp))
        r0 = time.perf_counter()
        for x, y, yaw, _ in sp[:n]:
            scene.raster((x, y), yaw, grid)
        raster_ms = (time.perf_counter() - r0) / n * 1e3
        print(
            f"| {name} | {len(town.lanes)} | {town.total_length / 1000:.1f} | {t1 - t0:.2f} | {t2 - t1:.2f} | "
            f"{t3 - t2:.2f} | {raster_ms:.2f} |"
        )
    print()
    print("| routes file | routes | waypoints | total length [km] | planning time per route [ms] (mean / max) |")
    print("|---|---|---|---|---|")
    for f in ("routes_devtest.xml", "routes_training.xml"):
        routes = parse_routes(f)
        times, length, wps = [], 0.0, 0
        for r in routes:
            town = load_town(r.town)
            t0 = time.perf_counter()
            plan = plan_route_for(r, town)
            times.append(time.perf_counter() - t0)
            length += plan.length
            wps += r.num_waypoints
        t = np.array(times) * 1e3
        print(f"| {f} | {len(routes)} | {wps} | {length / 1000:.1f} | {t.mean():.0f} / {t.max():.0f} |")


if __name__ == "__main__":
    main()
