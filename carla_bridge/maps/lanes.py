"""The lane graph: driving lanes densified from `carla.Map` waypoints, and their padded tensor form.

One `Lane` per OpenDRIVE (road, section, lane) of type Driving, as `carla.Map.get_topology()` lists
them: its first element is the lane's start waypoint, its second the start of each successor lane.
Each lane is densified to a ≈1 m centreline in driving direction with ``next_until_lane_end(1.0)``
and closed with its successor's first point, so consecutive lanes join without gaps.
Left/right neighbours are adjacent same-direction driving lanes that the lane's markings allow a
change into (``waypoint.lane_change`` at the lane's midpoint).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from carla_bridge.coords import carla_yaw_deg_to_world_rad, location_to_world, wrap_angle_np

DEFAULT_SPEED_LIMIT = 30.0 / 3.6  # [m/s] CARLA's town default
LANE_SPACING = 1.0  # [m] centreline point spacing


@dataclass
class Lane:
    """One driving lane.

    Attributes:
        id: index into `TownMap.lanes`.
        points: `[P, 2]` world centreline (x, y) [m] in driving direction, ≈1 m spacing.
        yaw: `[P]` heading [rad] along the centreline.
        s: `[P]` arc length from the lane's start [m] (s[0] = 0).
        z: `[P]` ground height [m].
        width: mean lane width [m].
        road_id, section_id, lane_id: OpenDRIVE identifiers.
        is_junction: the lane is a connecting lane inside a junction.
        junction_id: OpenDRIVE junction id, -1 if none.
        successors / predecessors: lane ids reachable from the end / leading to the start.
        left / right: id of the adjacent same-direction lane a change into is permitted, or None.
        speed_limit: [m/s].
        left_marking / right_marking: CARLA lane-marking type names ('Solid', 'Broken', 'NONE', …).
        widths: `[P]` lane width at each point [m].
        xodr_s: OpenDRIVE road s at the lane's first and last point (s decreases along positive lanes).
    """

    id: int
    points: np.ndarray
    yaw: np.ndarray
    s: np.ndarray
    z: np.ndarray
    width: float
    road_id: int
    section_id: int
    lane_id: int
    is_junction: bool
    junction_id: int
    successors: list[int] = field(default_factory=list)
    predecessors: list[int] = field(default_factory=list)
    left: int | None = None
    right: int | None = None
    speed_limit: float = DEFAULT_SPEED_LIMIT
    left_marking: str = "NONE"
    right_marking: str = "NONE"
    widths: np.ndarray | None = None
    xodr_s: tuple[float, float] = (0.0, 0.0)

    @property
    def length(self) -> float:
        """Centreline length [m]."""
        return float(self.s[-1])

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.road_id, self.section_id, self.lane_id)

    def interpolate(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Arc lengths `[M]` → (`[M, 2]` points, `[M]` yaw) on the centreline (clamped to the lane)."""
        s = np.clip(np.atleast_1d(np.asarray(s, dtype=np.float64)), 0.0, self.length)
        x = np.interp(s, self.s, self.points[:, 0])
        y = np.interp(s, self.s, self.points[:, 1])
        i = np.clip(np.searchsorted(self.s, s, side="right") - 1, 0, len(self.s) - 2)
        d = self.points[i + 1] - self.points[i]
        return np.stack([x, y], -1), np.arctan2(d[:, 1], d[:, 0])


@dataclass(frozen=True)
class LaneArrays:
    """All lanes padded into tensors for vectorized simulation (L lanes, P = max points, S = max successors).

    Attributes:
        points: `[L, P, 2]` centrelines, padded by repeating the last point.
        yaw: `[L, P]`, padded by repeating the last value.
        s: `[L, P]` arc length, padded by repeating the lane length.
        z: `[L, P]`.
        num_points: `[L]` int64.
        length: `[L]` lane length [m].
        successors: `[L, S]` int64 lane ids, -1 padded.
        predecessors: `[L, S2]` int64 lane ids, -1 padded.
        left / right: `[L]` int64 neighbour ids, -1 if none.
        is_junction: `[L]` bool.
        junction_id: `[L]` int64 (-1 none).
        width: `[L]`.
        speed_limit: `[L]` [m/s].
    """

    points: Tensor
    yaw: Tensor
    s: Tensor
    z: Tensor
    num_points: Tensor
    length: Tensor
    successors: Tensor
    predecessors: Tensor
    left: Tensor
    right: Tensor
    is_junction: Tensor
    junction_id: Tensor
    width: Tensor
    speed_limit: Tensor


