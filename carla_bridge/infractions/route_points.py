"""The route as the leaderboard's criteria see it: waypoints every `RuleSet.route_spacing` metres
(the leaderboard interpolates routes at 1 m, `route_scenario._get_route`), each with its forward
vector, accumulated distance, lane, speed limit and junction flag; and the two ways the criteria walk
along it.

- `passed_index`: the last waypoint the ego has passed — `(location − waypoint) · forward > 0` —
  among the `window` waypoints ahead of its index (RouteCompletionTest, MinimumSpeedRouteTest,
  RouteTimeoutBehavior, OutsideRouteLanesTest);
- `closest_index`: the nearest waypoint among the `window` ahead (InRouteTest).

"Location" is the ego's actor location, i.e. its box centre (`ego_centre`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from agents import EGO


@dataclass(frozen=True)
class RoutePoints:
    """Route waypoints `[R]` (float64 numpy arrays).

    Attributes:
        xy: `[R, 2]` world positions [m]; forward: `[R, 2]` unit direction; yaw: `[R]` [rad].
        accum: `[R]` accumulated distance between consecutive waypoints [m] (accum[0] = 0).
        lane: `[R]` int64 lane id (`TownMap.lanes`) of each waypoint.
        road_lane: `[R, 2]` int64 OpenDRIVE (road id, lane id) of each waypoint.
        junction: `[R]` bool, the waypoint lies in a junction.
        width: `[R]` lane width [m]; speed_limit: `[R]` [m/s].
    """

    xy: np.ndarray
    forward: np.ndarray
    yaw: np.ndarray
    accum: np.ndarray
    lane: np.ndarray
    road_lane: np.ndarray
    junction: np.ndarray
    width: np.ndarray
    speed_limit: np.ndarray

    @property
    def length(self) -> float:
        """Route length as the criteria measure it (sum of waypoint distances) [m]."""
        return float(self.accum[-1])

    def __len__(self) -> int:
        return len(self.accum)

    def first_junction_index(self) -> int | None:
        """Index of the first waypoint in a junction (None if the route has none)."""
        hit = np.flatnonzero(self.junction)
        return int(hit[0]) if len(hit) else None


def route_points(town, plan, spacing: float = 1.0) -> RoutePoints:
    """`RoutePoints` of a `RoutePlan` (polyline, s, yaw, point_lane) on `town`, every `spacing` metres
    along the planned polyline (and its last point)."""
    xy = np.asarray(plan.polyline, dtype=np.float64)
    s = np.asarray(plan.s, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 2 or not float(s[-1]) > 0:
        raise ValueError(f"route polyline must have shape [P>=2, 2] and positive length, got {list(xy.shape)}")
    if not spacing > 0:
        raise ValueError(f"route spacing must be positive, got {spacing}")
    q = np.arange(0.0, float(s[-1]), spacing)
    if float(s[-1]) - q[-1] > 1e-6:
        q = np.append(q, float(s[-1]))
    pts = np.stack([np.interp(q, s, xy[:, 0]), np.interp(q, s, xy[:, 1])], -1)
    seg = np.clip(np.searchsorted(s, q, side="right") - 1, 0, len(s) - 2)
    d = xy[seg + 1] - xy[seg]
    yaw = np.arctan2(d[:, 1], d[:, 0])
    lane = np.asarray(plan.point_lane, dtype=np.int64)[seg]
    lanes = [town.lanes[int(i)] for i in lane]
    accum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    return RoutePoints(
        xy=pts,
        forward=np.stack([np.cos(yaw), np.sin(yaw)], -1),
        yaw=yaw,
        accum=accum,
        lane=lane,
        road_lane=np.array([[ln.road_id, ln.lane_id] for ln in lanes], dtype=np.int64).reshape(-1, 2),
        junction=np.array([ln.is_junction for ln in lanes], dtype=bool),
        width=np.array([ln.width for ln in lanes], dtype=np.float64),
        speed_limit=np.array([ln.speed_limit for ln in lanes], dtype=np.float64),
    )


@nb.njit(cache=True)
def _centre(pose: np.ndarray, a: float) -> np.ndarray:
    out = np.empty((pose.shape[0], 2))
    for w in range(pose.shape[0]):
        out[w, 0] = pose[w, 0] + a * math.cos(pose[w, 2])
        out[w, 1] = pose[w, 1] + a * math.sin(pose[w, 2])
    return out


def ego_centre(pose: np.ndarray) -> np.ndarray:
    """`[W, 2]` box centres (the actor location the criteria use) of rear-axle poses `[W, 3]`."""
    return _centre(np.ascontiguousarray(pose, dtype=np.float64), float(EGO.rear_axle_to_center))


@nb.njit(cache=True)
def passed_index(xy: np.ndarray, forward: np.ndarray, pos: np.ndarray, index: np.ndarray, window: int) -> np.ndarray:
    """The last passed waypoint among `index .. index + window` of each ego.

    Args:
        xy / forward: `[R, 2]` waypoints and unit directions; pos: `[W, 2]` locations; index: `[W]` int64.

    Returns:
        `[W]` int64: the highest k in the window with `(pos − xy[k]) · forward[k] > 0`, else `index`.
    """
    W, R = pos.shape[0], xy.shape[0]
    out = index.copy()
    for w in range(W):
        for k in range(index[w], min(index[w] + window + 1, R)):
            if (pos[w, 0] - xy[k, 0]) * forward[k, 0] + (pos[w, 1] - xy[k, 1]) * forward[k, 1] > 0.0:
                out[w] = k
    return out


@nb.njit(cache=True)
def closest_index(xy: np.ndarray, pos: np.ndarray, index: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The nearest waypoint among `index .. index + window` (ties: the later one) and its distance.

    Returns:
        index `[W]` int64, distance `[W]` [m].
    """
    W, R = pos.shape[0], xy.shape[0]
    out = index.copy()
    dist = np.empty(W)
    for w in range(W):
        best = math.inf
        for k in range(index[w], min(index[w] + window + 1, R)):
            d = math.sqrt((pos[w, 0] - xy[k, 0]) ** 2 + (pos[w, 1] - xy[k, 1]) ** 2)
            if d <= best:
                best, out[w] = d, k
        dist[w] = best
    return out, dist


@nb.njit(cache=True)
def lateral_distance(xy: np.ndarray, pos: np.ndarray, index: np.ndarray, behind: int, ahead: int) -> np.ndarray:
    """`[W]` distance [m] of each location to the route polyline segments around its index
    (`index − behind .. index + ahead`)."""
    W, R = pos.shape[0], xy.shape[0]
    out = np.empty(W)
    for w in range(W):
        best = math.inf
        for k in range(max(index[w] - behind, 0), min(index[w] + ahead, R - 1)):
            ax, ay = xy[k, 0], xy[k, 1]
            dx, dy = xy[k + 1, 0] - ax, xy[k + 1, 1] - ay
            t = ((pos[w, 0] - ax) * dx + (pos[w, 1] - ay) * dy) / max(dx * dx + dy * dy, 1e-18)
            t = min(max(t, 0.0), 1.0)
            best = min(best, math.hypot(pos[w, 0] - ax - t * dx, pos[w, 1] - ay - t * dy))
        out[w] = best
    return out
