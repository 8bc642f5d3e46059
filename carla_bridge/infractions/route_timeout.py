"""RouteTimeoutBehavior (scenario_runner `timer.py`): the route's time budget (ends the route).

The budget starts at `min_timeout` seconds and grows, whenever the ego passes route waypoints (window
`window` ahead), by the distance advanced over `speed_percentage` % of the speed limit where it is
(CARLA: the vehicle's current speed limit; here the lane's). The route times out once the elapsed
time exceeds the budget.
"""

from __future__ import annotations

import numpy as np

from carla_bridge.infractions.route_points import RoutePoints, passed_index
from carla_bridge.rules import RouteTimeoutRule


def route_timeout_update(
    points: RoutePoints,
    location: np.ndarray,
    time: np.ndarray,
    index: np.ndarray,
    budget: np.ndarray,
    rule: RouteTimeoutRule,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step for W egos.

    Args:
        points: the route; location: `[W, 2]` ego box centres; time: `[W]` elapsed [s];
        index: `[W]` int64 last waypoint passed; budget: `[W]` the timeout so far [s].

    Returns:
        index, budget, timed_out `[W]` bool.
    """
    old = np.asarray(index, dtype=np.int64)
    index = passed_index(
        points.xy, points.forward, np.ascontiguousarray(location, dtype=np.float64), old, int(rule.window)
    )
    budget = np.asarray(budget, dtype=np.float64).copy()
    grew = index > old
    if grew.any():
        speed = points.speed_limit[index[grew]] * rule.speed_percentage / 100.0
        budget[grew] += (points.accum[index[grew]] - points.accum[old[grew]]) / speed
    return index, budget, np.asarray(time, dtype=np.float64) > budget


def full_route_budget(points: RoutePoints, rule: RouteTimeoutRule) -> float:
    """The budget of a route driven to its end [s] (the most any run of it can get)."""
    seg = np.diff(points.accum)
    return float(rule.min_timeout + (seg / (points.speed_limit[1:] * rule.speed_percentage / 100.0)).sum())
