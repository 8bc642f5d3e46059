"""Route progress, two ways.

- `project_progress`: how far along its route polyline the ego's rear axle has come, for W worlds
  (the lite simulator's views and the autopilot plan along it): the rear axle is projected onto the
  polyline segments whose arc length lies within [progress − 5 m, progress + 20 m] (a route that
  passes the same place twice is not skipped ahead); progress never decreases.
- `RouteTracker`: the leaderboard's route completion (RouteCompletionTest) and route timeout
  (RouteTimeoutBehavior) of one ego, for any backend (the closed-loop runner uses it where the
  backend does not judge the route itself).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from agents import EGO
from carla_bridge.infractions.completion import completion_update
from carla_bridge.infractions.route_points import RoutePoints, ego_centre
from carla_bridge.infractions.route_timeout import route_timeout_update
from carla_bridge.rules import RuleSet

FRONT = EGO.rear_axle_to_center + 0.5 * EGO.length
"""Rear axle → front bumper [m]."""

WINDOW_BEHIND, WINDOW_AHEAD = 5.0, 20.0
"""Arc-length window around the current progress searched for the ego's projection [m]."""


@nb.njit(cache=True)
def project_progress(
    xy: np.ndarray, s: np.ndarray, pos: np.ndarray, progress: np.ndarray, started: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advance the progress of W egos on one route.

    Args:
        xy: `[R, 2]` route polyline [m]; s: `[R]` its arc length [m].
        pos: `[W, 2]` rear-axle positions [m].
        progress: `[W]` progress so far [m] (ignored when not `started`).
        started: False at the first projection (the whole route is searched, progress may start anywhere).

    Returns:
        progress `[W]` (monotone once started), lateral distance to the route `[W]` [m], and the index
        `[W]` of the segment the ego projects on.
    """
    W, R = pos.shape[0], xy.shape[0]
    out = np.empty(W)
    lateral = np.empty(W)
    seg = np.zeros(W, dtype=np.int64)
    for w in range(W):
        best, best_s, best_i = math.inf, 0.0, 0
        for attempt in range(2):  # the window first; the whole route if the window is empty
            windowed = started and attempt == 0
            for i in range(R - 1):
                ax, ay = xy[i, 0], xy[i, 1]
                dx, dy = xy[i + 1, 0] - ax, xy[i + 1, 1] - ay
                t = ((pos[w, 0] - ax) * dx + (pos[w, 1] - ay) * dy) / max(dx * dx + dy * dy, 1e-18)
                t = min(max(t, 0.0), 1.0)
                s_foot = s[i] + t * (s[i + 1] - s[i])
                if windowed and not (progress[w] - WINDOW_BEHIND <= s_foot <= progress[w] + WINDOW_AHEAD):
                    continue
                d = math.hypot(pos[w, 0] - (ax + t * dx), pos[w, 1] - (ay + t * dy))
                if d < best:
                    best, best_s, best_i = d, s_foot, i
            if best < math.inf:
                break
        out[w] = max(progress[w], best_s) if started else best_s
        lateral[w], seg[w] = best, best_i
    return out, lateral, seg


class RouteTracker:
    """The leaderboard's completion and route timeout of one ego on a route, from its poses alone.

    Args:
        points: the route's criteria waypoints (`carla_bridge.infractions.route_points`).
        rules: the rule set (completion and route-timeout parameters).
    """

    def __init__(self, points: RoutePoints, rules: RuleSet) -> None:
        self.points, self.rules = points, rules
        self._index = np.zeros(1, dtype=np.int64)
        self._completed = np.zeros(1, dtype=bool)
        self._timeout_index = np.zeros(1, dtype=np.int64)
        self._budget = np.full(1, rules.route_timeout.min_timeout)
        self.completion = 0.0
        self.timed_out = False

    def update(self, pose: np.ndarray, time: float) -> float:
        """Advance with the ego's rear-axle world pose `[3]` at simulation time `time` [s]; returns the
        completion [%]."""
        loc = ego_centre(np.asarray(pose, dtype=np.float64)[None, :3])
        self._index, pct, self._completed = completion_update(
            self.points, loc, self._index, self._completed, self.rules.completion
        )
        self._timeout_index, self._budget, out = route_timeout_update(
            self.points, loc, np.array([time]), self._timeout_index, self._budget, self.rules.route_timeout
        )
        self.completion, self.timed_out = float(pct[0]), bool(out[0])
        return self.completion

    @property
    def completed(self) -> bool:
        return bool(self._completed[0])

    @property
    def budget(self) -> float:
        """The route-timeout budget so far [s]."""
        return float(self._budget[0])