def _key(wp: Any) -> tuple[int, int, int]:
    return (int(wp.road_id), int(wp.section_id), int(wp.lane_id))


def _densify(start: Any, end_points: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, Any, tuple[float, float]]:
    """Start waypoint → (`[P, 4]` world (x, y, z, lane width), `[P]` yaw, midpoint waypoint, OpenDRIVE s range)."""
    key = _key(start)
    wps = [start]
    # next_until_lane_end runs on across lane sections of the same road: cut at the first other section.
    for w in start.next_until_lane_end(LANE_SPACING):
        if _key(w) != key:
            break
        wps.append(w)
    pts = np.stack([np.append(location_to_world(w.transform.location), w.lane_width) for w in wps])
    yaw = np.array([carla_yaw_deg_to_world_rad(w.transform.rotation.yaw) for w in wps], dtype=np.float64)
    if end_points:
        end = end_points[0]
        if np.linalg.norm(end[:2] - pts[-1, :2]) > 0.05:
            pts = np.concatenate([pts, np.append(end, pts[-1, 3])[None]])
            yaw = np.concatenate([yaw, yaw[-1:]])
    # Drop duplicate points (zero-length segments).
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(pts[:, :2], axis=0), axis=1) > 1e-3
    pts, yaw = pts[keep], yaw[keep]
    if len(pts) == 1:  # degenerate lane: extend along its heading so it has one segment
        p2 = pts[0].copy()
        p2[:2] += 0.01 * np.array([np.cos(yaw[0]), np.sin(yaw[0])])
        pts, yaw = np.stack([pts[0], p2]), np.concatenate([yaw, yaw])
    return pts, yaw, wps[len(wps) // 2], (float(start.s), float(wps[-1].s))


def _resample(pts: np.ndarray, yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample `[P, C]` points (x, y, …) and `[P]` yaw to uniform arc-length spacing ≤ `LANE_SPACING`,
    keeping both ends.

    CARLA steps waypoints by reference-line s, so lanes off the reference line on curves come out
    unevenly spaced (up to ~1.25 m on Town01's outer lanes)."""
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts[:, :2], axis=0), axis=1))])
    n = max(2, int(np.ceil(cum[-1] / LANE_SPACING - 1e-9)) + 1)
    s = np.linspace(0.0, cum[-1], n)
    out = np.stack([np.interp(s, cum, pts[:, k]) for k in range(pts.shape[1])], -1)
    return out, np.asarray(wrap_angle_np(np.interp(s, cum, np.unwrap(yaw))))


def build_lanes(carla_map: Any, speed_limits: dict[int, float] | None = None) -> list[Lane]:
    """Build the driving-lane graph of a `carla.Map`.

    Args:
        carla_map: a loaded `carla.Map`.
        speed_limits: road id → speed limit [m/s]; roads not listed get `DEFAULT_SPEED_LIMIT`.

    Returns:
        lanes sorted by (road, section, lane) id, with successors/predecessors and neighbours filled.
    """
    import carla

    speed_limits = speed_limits or {}
    starts: dict[tuple[int, int, int], Any] = {}
    succ_keys: dict[tuple[int, int, int], list[tuple[int, int, int]]] = defaultdict(list)
    succ_points: dict[tuple[int, int, int], list[np.ndarray]] = defaultdict(list)
    for a, b in carla_map.get_topology():
        if a.lane_type != carla.LaneType.Driving:
            continue
        ka, kb = _key(a), _key(b)
        starts.setdefault(ka, a)
        if b.lane_type == carla.LaneType.Driving and kb != ka:
            starts.setdefault(kb, b)  # lanes without successors appear only as a successor
        if kb != ka and kb not in succ_keys[ka]:
            succ_keys[ka].append(kb)
            succ_points[ka].append(location_to_world(b.transform.location))
    keys = sorted(starts)
    index = {k: i for i, k in enumerate(keys)}
    lanes: list[Lane] = []
    mids: list[Any] = []
    for i, k in enumerate(keys):
        wp = starts[k]
        pts, yaw, mid, xodr_s = _densify(wp, succ_points[k])
        mids.append(mid)
        pts, yaw = _resample(pts, yaw)
        seg = np.linalg.norm(np.diff(pts[:, :2], axis=0), axis=1)
        lanes.append(
            Lane(
                id=i,
                points=pts[:, :2].copy(),
                yaw=yaw,
                s=np.concatenate([[0.0], np.cumsum(seg)]),
                z=pts[:, 2].copy(),
                width=float(pts[:, 3].mean()),
                widths=pts[:, 3].copy(),
                xodr_s=xodr_s,
                road_id=k[0],
                section_id=k[1],
                lane_id=k[2],
                is_junction=bool(wp.is_junction),
                junction_id=int(wp.junction_id) if wp.is_junction else -1,
                successors=[index[s] for s in succ_keys[k] if s in index],
                speed_limit=float(speed_limits.get(k[0], DEFAULT_SPEED_LIMIT)),
            )
        )
    for lane in lanes:
        for j in lane.successors:
            lanes[j].predecessors.append(lane.id)
    _fill_neighbours(mids, lanes, index)
    return lanes


