"""InRouteTest (scenario_runner `atomic_criteria.py`): the ego left its route (ends the route).

Each step the nearest route waypoint among the `window` ahead of the current one is found. The ego
deviated when it is `offroad_max` metres or farther from it, or when, counting the route it advanced
along while last seen `offroad_min` metres or farther away, that part exceeds `max_route_percentage`
of the route.
"""

from __future__ import annotations

import numpy as np

from carla_bridge.infractions.route_points import RoutePoints, closest_index
from carla_bridge.rules import RouteDeviationRule


def route_deviation_update(
    points: RoutePoints,
    location: np.ndarray,
    index: np.ndarray,
    out_distance: np.ndarray,
    in_safe: np.ndarray,
    rule: RouteDeviationRule,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step for W egos.

    Args:
        points: the route; location: `[W, 2]` ego box centres; index: `[W]` int64 current waypoint;
        out_distance: `[W]` route distance advanced while far [m]; in_safe: `[W]` bool, last within `offroad_min`.

    Returns:
        index, out_distance, in_safe, deviated `[W]` bool.
    """
    index = np.asarray(index, dtype=np.int64)
    closest, dist = closest_index(points.xy, np.ascontiguousarray(location, dtype=np.float64), index, int(rule.window))
    deviated = dist >= rule.offroad_max
    in_safe = np.where(deviated, in_safe, dist < rule.offroad_min)
    far_advance = (closest != index) & ~in_safe
    out_distance = out_distance + np.where(far_advance, points.accum[closest] - points.accum[index], 0.0)
    deviated |= far_advance & (100.0 * out_distance / points.length > rule.max_route_percentage)
    return closest, out_distance, in_safe, deviated
