"""Map and route queries that place scenario actors (build time, numpy): the srunner waypoint idioms
(`wp.next(d)`, `_move_waypoint_forward` stopping at junctions, `get_left_lane`, the sidewalk beside a
lane, junction entries and their directions, `generate_target_waypoint`, `generate_target_waypoint_in_route`)
on our lane graph, with `carla.Map` waypoints for lateral neighbours as the reference does.

Positions are (lane id, arc length s on that lane); paths are lists of `PathSegment`s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from carla_bridge.coords import location_to_world, wrap_angle_np
from carla_bridge.scenarios.spec import PathSegment

TURN_LIMIT = math.radians(30.0)
"""A junction lane turning more than this is a left / right turn, else straight."""


class PlacementError(ValueError):
    """The scenario cannot be placed here (the srunner `_initialize_actors` ValueError: "Couldn't find …")."""


def lane_s(town, lane: int, xy: np.ndarray) -> float:
    """Arc length on `lane` of the point of its centreline nearest to `xy [2]`."""
    ln = town.lanes[lane]
    a, b = ln.points[:-1], ln.points[1:]
    d = b - a
    t = np.clip(
        np.einsum("ij,ij->i", np.asarray(xy)[None] - a, d) / np.maximum(np.einsum("ij,ij->i", d, d), 1e-12), 0, 1
    )
    p = a + t[:, None] * d
    i = int(np.argmin(np.linalg.norm(p - np.asarray(xy)[None], axis=1)))
    return float(ln.s[i] + t[i] * np.linalg.norm(d[i]))


def lane_pose(town, lane: int, s: float, lateral: float = 0.0) -> tuple[float, float, float]:
    """World (x, y, yaw) at arc length `s` on `lane`, `lateral` metres to its left."""
    xy, yaw = town.lanes[lane].interpolate(np.array([s]))
    h = float(yaw[0])
    return float(xy[0, 0] - math.sin(h) * lateral), float(xy[0, 1] + math.cos(h) * lateral), h


def carla_waypoint(town, lane: int, s: float):
    """The `carla.Waypoint` at (lane, s)."""
    ln = town.lanes[lane]
    s = min(max(s, 0.0), ln.length)
    x0, x1 = ln.xodr_s
    xs = x0 + (x1 - x0) * min(max(s / max(ln.length, 1e-6), 0.0), 1.0)
    lo, hi = min(x0, x1), max(x0, x1)
    wp = town.carla_map.get_waypoint_xodr(ln.road_id, ln.lane_id, float(min(max(xs, lo + 1e-3), hi - 1e-3)))
    if wp is None:
        raise PlacementError(f"no CARLA waypoint on lane {ln.key} at s={s:.1f}")
    return wp


def from_waypoint(town, wp) -> tuple[int, float] | None:
    """(lane, s) of a driving-lane `carla.Waypoint`, None for other lane types."""
    lane = town.lane_key_to_id.get((int(wp.road_id), int(wp.section_id), int(wp.lane_id)))
    if lane is None:
        return None
    return lane, lane_s(town, lane, location_to_world(wp.transform.location)[:2])


def side_lane(town, lane: int, s: float, side: str) -> tuple[int, float, bool] | None:
    """The driving lane directly to the `side` ('left' / 'right') of (lane, s) as `wp.get_left_lane()`:
    (lane, s on it, same direction), None when that is not a driving lane."""
    import carla

    wp = carla_waypoint(town, lane, s)
    n = wp.get_left_lane() if side == "left" else wp.get_right_lane()
    if n is None or n.lane_type != carla.LaneType.Driving:
        return None
    pos = from_waypoint(town, n)
    if pos is None:
        return None
    return pos[0], pos[1], n.lane_id * wp.lane_id > 0


def side_lane_waypoint(town, lane: int, s: float, side: str):
    """`wp.get_left_lane()` / `get_right_lane()` of (lane, s), of any lane type (None at the road edge)."""
    wp = carla_waypoint(town, lane, s)
    return wp.get_left_lane() if side == "left" else wp.get_right_lane()


def walk_out(town, lane: int, s: float, side: str, stop) -> tuple[object, object]:
    """Walk from the driving lane (lane, s) outwards to `side` across neighbouring lanes of any type (after
    crossing the centre line, on towards that road edge) until `stop(lane_type_name)` holds.

    Returns:
        (the `carla.Waypoint` where it stopped — or the outermost one reached —, the start waypoint).
    """
    wp = carla_waypoint(town, lane, s)
    getter = "get_left_lane" if side == "left" else "get_right_lane"
    cur = wp
    for _ in range(12):
        n = getattr(cur, getter)()
        if n is None:
            break
        if n.lane_id * cur.lane_id < 0:  # crossed the centre: "outwards" flips for the other side's lanes
            getter = "get_right_lane" if getter == "get_left_lane" else "get_left_lane"
        cur = n
        if stop(str(cur.lane_type)):
            break
    return cur, wp


def offset_of(town, lane: int, s: float, wp) -> float:
    """Signed lateral offset [m] (+ left) of a waypoint's location from the centre of (lane, s)."""
    x0, y0, h = lane_pose(town, lane, s)
    p = location_to_world(wp.transform.location)[:2]
    return float(np.dot(p - (x0, y0), (-math.sin(h), math.cos(h))))


