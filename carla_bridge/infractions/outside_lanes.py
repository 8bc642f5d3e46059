"""OutsideRouteLanesTest (scenario_runner `atomic_criteria.py`): distance driven outside the driving lanes
or against the traffic, as a percentage of the route distance driven.

Each step the ego's location (box centre) is

- **outside** when it lies farther than half a lane width + `allowed_out_distance` from the centre of
  the nearest driving lane and from the centre of the nearest parking lane (the width of whichever
  is nearer);
- **in the wrong lane** by a small state machine over the nearest driving lane: inside a junction
  never; on entering another (road, lane) from a junction, when the lane heads more than
  `max_vehicle_angle` away from the ego; on entering another lane outside a junction, the state
  flips when the lane direction turns by more than `max_waypoint_angle` (a lane change into the
  opposite lane, or back). Scenarios may switch the wrong-direction part off (two-way bypasses).

Distance counts over route waypoints passed (window `window` ahead): each passed waypoint adds its
distance from the previous one to the total, and to the wrong distance if the ego is outside or in a
wrong lane (with the wrong-direction test on) at that step.

The nearest-lane facts come from `lane_facts`: on the route's own lane when the ego is within
`FAST_LATERAL` of its centre (then the nearest driving lane is the route's and the ego is inside),
else from the town's lane projection and its parking lanes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from scipy.spatial import cKDTree

from carla_bridge.coords import location_to_world
from carla_bridge.maps.xodr import read_xodr
from carla_bridge.rules import OutsideLanesRule

FAST_LATERAL = 1.0
"""Within this distance of its route lane's centre [m] the ego's nearest driving lane is the route
lane and it is inside (every lane is wider than 2 × (FAST_LATERAL − allowed_out_distance))."""


@dataclass(frozen=True)
class ParkingLanes:
    """Centre points of a town's parking lanes (from its OpenDRIVE file, sampled every metre).

    Attributes:
        xy: `[K, 2]` [m]; width: `[K]` lane width [m]; tree: KD-tree over xy (None without parking lanes).
    """

    xy: np.ndarray
    width: np.ndarray
    tree: cKDTree | None

    def nearest(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance `[M]` to the nearest parking-lane centre point (inf if none), its lane width `[M]`)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.tree is None:
            return np.full(len(xy), math.inf), np.zeros(len(xy))
        d, i = self.tree.query(xy)
        return d, self.width[i]


_PARKING: dict[tuple[str, int], ParkingLanes] = {}


def parking_lanes(town, spacing: float = 1.0) -> ParkingLanes:
    """The parking lanes of `town` (cached per town): every lane of type ``parking`` of its .xodr,
    sampled through `carla.Map.get_waypoint_xodr`."""
    key = (str(town.path), id(town.carla_map))
    if key in _PARKING:
        return _PARKING[key]
    _, root = read_xodr(town.path)
    pts, widths = [], []
    for road in root.iter("road"):
        rid, length = int(road.get("id", "-1")), float(road.get("length", "0"))
        sections = road.findall("lanes/laneSection")
        starts = [float(sec.get("s", "0")) for sec in sections] + [length]
        for sec, s0, s1 in zip(sections, starts[:-1], starts[1:]):
            for lane in sec.iter("lane"):
                if lane.get("type") != "parking":
                    continue
                lid = int(lane.get("id", "0"))
                for s in np.arange(s0, s1, spacing):
                    wp = town.carla_map.get_waypoint_xodr(rid, lid, float(s))
                    if wp is not None:
                        pts.append(location_to_world(wp.transform.location)[:2])
                        widths.append(float(wp.lane_width))
    xy = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    out = ParkingLanes(xy, np.asarray(widths, dtype=np.float64), cKDTree(xy) if len(xy) else None)
    _PARKING[key] = out
    return out


@dataclass(frozen=True)
class LaneFacts:
    """The nearest-lane facts of W ego locations (numpy arrays `[W]`).

    Attributes:
        outside: outside every driving and parking lane.
        road / lane: OpenDRIVE ids of the nearest driving lane; junction: it lies in a junction;
        yaw: its direction at the nearest point [rad].
    """

    outside: np.ndarray
    road: np.ndarray
    lane: np.ndarray
    junction: np.ndarray
    yaw: np.ndarray


def lane_facts(town, parking: ParkingLanes, location: np.ndarray, rule: OutsideLanesRule) -> LaneFacts:
    """`LaneFacts` of locations `[M, 2]` from the town's driving-lane projection and parking lanes."""
    location = np.asarray(location, dtype=np.float64).reshape(-1, 2)
    lane_ids, s, _ = town.project(location)
    m = len(location)
    out = LaneFacts(
        outside=np.zeros(m, bool),
        road=np.zeros(m, np.int64),
        lane=np.zeros(m, np.int64),
        junction=np.zeros(m, bool),
        yaw=np.zeros(m),
    )
    p_dist, p_width = parking.nearest(location)
    for j in range(m):
        ln = town.lanes[int(lane_ids[j])]
        foot, yaw = ln.interpolate(float(s[j]))
        d = float(np.linalg.norm(location[j] - foot[0]))
        width = float(np.interp(float(s[j]), ln.s, ln.widths)) if ln.widths is not None else ln.width
        if d >= p_dist[j]:
            d, width = float(p_dist[j]), float(p_width[j])
        out.outside[j] = d > width / 2.0 + rule.allowed_out_distance
        out.road[j], out.lane[j], out.junction[j], out.yaw[j] = ln.road_id, ln.lane_id, ln.is_junction, yaw[0]
    return out


