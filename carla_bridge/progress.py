"""Route progress: how far along its route polyline the ego has come (one implementation, used by the
lite simulator's criteria for W worlds and by the closed-loop runner for any backend).

The ego's rear axle is projected onto the polyline segments whose arc length lies within
[progress − 5 m, progress + 20 m] (a route that passes the same place twice is not skipped ahead);
progress never decreases. Completion is 100 % once the front bumper is within `END_TOLERANCE` of the
route's end.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from agents import EGO

FRONT = EGO.rear_axle_to_center + 0.5 * EGO.length
"""Rear axle → front bumper [m]."""

END_TOLERANCE = 2.0
"""The route is complete once the front bumper is this close to its end [m]."""

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


def route_completion(progress: np.ndarray | float, length: float) -> np.ndarray:
    """Route completion [%] in [0, 100] at rear-axle `progress [...]` [m] on a route of `length` [m]."""
    p = np.asarray(progress, dtype=np.float64)
    return np.where(p + FRONT >= length - END_TOLERANCE, 100.0, np.clip(100.0 * p / length, 0.0, 100.0))


class RouteProgress:
    """Monotone progress of one ego along a route polyline, independent of the simulator.

    Args:
        route_xy: `[P, 2]` world polyline [m] (repeated points are dropped).
    """

    def __init__(self, route_xy: np.ndarray) -> None:
        xy = np.asarray(route_xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 2 or not np.isfinite(xy).all():
            raise ValueError(f"route polyline must be a finite [P>=2, 2] array, got shape {list(xy.shape)}")
        keep = np.concatenate([[True], np.hypot(*np.diff(xy, axis=0).T) > 1e-9])
        self.xy = np.ascontiguousarray(xy[keep])
        self.s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(self.xy, axis=0).T))])
        self.length = float(self.s[-1])
        if not self.length > 0:
            raise ValueError("route polyline has zero length")
        self.progress = 0.0
        self.lateral = 0.0
        self._started = False

    def update(self, pose: np.ndarray) -> float:
        """Advance with the ego's rear-axle world pose `[>=2]`; returns the progress [m]."""
        pos = np.asarray(pose, dtype=np.float64)[None, :2].copy()
        prog, lat, _ = project_progress(self.xy, self.s, pos, np.array([self.progress]), self._started)
        self.progress, self.lateral, self._started = float(prog[0]), float(lat[0]), True
        return self.progress

    @property
    def completion(self) -> float:
        """Route completion [%] in [0, 100]."""
        return float(route_completion(self.progress, self.length))