def sidewalk_offset(town, lane: int, s: float, side: str) -> tuple[float, bool]:
    """Lateral offset [m] (+ left) of the sidewalk centre on `side` of (lane, s) as srunner finds it
    (walking out until a Sidewalk lane), and whether one was found; without one, 1.5 m beyond the
    outermost lane's centre (`_get_sidewalk_transform`'s `k`)."""
    end, start = walk_out(town, lane, s, side, lambda kind: kind == "Sidewalk")
    if end is start:
        return (0.5 * town.lanes[lane].width + 1.5) * (1.0 if side == "left" else -1.0), False
    off = offset_of(town, lane, s, end)
    if str(end.lane_type) == "Sidewalk":
        return off, True
    return off + 1.5 * (1.0 if off >= 0 else -1.0), False


def turn_of(town, lane: int) -> int:
    """-1 left, 0 straight, +1 right (srunner's turn convention) for a lane's heading change."""
    y = town.lanes[lane].yaw
    d = float(wrap_angle_np(y[-1] - y[0]))
    return -1 if d > TURN_LIMIT else (1 if d < -TURN_LIMIT else 0)


def follow(town, lane: int, s: float, dist: float, stop_at_junction: bool, prefer=()) -> tuple[int, float]:
    """(lane, s) `dist` metres ahead following successors (preferring lanes in `prefer`, else the first);
    with `stop_at_junction`, the last position before a junction lane (`_move_waypoint_forward`)."""
    lanes = town.lanes
    left = dist
    while True:
        ln = lanes[lane]
        if s + left <= ln.length:
            return lane, s + left
        if not ln.successors:
            return lane, ln.length
        nxt = next((k for k in ln.successors if k in prefer), ln.successors[0])
        if stop_at_junction and lanes[nxt].is_junction and not ln.is_junction:
            return lane, ln.length
        left -= ln.length - s
        lane, s = nxt, 0.0


def back(town, lane: int, s: float, dist: float, stop_at_junction: bool) -> tuple[int, float]:
    """(lane, s) `dist` metres behind following predecessors (the first), stopping before a junction lane
    when `stop_at_junction` (`_move_waypoint_backwards`)."""
    lanes = town.lanes
    left = dist
    while True:
        if s - left >= 0.0:
            return lane, s - left
        ln = lanes[lane]
        if not ln.predecessors:
            return lane, 0.0
        prv = ln.predecessors[0]
        if stop_at_junction and lanes[prv].is_junction and not ln.is_junction:
            return lane, 0.0
        left -= s
        lane, s = prv, lanes[prv].length


def lane_path(town, start: tuple[int, float], end: tuple[int, float], lat: float = 0.0, prefer=()) -> list[PathSegment]:
    """Segments following successors from `start` to `end` (preferring lanes in `prefer`), at lateral `lat`.

    Raises:
        PlacementError: `end` is not reached within 40 lanes.
    """
    lane, s = start
    out: list[PathSegment] = []
    for _ in range(40):
        ln = town.lanes[lane]
        if lane == end[0] and end[1] >= s - 1e-6:
            out.append(PathSegment(lane, s, end[1], lat, lat))
            return out
        out.append(PathSegment(lane, s, ln.length, lat, lat))
        if not ln.successors:
            break
        lane, s = next((k for k in ln.successors if k in prefer or k == end[0]), ln.successors[0]), 0.0
    raise PlacementError(f"no lane path from lane {start[0]} to lane {end[0]}")


