"""Random routes along the lane graph (for tests, benchmarks and data generation)."""

from __future__ import annotations

import numpy as np

from carla_bridge.route_planner import RoutePlan, plan_route


def random_route(
    town, rng: np.random.Generator | int, min_length: float = 150.0, start_lane: int | None = None, start_s: float = 2.0
) -> RoutePlan:
    """A route that starts on a (random, non-junction) lane and follows random successors until it is
    at least `min_length` metres long (or reaches a dead end), planned with `plan_route` through
    waypoints on each lane it passes."""
    rng = np.random.default_rng(rng)
    lanes = town.lanes
    if start_lane is None:
        cands = [ln.id for ln in lanes if not ln.is_junction and ln.length > 20.0]
        start_lane = int(cands[int(rng.integers(len(cands)))])
    lane = lanes[start_lane]
    s0 = float(np.clip(start_s, 0.0, lane.length - 1.0))
    waypoints = [lane.interpolate(np.array([s0]))[0][0]]
    total = lane.length - s0
    chain = [lane]
    while total < min_length and chain[-1].successors:
        nxt = chain[-1].successors[int(rng.integers(len(chain[-1].successors)))]
        chain.append(lanes[int(nxt)])
        total += chain[-1].length
    for ln in chain[1:-1]:
        waypoints.append(ln.interpolate(np.array([0.5 * ln.length]))[0][0])
    last = chain[-1]
    if len(chain) == 1:
        end_s = min(last.length - 0.5, s0 + min_length)
    else:
        end_s = float(np.clip(last.length - (total - min_length), 0.5 * last.length, last.length - 0.5))
    waypoints.append(last.interpolate(np.array([end_s]))[0][0])
    return plan_route(town, np.array(waypoints))


def truncate_route(plan: RoutePlan, max_length: float) -> RoutePlan:
    """The first `max_length` metres of a route (the plan itself when it is shorter)."""
    import dataclasses

    if not max_length > 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    if plan.length <= max_length:
        return plan
    keep = int(np.searchsorted(plan.s, max_length, side="right"))
    keep = max(keep, 2)
    lanes_kept = [int(x) for i, x in enumerate(plan.point_lane[:keep]) if i == 0 or x != plan.point_lane[i - 1]]
    wp = plan.waypoint_s[plan.waypoint_s <= plan.s[keep - 1]]
    return dataclasses.replace(
        plan,
        lane_ids=lanes_kept,
        polyline=plan.polyline[:keep],
        s=plan.s[:keep],
        yaw=plan.yaw[:keep],
        point_lane=plan.point_lane[:keep],
        waypoint_s=np.append(wp, plan.s[keep - 1]),
    )