@nb.njit(cache=True)
def _wrap_abs_deg(a: float) -> float:
    return abs(math.degrees(math.atan2(math.sin(a), math.cos(a))))


@nb.njit(cache=True)
def _update(
    xy, forward, pos, ego_yaw, outside, road, lane, junction, wp_yaw, index, total, wrong, wrong_lane, last_road,
    last_lane, last_junction, last_yaw, direction_active, window, max_vehicle_angle, max_waypoint_angle,
):  # fmt: skip
    W, R = pos.shape[0], xy.shape[0]
    index, total, wrong, wrong_lane = index.copy(), total.copy(), wrong.copy(), wrong_lane.copy()
    last_road, last_lane, last_junction, last_yaw = (
        last_road.copy(),
        last_lane.copy(),
        last_junction.copy(),
        last_yaw.copy(),
    )
    for w in range(W):
        # the wrong-lane state machine (_is_at_wrong_lane)
        if junction[w]:
            wrong_lane[w] = False
        elif last_road[w] != road[w] or last_lane[w] != lane[w]:
            if last_junction[w]:
                wrong_lane[w] = _wrap_abs_deg(wp_yaw[w] - ego_yaw[w]) >= max_vehicle_angle
            elif _wrap_abs_deg(last_yaw[w] - wp_yaw[w]) > max_waypoint_angle:
                wrong_lane[w] = not wrong_lane[w]
        last_road[w], last_lane[w], last_junction[w], last_yaw[w] = road[w], lane[w], junction[w], wp_yaw[w]
        bad = outside[w] or (direction_active[w] and wrong_lane[w])
        # distance over the route waypoints passed
        for k in range(index[w] + 1, min(index[w] + window + 1, R)):
            if (pos[w, 0] - xy[k, 0]) * forward[k, 0] + (pos[w, 1] - xy[k, 1]) * forward[k, 1] > 0.0:
                c = index[w]
                d = math.hypot(xy[k, 0] - xy[c, 0], xy[k, 1] - xy[c, 1])
                total[w] += d
                if bad:
                    wrong[w] += d
                index[w] = k
    return index, total, wrong, wrong_lane, last_road, last_lane, last_junction, last_yaw


@dataclass(frozen=True)
class OutsideLanesState:
    """The criterion's bookkeeping of W egos (numpy arrays `[W]`).

    Attributes:
        index: last route waypoint passed; total / wrong: route distance driven, of which outside or
        in a wrong lane [m]; wrong_lane: the state machine's flag; last_road / last_lane / last_junction /
        last_yaw: the previous step's nearest lane (last_road -1 before the first step);
        direction_active: the wrong-direction test is on (scenarios switch it).
    """

    index: np.ndarray
    total: np.ndarray
    wrong: np.ndarray
    wrong_lane: np.ndarray
    last_road: np.ndarray
    last_lane: np.ndarray
    last_junction: np.ndarray
    last_yaw: np.ndarray
    direction_active: np.ndarray

    def percentage(self) -> np.ndarray:
        """`[W]` wrong / total × 100 (0 before any distance)."""
        return np.where(self.total > 0, 100.0 * self.wrong / np.maximum(self.total, 1e-12), 0.0)


def outside_lanes_update(
    points, location: np.ndarray, yaw: np.ndarray, facts: LaneFacts, state: OutsideLanesState, rule: OutsideLanesRule
) -> OutsideLanesState:
    """One step for W egos at `location [W, 2]` heading `yaw [W]` with nearest-lane `facts`
    (`points`: the route's `RoutePoints`)."""
    out = _update(
        points.xy,
        points.forward,
        np.ascontiguousarray(location, dtype=np.float64),
        np.ascontiguousarray(yaw, dtype=np.float64),
        facts.outside,
        facts.road,
        facts.lane,
        facts.junction,
        facts.yaw,
        state.index,
        state.total,
        state.wrong,
        state.wrong_lane,
        state.last_road,
        state.last_lane,
        state.last_junction,
        state.last_yaw,
        state.direction_active,
        int(rule.window),
        float(rule.max_vehicle_angle),
        float(rule.max_waypoint_angle),
    )
    return OutsideLanesState(*out, direction_active=state.direction_active)