def through_junction(town, lane: int, turn: int) -> list[int]:
    """From the entry `lane`, the lanes through the next junction choosing `turn` (-1 left, 0 straight, +1
    right; `choose_at_junction`): [lanes up to the junction …, junction lane, exit lane].

    Raises:
        PlacementError: no junction within 10 lanes.
    """
    lanes = town.lanes
    out = [lane]
    for _ in range(10):
        ln = lanes[out[-1]]
        choices = [k for k in ln.successors if lanes[k].is_junction]
        if choices:
            angle = [float(wrap_angle_np(lanes[k].yaw[-1] - lanes[k].yaw[0])) for k in choices]
            if turn < 0:
                j = choices[int(np.argmax(angle))]
            elif turn > 0:
                j = choices[int(np.argmin(angle))]
            else:
                j = choices[int(np.argmin(np.abs(angle)))]
            out.append(j)
            nxt = lanes[j].successors
            if not nxt:
                raise PlacementError(f"junction lane {lanes[j].key} leads nowhere")
            out.append(nxt[0])
            return out
        if not ln.successors:
            break
        out.append(ln.successors[0])
    raise PlacementError(f"no junction ahead of lane {lanes[lane].key}")


def junction_entries(town, junction_id: int) -> list[int]:
    """Non-junction lanes that lead into junction `junction_id` (each once)."""
    out = []
    for ln in town.lanes:
        if not ln.is_junction and any(town.lanes[k].junction_id == junction_id for k in ln.successors):
            out.append(ln.id)
    return out


def direction_of(town, entry: int, ref_yaw: float) -> str:
    """Where an entry lane comes from relative to a heading, as `filter_junction_wp_direction`: 'ref',
    'left', 'opposite' or 'right' (by the entry's end heading)."""
    yaw = float(town.lanes[entry].yaw[-1])
    diff = math.degrees(float(wrap_angle_np(ref_yaw - yaw))) % 360.0  # CARLA's clockwise yaw difference
    if diff > 330.0 or diff <= 30.0:
        return "ref"
    if diff > 225.0:
        return "right"
    if diff > 135.0:
        return "opposite"
    return "left"


@dataclass(frozen=True)
class JunctionPass:
    """The route's pass through a junction: route arc lengths where it enters / leaves the junction
    lanes, the junction id, the route's lane before (entry) and after (exit), and the turn taken."""

    entry_s: float
    exit_s: float
    junction_id: int
    entry_lane: int
    exit_lane: int
    turn: int