def _fill_neighbours(mids: list[Any], lanes: list[Lane], index: dict[tuple[int, int, int], int]) -> None:
    """Set `left`/`right` (permitted same-direction changes) and marking types from each lane's midpoint waypoint."""
    import carla

    for lane, wp in zip(lanes, mids):
        lane.left_marking = str(wp.left_lane_marking.type)
        lane.right_marking = str(wp.right_lane_marking.type)
        change = wp.lane_change
        for side, allowed, getter in (
            ("left", change in (carla.LaneChange.Left, carla.LaneChange.Both), wp.get_left_lane),
            ("right", change in (carla.LaneChange.Right, carla.LaneChange.Both), wp.get_right_lane),
        ):
            if not allowed:
                continue
            n = getter()
            if n is None or n.lane_type != carla.LaneType.Driving or n.lane_id * wp.lane_id <= 0:
                continue
            j = index.get(_key(n))
            if j is not None and j != lane.id:
                setattr(lane, side, j)


def lane_arrays(lanes: list[Lane], device: torch.device | str = "cpu") -> LaneArrays:
    """Pad `lanes` into a `LaneArrays` on `device`."""
    n = len(lanes)
    p = max(len(ln.s) for ln in lanes)
    smax = max(1, max(len(ln.successors) for ln in lanes))
    pmax = max(1, max(len(ln.predecessors) for ln in lanes))
    points = np.zeros((n, p, 2), np.float32)
    yaw = np.zeros((n, p), np.float32)
    s = np.zeros((n, p), np.float32)
    z = np.zeros((n, p), np.float32)
    succ = -np.ones((n, smax), np.int64)
    pred = -np.ones((n, pmax), np.int64)
    for i, ln in enumerate(lanes):
        k = len(ln.s)
        points[i, :k], points[i, k:] = ln.points, ln.points[-1]
        yaw[i, :k], yaw[i, k:] = ln.yaw, ln.yaw[-1]
        s[i, :k], s[i, k:] = ln.s, ln.s[-1]
        z[i, :k], z[i, k:] = ln.z, ln.z[-1]
        succ[i, : len(ln.successors)] = ln.successors
        pred[i, : len(ln.predecessors)] = ln.predecessors

    def t(a: np.ndarray) -> Tensor:
        return torch.as_tensor(a, device=device)

    return LaneArrays(
        points=t(points),
        yaw=t(yaw),
        s=t(s),
        z=t(z),
        num_points=t(np.array([len(ln.s) for ln in lanes], np.int64)),
        length=t(np.array([ln.length for ln in lanes], np.float32)),
        successors=t(succ),
        predecessors=t(pred),
        left=t(np.array([-1 if ln.left is None else ln.left for ln in lanes], np.int64)),
        right=t(np.array([-1 if ln.right is None else ln.right for ln in lanes], np.int64)),
        is_junction=t(np.array([ln.is_junction for ln in lanes], bool)),
        junction_id=t(np.array([ln.junction_id for ln in lanes], np.int64)),
        width=t(np.array([ln.width for ln in lanes], np.float32)),
        speed_limit=t(np.array([ln.speed_limit for ln in lanes], np.float32)),
    )
