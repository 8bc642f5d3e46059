"""Route planning on a town's lane graph: shortest path through waypoints, in order, with lane changes
where the markings permit, densified to a ≈1 m polyline.

1. **Snap**: each waypoint gets candidate (lane, s) positions — every driving lane within
   `SNAP_SLACK` of the nearest one, heading-compatible with the waypoint's yaw when given. A
   waypoint farther than `tolerance` (10 m) from every driving lane does not snap → `ValueError`.
   The 10 m tolerance admits the one Town04 training-route point that sits 9.3 m off its lane.
2. **Search**: Dijkstra (heapq) from each candidate of waypoint i to the candidates of waypoint i+1
   (it stops `DETOUR_MARGIN` past the nearest goal: farther candidates are left unreached).
   A label is the cost to reach a lane's start; following a successor costs the lane's length, a
   lane change costs `LANE_CHANGE_COST` (lanes side by side have the same length, so where the change
   happens does not change the distance). Lanes reached from the start lane by lane changes only are
   separate states, entered at the start's s, so a goal behind the start is never reached sideways.
3. **Chain**: dynamic programming over waypoints picks one candidate each (cost + `SNAP_WEIGHT` ×
   snap distance), then legs are stitched: lane pieces, and smooth blends for lane changes.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from carla_bridge.coords import wrap_angle_np

if TYPE_CHECKING:  # pragma: no cover
    from carla_bridge.maps.town import TownMap
    from carla_bridge.routes import Route

SNAP_TOLERANCE = 10.0  # [m]
SNAP_SLACK = 1.0  # [m] candidates within nearest + slack
SNAP_MAX_CANDIDATES = 6
SNAP_WEIGHT = 2.0  # [m cost per m of snap distance]
HEADING_LIMIT = np.deg2rad(90.0)
LANE_CHANGE_COST = 5.0  # [m]
LANE_CHANGE_LENGTH = 12.0  # [m] blend length of a lane change in the polyline
POLYLINE_SPACING = 1.0  # [m]
DETOUR_MARGIN = 150.0  # [m] goals farther than the nearest reached goal + this count as unreachable


@dataclass(frozen=True)
class RoutePlan:
    """A planned route.

    Attributes:
        lane_ids: lanes in driving order (consecutive duplicates removed).
        polyline: `[P, 2]` world centreline of the route, ≈1 m spacing [m].
        s: `[P]` arc length from the start [m].
        yaw: `[P]` heading [rad].
        point_lane: `[P]` int64 lane each polyline point lies on (the target lane during a lane change).
        waypoint_s: `[W]` arc length at which the route passes each snapped waypoint [m].
        snap_distance: `[W]` distance from each waypoint to its snapped lane position [m].
    """

    lane_ids: list[int]
    polyline: np.ndarray
    s: np.ndarray
    yaw: np.ndarray
    point_lane: np.ndarray
    waypoint_s: np.ndarray
    snap_distance: np.ndarray

    @property
    def length(self) -> float:
        return float(self.s[-1]) if len(self.s) else 0.0


@dataclass(frozen=True)
class _Cand:
    lane: int
    s: float
    dist: float


# A search state: (lane, lateral_from_start); lateral_from_start = 1 for the start lane and lanes
# reached from it by lane changes only (entered at the start's s), 0 for lanes entered at s = 0.
_State = tuple[int, int]


def _snap(town: TownMap, xy: np.ndarray, yaw: np.ndarray, tolerance: float) -> list[list[_Cand]]:
    cands = town.lane_candidates(xy, tolerance)
    out: list[list[_Cand]] = []
    for i, (lane, s, dist, lyaw) in enumerate(cands):
        if len(lane) == 0:
            _, _, lat = town.project(xy[i : i + 1])
            raise ValueError(
                f"route waypoint {i} at world ({xy[i, 0]:.1f}, {xy[i, 1]:.1f}) does not snap to {town.name}: "
                f"nearest driving lane is {abs(lat[0]):.1f} m away (tolerance {tolerance} m)"
            )
        ok = np.ones(len(lane), bool)
        if np.isfinite(yaw[i]):
            ok = np.abs(wrap_angle_np(lyaw - yaw[i])) < HEADING_LIMIT
            if not ok.any():
                ok[:] = True
        lane, s, dist = lane[ok], s[ok], dist[ok]
        keep = dist <= dist[0] + SNAP_SLACK
        out.append(
            [_Cand(int(a), float(b), float(c)) for a, b, c in zip(lane[keep], s[keep], dist[keep])][
                :SNAP_MAX_CANDIDATES
            ]
        )
    return out


def _lengths(town: TownMap) -> list[float]:
    """Lane lengths, cached on the town (the search reads them millions of times)."""
    cached = getattr(town, "_route_lengths", None)
    if cached is None or len(cached) != len(town.lanes):
        cached = [ln.length for ln in town.lanes]
        town._route_lengths = cached  # type: ignore[attr-defined]
    return cached


def _dijkstra(
    town: TownMap, src: _Cand, goals: list[_Cand]
) -> tuple[list[float], dict[_State, tuple[_State | None, str]], list[_State | None]]:
    """Costs from `src` to each goal, the parent map, and the goal state reached (None if unreachable)."""
    lanes = town.lanes
    length = _lengths(town)

    def mapped_s(lane: int) -> float:  # the start's s carried sideways onto a parallel lane
        return src.s * length[lane] / max(length[src.lane], 1e-6)

    start: _State = (src.lane, 1)
    label: dict[_State, float] = {start: -src.s}
    parent: dict[_State, tuple[_State | None, str]] = {start: (None, "start")}
    heap: list[tuple[float, _State]] = [(-src.s, start)]
    best = [np.inf] * len(goals)
    best_state: list[_State | None] = [None] * len(goals)
    goal_lanes: dict[int, list[int]] = {}
    for gi, g in enumerate(goals):
        goal_lanes.setdefault(g.lane, []).append(gi)
    done: set[_State] = set()
    while heap:
        c, st = heapq.heappop(heap)
        if st in done:
            continue
        done.add(st)
        if all(c >= b for b in best):  # every goal is settled: nothing cheaper can come
            break
        if c > min(best) + DETOUR_MARGIN:  # the other goals would cost a detour no chain of legs picks
            break
        lane, lat = st
        for gi in goal_lanes.get(lane, []):
            g = goals[gi]
            if lat == 1 and g.s < mapped_s(lane) - 0.5:
                continue  # behind the entry point on a sideways-reached lane
            if c + g.s < best[gi]:
                best[gi], best_state[gi] = c + g.s, st
        ln = lanes[lane]
        steps: list[tuple[_State, float, str]] = [((k, 0), c + length[lane], "succ") for k in ln.successors]
        for side in ("left", "right"):
            nb = getattr(ln, side)
            if nb is not None:
                # Sideways from the start chain keeps the entry s (label shifts by the mapped start s).
                nc = c + LANE_CHANGE_COST + (mapped_s(lane) - mapped_s(nb) if lat == 1 else 0.0)
                steps.append(((nb, lat), nc, side))
        for nst, nc, kind in steps:
            if nst not in done and nc < label.get(nst, np.inf):
                label[nst] = nc
                parent[nst] = (st, kind)
                heapq.heappush(heap, (nc, nst))
    return best, parent, best_state


def _path(parent: dict[_State, tuple[_State | None, str]], goal: _State) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    st: _State | None = goal
    while st is not None:
        prev, kind = parent[st]
        out.append((st[0], kind))
        st = prev
    return out[::-1]


def _leg_points(town: TownMap, steps: list[tuple[int, str]], s0: float, s1: float) -> tuple[np.ndarray, np.ndarray]:
    """Polyline `[Q, 2]` and lane per point `[Q]` for one leg: `steps` from (steps[0] lane, s0) to (last lane, s1)."""
    lanes = town.lanes
    pts: list[np.ndarray] = []
    lab: list[np.ndarray] = []

    def piece(lane: int, a: float, b: float) -> None:
        if b < a:
            return
        n = max(2, int(np.ceil((b - a) / POLYLINE_SPACING)) + 1)
        xy, _ = lanes[lane].interpolate(np.linspace(a, b, n))
        pts.append(xy)
        lab.append(np.full(n, lane))

    cur, entry = steps[0][0], s0
    for i, (nxt, kind) in enumerate(steps[1:], start=1):
        if kind == "succ":
            piece(cur, entry, lanes[cur].length)
            cur, entry = nxt, 0.0
            continue
        # Lane change cur → nxt, blended over up to LANE_CHANGE_LENGTH. A chain of k changes in a row shares
        # the room up to the chain's last lane's end (or the leg's goal); the chain is centred in that room
        # (markings near junctions are often solid), the changes of a chain follow each other directly.
        ratio = lanes[nxt].length / max(lanes[cur].length, 1e-6)
        k = 1
        while i + k < len(steps) and steps[i + k][1] in ("left", "right"):
            k += 1
        j = i + k - 1
        end = s1 if j == len(steps) - 1 else lanes[steps[j][0]].length
        avail = max(0.0, end - entry * ratio)
        blend = min(LANE_CHANGE_LENGTH, 0.8 * avail / k)
        if steps[i - 1][1] not in ("left", "right"):  # first change of its chain
            start = entry + 0.5 * max(0.0, avail - k * blend) / max(ratio, 1e-6)
            piece(cur, entry, start)
            entry = start
        n = max(2, int(np.ceil(blend / POLYLINE_SPACING)) + 1)
        sa = np.linspace(entry, entry + blend / max(ratio, 1e-6), n)
        a, _ = lanes[cur].interpolate(sa)
        b, _ = lanes[nxt].interpolate(sa * ratio)
        w = np.linspace(0.0, 1.0, n)
        w = (w * w * (3.0 - 2.0 * w))[:, None]  # smoothstep
        pts.append((1.0 - w) * a + w * b)
        lab.append(np.full(n, nxt))
        cur, entry = nxt, float(sa[-1] * ratio)
    piece(cur, entry, s1)
    if not pts:  # zero-length leg
        xy, _ = lanes[cur].interpolate(s1)
        return xy, np.array([cur])
    return np.concatenate(pts), np.concatenate(lab)


def _resample(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    keep = np.ones(len(points), bool)
    keep[1:] = np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-3
    points, labels = points[keep], labels[keep]
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    total = cum[-1]
    n = max(2, int(np.ceil(total / POLYLINE_SPACING)) + 1)
    s = np.linspace(0.0, total, n)
    xy = np.stack([np.interp(s, cum, points[:, 0]), np.interp(s, cum, points[:, 1])], -1)
    lab = labels[np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(labels) - 1)]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])  # chord lengths
    d = np.gradient(xy, axis=0) if n > 1 else np.zeros_like(xy)
    return xy, s, np.arctan2(d[:, 1], d[:, 0]), lab


def plan_route(
    town_map: TownMap, waypoints: np.ndarray, yaw: np.ndarray | None = None, tolerance: float = SNAP_TOLERANCE
) -> RoutePlan:
    """Shortest lane path through `waypoints` in order.

    Args:
        town_map: the town.
        waypoints: `[W, 2 or 3]` world-frame waypoints [m] (z is not used).
        yaw: optional `[W]` waypoint headings [rad] (NaN = unknown) to pick the lane direction.
        tolerance: maximum snap distance [m].

    Raises:
        ValueError: fewer than 1 waypoint, non-finite values, a waypoint farther than `tolerance` from
            every driving lane, or no lane path between two consecutive waypoints.
    """
    w = np.asarray(waypoints, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] not in (2, 3) or len(w) == 0:
        raise ValueError(f"plan_route: waypoints must have shape [W>=1, 2|3], got {list(w.shape)}")
    if not np.isfinite(w).all():
        raise ValueError("plan_route: waypoints contain NaN or inf")
    xy = w[:, :2]
    yaw = np.full(len(w), np.nan) if yaw is None else np.asarray(yaw, dtype=np.float64).reshape(len(w))
    cands = _snap(town_map, xy, yaw, tolerance)
    n = len(cands)
    # Dynamic programming over waypoints: cost[i][c], back[i][c] = (prev candidate, goal state, parent map).
    cost = [np.array([SNAP_WEIGHT * c.dist for c in cands[0]])]
    back: list[list[tuple[int, object, dict] | None]] = [[None] * len(cands[0])]
    for i in range(n - 1):
        nc = np.full(len(cands[i + 1]), np.inf)
        nb: list[tuple[int, object, dict] | None] = [None] * len(cands[i + 1])
        for ci, c in enumerate(cands[i]):
            if not np.isfinite(cost[i][ci]):
                continue
            d, parent, goal_states = _dijkstra(town_map, c, cands[i + 1])
            for gi, g in enumerate(cands[i + 1]):
                total = cost[i][ci] + d[gi] + SNAP_WEIGHT * g.dist
                if total < nc[gi]:
                    nc[gi], nb[gi] = total, (ci, goal_states[gi], parent)
        if not np.isfinite(nc).any():
            raise ValueError(
                f"plan_route: no lane path on {town_map.name} from waypoint {i} ({xy[i, 0]:.1f}, {xy[i, 1]:.1f}) "
                f"to waypoint {i + 1} ({xy[i + 1, 0]:.1f}, {xy[i + 1, 1]:.1f})"
            )
        cost.append(nc)
        back.append(nb)
    # Backtrack the chosen candidates.
    chosen = [int(np.argmin(cost[-1]))]
    legs: list[tuple[list[tuple[int, str]], float, float]] = []
    for i in range(n - 1, 0, -1):
        ci = chosen[-1]
        prev, goal_state, parent = back[i][ci]  # type: ignore[misc]
        legs.append((_path(parent, goal_state), cands[i - 1][prev].s, cands[i][ci].s))  # type: ignore[arg-type]
        chosen.append(prev)
    chosen, legs = chosen[::-1], legs[::-1]
    pts, labs, marks = [], [], []
    if not legs:
        c = cands[0][chosen[0]]
        xy0, _ = town_map.lanes[c.lane].interpolate(c.s)
        pts, labs = [xy0], [np.array([c.lane])]
    count = sum(len(x) for x in pts)
    for steps, s0, s1 in legs:
        p, lab = _leg_points(town_map, steps, s0, s1)
        marks.append(count)
        count += len(p)
        pts.append(p)
        labs.append(lab)
    points, labels = np.concatenate(pts), np.concatenate(labs)
    raw_cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    xy_r, s, yaw_r, lab_r = _resample(points, labels)
    # Arc length at each waypoint: where each leg starts (+ the route end).
    wp_s = np.array([raw_cum[m] for m in marks] + [raw_cum[-1]]) if legs else np.zeros(1)
    wp_s = wp_s * (s[-1] / raw_cum[-1] if raw_cum[-1] > 0 else 1.0)
    seq = [int(lane) for steps, _, _ in legs for lane, _ in steps] if legs else [int(labels[0])]
    lane_ids = [x for i, x in enumerate(seq) if i == 0 or x != seq[i - 1]]
    snap = np.array([cands[i][chosen[i]].dist for i in range(n)])
    return RoutePlan(lane_ids, xy_r, s, yaw_r, lab_r.astype(np.int64), wp_s, snap)


def plan_route_for(route: Route, town_map: TownMap | None = None, tolerance: float = SNAP_TOLERANCE) -> RoutePlan:
    """Plan a parsed `Route` on its town (loaded by name when `town_map` is None).

    Raises:
        FileNotFoundError: the route's town is not vendored (the message names it and lists the towns).
        ValueError: the route does not snap to the map.
    """
    if town_map is None:
        from carla_bridge.maps.town import load_town

        town_map = load_town(route.town)
    return plan_route(town_map, route.waypoints_world, route.yaw, tolerance)
