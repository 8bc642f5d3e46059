"""InRouteTest (scenario_runner `atomic_criteria.py`): the ego left its route (ends the route).

Each step the nearest route waypoint among the `window` ahead of the current one is found. The ego
deviated when it is `offroad_max` metres or farther from it, or when, counting the route it advanced
along while last seen `offroad_min` metres or farther away, that part exceeds `max_route_percentage`
of the route.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from carla_bridge.infractions.route_points import RoutePoints, closest_index
from carla_bridge.rules import RouteDeviationRule


@nb.njit(cache=True)
def _update(accum, index, closest, dist, out_distance, in_safe, offroad_max, offroad_min, max_pct):
    W = index.shape[0]
    out, safe = out_distance.copy(), in_safe.copy()
    deviated = np.zeros(W, dtype=np.bool_)
    for w in range(W):
        if dist[w] >= offroad_max:
            deviated[w] = True
        else:
            safe[w] = dist[w] < offroad_min
        if closest[w] != index[w] and not safe[w]:
            out[w] += accum[closest[w]] - accum[index[w]]
            if 100.0 * out[w] / accum[-1] > max_pct:
                deviated[w] = True
    return out, safe, deviated


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
    out_distance, in_safe, deviated = _update(
        points.accum,
        index,
        closest,
        dist,
        np.asarray(out_distance, dtype=np.float64),
        np.asarray(in_safe, dtype=np.bool_),
        float(rule.offroad_max),
        float(rule.offroad_min),
        float(rule.max_route_percentage),
    )
    return closest, out_distance, in_safe, deviated