class RouteView:
    """The ego's route (a `RoutePlan`) on its town, with the queries scenario builders need."""

    def __init__(self, town, plan) -> None:
        self.town = town
        self.xy = np.asarray(plan.polyline, dtype=np.float64)
        self.s = np.asarray(plan.s, dtype=np.float64)
        self.yaw = np.asarray(plan.yaw, dtype=np.float64)
        self.point_lane = np.asarray(plan.point_lane, dtype=np.int64)
        self.lanes = [int(x) for x in plan.lane_ids]
        self.length = float(self.s[-1])

    def index(self, s: float) -> int:
        return int(np.clip(np.searchsorted(self.s, s, side="right") - 1, 0, len(self.s) - 1))

    def pose(self, s: float) -> tuple[float, float, float]:
        i = self.index(s)
        j = min(i + 1, len(self.s) - 1)
        f = 0.0 if j == i else (s - self.s[i]) / max(self.s[j] - self.s[i], 1e-9)
        xy = self.xy[i] + f * (self.xy[j] - self.xy[i])
        return float(xy[0]), float(xy[1]), float(self.yaw[i])

    def lane_at(self, s: float) -> tuple[int, float]:
        """(lane, s on it) of the route at arc length `s`."""
        i = self.index(min(max(s, 0.0), self.length))
        lane = int(self.point_lane[i])
        return lane, lane_s(self.town, lane, np.array(self.pose(s)[:2]))

    def project(self, xy: np.ndarray) -> tuple[float, float, float]:
        """(route s, distance [m], route heading) of the route point nearest to `xy`."""
        i = int(np.argmin(np.linalg.norm(self.xy - np.asarray(xy)[None, :2], axis=1)))
        return float(self.s[i]), float(np.linalg.norm(self.xy[i] - xy[:2])), float(self.yaw[i])

    def is_junction(self, s: float) -> bool:
        return bool(self.town.lanes[int(self.point_lane[self.index(s)])].is_junction)

    def junction_after(self, s: float) -> JunctionPass:
        """The route's first junction pass starting at or after arc length `s`.

        Raises:
            PlacementError: the route crosses no junction after `s`.
        """
        lanes = self.town.lanes
        i = self.index(s)
        jflag = np.array([lanes[int(k)].is_junction for k in self.point_lane])
        ahead = np.flatnonzero(jflag[i:])
        if not len(ahead):
            raise PlacementError(f"the route crosses no junction after s={s:.0f} m")
        a = i + int(ahead[0])
        after = np.flatnonzero(~jflag[a:])
        b = a + int(after[0]) if len(after) else len(jflag) - 1
        jl = int(self.point_lane[a])
        entry = int(self.point_lane[max(a - 1, 0)])
        exit_ = int(self.point_lane[b])
        y0, y1 = self.yaw[max(a - 1, 0)], self.yaw[b]
        d = float(wrap_angle_np(y1 - y0))
        turn = -1 if d > TURN_LIMIT else (1 if d < -TURN_LIMIT else 0)
        return JunctionPass(float(self.s[a]), float(self.s[b]), lanes[jl].junction_id, entry, exit_, turn)

    def stop_before_junction(self, s: float, dist: float) -> float:
        """Route arc length `dist` ahead of `s`, but not into a junction that begins after `s`
        (`_move_waypoint_forward`)."""
        target = min(s + dist, self.length)
        try:
            jp = self.junction_after(s + 1e-3)
        except PlacementError:
            return target
        if self.is_junction(s):
            return target
        return min(target, jp.entry_s - 0.5)

    def path(self, s0: float, s1: float, lat: float = 0.0) -> list[PathSegment]:
        """Segments of the route's own lanes from route s0 to s1 (one per lane run)."""
        i0, i1 = self.index(s0), self.index(s1)
        out: list[PathSegment] = []
        k = i0
        while k <= i1:
            lane = int(self.point_lane[k])
            m = k
            while m + 1 <= i1 and int(self.point_lane[m + 1]) == lane:
                m += 1
            a = self.pose(s0)[:2] if k == i0 else self.xy[k]
            b = self.pose(s1)[:2] if m == i1 else self.xy[m]
            sa, sb = lane_s(self.town, lane, np.array(a)), lane_s(self.town, lane, np.array(b))
            if out and lane in self.town.lanes[out[-1].lane].successors:
                sa = 0.0  # continues from the previous lane's end
            if m + 1 <= i1:  # run on to the lane's end (the next run starts on its successor / neighbour)
                nxt = int(self.point_lane[m + 1])
                if nxt in self.town.lanes[lane].successors:
                    sb = self.town.lanes[lane].length
            out.append(PathSegment(lane, sa, max(sa, sb), lat, lat))
            k = m + 1
        return out


def same_dir_lanes(town, lane: int, s: float) -> list[tuple[int, float]]:
    """`get_same_dir_lanes`: the driving lanes of the road at (lane, s) in its direction, from the
    centre-most (left) to the edge (right)."""
    out = [(lane, s)]
    for side in ("left", "right"):
        cur = (lane, s)
        for _ in range(8):
            n = side_lane(town, cur[0], cur[1], side)
            if n is None or not n[2]:
                break
            cur = (n[0], n[1])
            if side == "left":
                out.insert(0, cur)
            else:
                out.append(cur)
    return out


def line_intersection(p0: np.ndarray, d0: np.ndarray, p1: np.ndarray, d1: np.ndarray) -> np.ndarray | None:
    """Intersection `[2]` of the lines p0 + t·d0 and p1 + u·d1 (None when parallel)."""
    den = d0[0] * d1[1] - d0[1] * d1[0]
    if abs(den) < 1e-9:
        return None
    t = ((p1[0] - p0[0]) * d1[1] - (p1[1] - p0[1]) * d1[0]) / den
    return np.asarray(p0, dtype=np.float64) + t * np.asarray(d0, dtype=np.float64)
