"""RouteCompletionTest (scenario_runner `atomic_criteria.py`): how much of the route the ego has driven.

The completion is the accumulated share of the route at the last waypoint passed (window `window`
ahead), rounded to 0.01 %; the route is complete (100 %) once that share exceeds
`percentage_threshold` while the ego is within `distance_threshold` metres of the last waypoint.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from carla_bridge.infractions.route_points import RoutePoints, passed_index
from carla_bridge.rules import CompletionRule


@nb.njit(cache=True)
def _value(accum, xy_end, pos, index, completed, pct_threshold, dist_threshold):
    W = pos.shape[0]
    pct = np.empty(W)
    done = completed.copy()
    for w in range(W):
        pct[w] = np.round(accum[index[w]] / accum[-1] * 100.0, 2)
        near = math.hypot(pos[w, 0] - xy_end[0], pos[w, 1] - xy_end[1]) < dist_threshold
        done[w] = done[w] or (pct[w] > pct_threshold and near)
        if done[w]:
            pct[w] = 100.0
    return pct, done


def completion_update(
    points: RoutePoints, location: np.ndarray, index: np.ndarray, completed: np.ndarray, rule: CompletionRule
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step for W egos.

    Args:
        points: the route; location: `[W, 2]` ego box centres [m]; index: `[W]` int64 last waypoint passed;
        completed: `[W]` bool, the route was completed before.

    Returns:
        index `[W]`, completion `[W]` [%] (100 where completed), completed `[W]`.
    """
    location = np.ascontiguousarray(location, dtype=np.float64)
    index = passed_index(points.xy, points.forward, location, np.asarray(index, dtype=np.int64), int(rule.window))
    pct, completed = _value(
        points.accum,
        points.xy[-1],
        location,
        index,
        np.asarray(completed, dtype=np.bool_),
        float(rule.percentage_threshold),
        float(rule.distance_threshold),
    )
    return index, pct, completed
