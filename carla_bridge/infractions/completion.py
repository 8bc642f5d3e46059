"""RouteCompletionTest (scenario_runner `atomic_criteria.py`): how much of the route the ego has driven.

The completion is the accumulated share of the route at the last waypoint passed (window `window`
ahead), rounded to 0.01 %; the route is complete (100 %) once that share exceeds
`percentage_threshold` while the ego is within `distance_threshold` metres of the last waypoint.
"""

from __future__ import annotations

import numpy as np

from carla_bridge.infractions.route_points import RoutePoints, passed_index
from carla_bridge.rules import CompletionRule


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
    pct = np.round(points.accum[index] / points.length * 100.0, 2)
    near_end = np.linalg.norm(location - points.xy[-1], axis=-1) < rule.distance_threshold
    completed = np.asarray(completed, dtype=bool) | ((pct > rule.percentage_threshold) & near_end)
    return index, np.where(completed, 100.0, pct), completed
