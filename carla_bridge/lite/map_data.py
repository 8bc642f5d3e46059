"""Map tensors for the vectorized lite simulator, built once per town.

Lanes are resampled to a uniform spacing `DS` so that a lane position `(lane, s)` is interpolated
with one floor and two gathers (no search), which keeps the step free of Python loops. Per-lane
traffic-light heads and stop-sign lines, light phase tables and the junction conflict matrix live
here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numba as nb
import numpy as np
import shapely
import torch
from torch import Tensor

DS = 0.5  # [m] uniform resampling of lane centrelines


class LaneArrays(NamedTuple):
    """The lane tables of `MapData` as float64/int64/bool numpy arrays, for the compiled kernels
    (same names and shapes as the `MapData` fields)."""

    points: np.ndarray
    yaw: np.ndarray
    dyaw: np.ndarray
    z: np.ndarray
    length: np.ndarray
    num_q: np.ndarray
    successors: np.ndarray
    num_successors: np.ndarray
    is_junction: np.ndarray
    speed_limit: np.ndarray
    lane_head: np.ndarray
    lane_light_s: np.ndarray
    lane_stop_s: np.ndarray
    conflict: np.ndarray
    spawn: np.ndarray
    spawn_s: np.ndarray


class LightArrays(NamedTuple):
    """The light-cycle tables of `MapData` as numpy arrays (for `lights.head_states`)."""

    head_phase: np.ndarray
    head_group: np.ndarray
    group_phases: np.ndarray
    group_offset: np.ndarray


@nb.njit(cache=True)
def lane_pose(m: LaneArrays, lane: int, s: float) -> tuple[float, float, float, float]:
    """(x, y, yaw, z) at arc length `s` (clamped to [0, length]) on `lane`: one floor, two lookups
    (yaw within ±(π + a small step), not re-wrapped)."""
    s = min(max(s, 0.0), m.length[lane])
    qf = s * (1.0 / DS)
    q0 = min(int(qf), m.num_q[lane] - 2)
    frac = min(max(qf - q0, 0.0), 1.0)
    x0, y0 = m.points[lane, q0, 0], m.points[lane, q0, 1]
    x = x0 + (m.points[lane, q0 + 1, 0] - x0) * frac
    y = y0 + (m.points[lane, q0 + 1, 1] - y0) * frac
    yaw = m.yaw[lane, q0] + m.dyaw[lane, q0] * frac
    z = m.z[lane, q0] + (m.z[lane, q0 + 1] - m.z[lane, q0]) * frac
    return x, y, yaw, z


@dataclass(frozen=True)
class MapData:
    """Town tables of the lite simulator (L lanes, Q uniform points per lane, S successors, H light
    heads, G light groups), as numpy arrays for the compiled kernels.

    Attributes:
        lanes: `LaneArrays`: points `[L, Q, 2]` centrelines at s = DS·q (padded by the last point);
            yaw `[L, Q]` headings and dyaw `[L, Q]` wrapped increment to the next point; z `[L, Q]`;
            length `[L]` [m]; num_q `[L]`; successors `[L, S]` (-1 padded) and num_successors `[L]`;
            is_junction `[L]`; speed_limit `[L]` [m/s]; lane_head `[L]` head governing the lane's stop
            line (-1 none) and lane_light_s `[L]` its arc length (inf none); lane_stop_s `[L]`
            stop-sign line (inf none); conflict `[L, L]` junction lanes of the same junction whose
            paths cross or merge; spawn `[P, 4]` (x, y, yaw, lane) and spawn_s `[P]`.
        lights: `LightArrays`: head_phase / head_group `[H]`, group_phases `[G]` and group_offset
            `[G]` [s] (seeded cycle offsets).
        head_pole: `[H, 2]` float32 tensor; head_yaw `[H]` (traffic heading); head_stop_xy `[H, 2]`
            first stop-line point (for views and rendering).
    """

    lanes: LaneArrays
    lights: LightArrays

    head_pole: Tensor
    head_yaw: Tensor
    head_stop_xy: Tensor

    @property
    def num_heads(self) -> int:
        return int(self.lights.head_phase.shape[0])


def _resample(points: np.ndarray, s: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    length = float(s[-1]) if len(s) else 0.0
    n = max(2, math.ceil(length / DS) + 1)
    q = np.minimum(np.arange(n) * DS, length)
    if len(s) < 2 or length <= 1e-6:
        p = np.repeat(points[:1], n, 0) if len(points) else np.zeros((n, 2))
        d = points[-1] - points[0] if len(points) > 1 else np.array([1.0, 0.0])
        yaw = np.full(n, math.atan2(d[1], d[0]))
        return p, yaw, np.zeros(n), max(length, 1e-3)
    x = np.interp(q, s, points[:, 0])
    y = np.interp(q, s, points[:, 1])
    zz = np.interp(q, s, z)
    xy = np.stack([x, y], -1)
    d = np.gradient(xy, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    return xy, yaw, zz, length


def build_map_data(town, seed: int = 0) -> MapData:
    """Tables of `town` (a `carla_bridge.maps.TownMap`) for the lite simulator."""
    lanes = town.lanes
    L = len(lanes)
    res = [_resample(ln.points, ln.s, ln.z) for ln in lanes]
    Q = max(len(r[0]) for r in res)
    pts = np.zeros((L, Q, 2))
    yaw = np.zeros((L, Q))
    z = np.zeros((L, Q))
    nq = np.zeros(L, dtype=np.int64)
    length = np.zeros(L)
    for i, (p, y, zz, ln_len) in enumerate(res):
        n = len(p)
        pts[i, :n], pts[i, n:] = p, p[-1]
        yaw[i, :n], yaw[i, n:] = y, y[-1]
        z[i, :n], z[i, n:] = zz, zz[-1]
        nq[i], length[i] = n, ln_len
    S = max(1, max(len(ln.successors) for ln in lanes))
    succ = -np.ones((L, S), dtype=np.int64)
    for ln in lanes:
        succ[ln.id, : len(ln.successors)] = ln.successors
    nsucc = (succ >= 0).sum(1)

    lane_head = -np.ones(L, dtype=np.int64)
    lane_light_s = np.full(L, np.inf)
    heads = [h for g in town.traffic_lights for h in g.heads]
    groups = town.traffic_lights
    rng = np.random.default_rng(seed + 7919)
    head_phase, head_group, head_pole, head_yaw, head_stop = [], [], [], [], []
    for gi, g in enumerate(groups):
        for h in g.heads:
            hi = len(head_phase)
            head_phase.append(h.phase)
            head_group.append(gi)
            head_pole.append(np.asarray(h.pole_xy, dtype=np.float64))
            head_yaw.append(float(h.yaw))
            head_stop.append(np.asarray(h.stop_xy, dtype=np.float64).reshape(-1, 2)[0])
            for lane_id, ss in zip(h.lane_ids, np.asarray(h.stop_s).reshape(-1)):
                lane_head[lane_id] = hi
                lane_light_s[lane_id] = float(ss)
    assert len(head_phase) == len(heads)
    group_phases = np.array([max(1, max((h.phase for h in g.heads), default=0) + 1) for g in groups], dtype=np.int64)
    group_offset = rng.uniform(0.0, 60.0, size=len(groups))

    lane_stop_s = np.full(L, np.inf)
    for st in town.stop_signs:
        lane_stop_s[st.lane_id] = min(lane_stop_s[st.lane_id], float(st.stop_s))

    conflict = _conflicts(lanes, res)
    spawn = town.spawn_points(spacing=8.0, rng=seed)
    if len(spawn) == 0:
        raise ValueError(f"town {town.name} has no spawn points (no driving lanes outside junctions)")
    _, spawn_s, _ = town.project(spawn[:, :2], spawn[:, 2])
    # project() may pick a neighbour lane; recompute s on the spawn lane itself
    spawn_s = np.array([_s_on_lane(lanes[int(r[3])], r[:2]) for r in spawn])

    def t(a, dtype=torch.float32):
        return torch.as_tensor(np.asarray(a), dtype=dtype)

    H = len(head_phase)
    dyaw = np.concatenate([np.angle(np.exp(1j * np.diff(yaw, axis=1))), np.zeros((L, 1))], axis=1)
    lane_arrays = LaneArrays(
        points=pts,
        yaw=yaw,
        dyaw=dyaw,
        z=z,
        length=length,
        num_q=nq,
        successors=succ,
        num_successors=nsucc.astype(np.int64),
        is_junction=np.array([ln.is_junction for ln in lanes], dtype=bool),
        speed_limit=np.array([ln.speed_limit for ln in lanes], dtype=np.float64),
        lane_head=lane_head,
        lane_light_s=lane_light_s,
        lane_stop_s=lane_stop_s,
        conflict=conflict,
        spawn=np.asarray(spawn, dtype=np.float64),
        spawn_s=np.asarray(spawn_s, dtype=np.float64),
    )
    light_arrays = LightArrays(
        head_phase=np.array(head_phase, dtype=np.int64).reshape(H),
        head_group=np.array(head_group, dtype=np.int64).reshape(H),
        group_phases=group_phases.reshape(len(groups)).astype(np.int64),
        group_offset=np.asarray(group_offset, dtype=np.float64).reshape(len(groups)),
    )
    return MapData(
        lanes=lane_arrays,
        lights=light_arrays,
        head_pole=t(np.array(head_pole).reshape(H, 2)),
        head_yaw=t(np.array(head_yaw).reshape(H)),
        head_stop_xy=t(np.array(head_stop).reshape(H, 2)),
    )


def _s_on_lane(lane, xy: np.ndarray) -> float:
    d = np.linalg.norm(lane.points - xy[None], axis=1)
    return float(lane.s[int(np.argmin(d))])


def _conflicts(lanes, res) -> np.ndarray:
    """`[L, L]` bool: junction lanes of the same junction whose centrelines come within 1.5 m,
    except pairs that start from the same predecessor lane (they diverge; car-following handles them)."""
    L = len(lanes)
    out = np.zeros((L, L), dtype=bool)
    by_j: dict[int, list[int]] = {}
    for ln in lanes:
        if ln.is_junction and ln.junction_id >= 0:
            by_j.setdefault(ln.junction_id, []).append(ln.id)
    geoms = {}
    for ids in by_j.values():
        for i in ids:
            p = res[i][0]
            geoms[i] = shapely.LineString(p if len(p) > 1 else np.vstack([p, p + 1e-3]))
    for ids in by_j.values():
        if len(ids) < 2:
            continue
        a_idx, b_idx = np.triu_indices(len(ids), k=1)
        ga = [geoms[ids[i]] for i in a_idx]
        gb = [geoms[ids[j]] for j in b_idx]
        dist = shapely.distance(np.array(ga, dtype=object), np.array(gb, dtype=object))
        for i, j, d in zip(a_idx, b_idx, dist):
            la, lb = lanes[ids[i]], lanes[ids[j]]
            if d > 1.5:
                continue
            if set(la.predecessors) & set(lb.predecessors):
                continue
            out[la.id, lb.id] = out[lb.id, la.id] = True
    return out
