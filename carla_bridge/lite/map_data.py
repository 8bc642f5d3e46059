"""Map tensors for the vectorized lite simulator, built once per town.

Lanes are resampled to a uniform spacing `DS` so that a lane position `(lane, s)` is interpolated
with one floor and two gathers (no search), which keeps the step free of Python loops. Per-lane
traffic-light heads and stop-sign lines, light phase tables and the junction conflict matrix live
here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
import torch
from torch import Tensor

DS = 0.5  # [m] uniform resampling of lane centrelines


@dataclass
class MapData:
    """Town tensors (L lanes, Q uniform points per lane, S successors, H light heads, G light groups).

    Attributes:
        points: `[L, Q, 2]` centrelines at s = DS·q (padded by the last point).
        yaw: `[L, Q]` headings (padded); dyaw `[L, Q]` wrapped yaw increment to the next point.
        z: `[L, Q]` heights.
        length: `[L]` [m].
        successors: `[L, S]` int64, -1 padded; num_successors `[L]`.
        is_junction: `[L]` bool; junction_id `[L]` int64.
        width: `[L]`; speed_limit `[L]` [m/s].
        lane_head: `[L]` int64 head governing the lane's stop line (-1 none); lane_light_s `[L]` stop-line s (inf none).
        lane_stop_s: `[L]` stop-sign line s (inf none).
        head_phase / head_group: `[H]` int64; head_pole `[H, 2]`; head_yaw `[H]` (traffic heading);
        head_stop_xy: `[H, 2]` first stop-line point.
        group_phases: `[G]` int64 number of phases; group_offset `[G]` [s] cycle offset (seeded).
        conflict: `[L, L]` bool, junction lanes of the same junction whose paths cross or merge.
        spawn: `[P, 4]` (x, y, yaw, lane) spawn points; spawn_s `[P]` arc length on the lane.
    """

    points: Tensor
    yaw: Tensor
    dyaw: Tensor
    z: Tensor
    length: Tensor
    num_q: Tensor
    successors: Tensor
    num_successors: Tensor
    is_junction: Tensor
    junction_id: Tensor
    width: Tensor
    speed_limit: Tensor
    lane_head: Tensor
    lane_light_s: Tensor
    lane_stop_s: Tensor
    head_phase: Tensor
    head_group: Tensor
    head_pole: Tensor
    head_yaw: Tensor
    head_stop_xy: Tensor
    group_phases: Tensor
    group_offset: Tensor
    conflict: Tensor
    spawn: Tensor
    spawn_s: Tensor

    @property
    def num_heads(self) -> int:
        return int(self.head_phase.shape[0])

    def interp(self, lane: Tensor, s: Tensor, with_z: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
        """Position on lanes.

        Args:
            lane: `[...]` int64 lane ids (≥ 0).
            s: `[...]` arc length [m] (clamped to [0, length]).
            with_z: also interpolate the height.

        Returns:
            xy `[..., 2]`, yaw `[...]` (within ±(π + a small step), not re-wrapped), z `[...]` or None.
        """
        s = torch.minimum(s.clamp(min=0.0), self.length[lane])
        qf = s * (1.0 / DS)
        q0 = torch.minimum(qf.long(), self.num_q[lane] - 2)
        frac = (qf - q0.float()).clamp(0.0, 1.0)
        i0 = lane * self.points.shape[1] + q0
        pts = self.points.view(-1, 2)
        a = pts[i0]
        xy = a + (pts[i0 + 1] - a) * frac[..., None]
        yaw = self.yaw.view(-1)[i0] + self.dyaw.view(-1)[i0] * frac
        if not with_z:
            return xy, yaw, None
        zs = self.z.view(-1)
        return xy, yaw, zs[i0] + (zs[i0 + 1] - zs[i0]) * frac


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


def build_map_data(town, seed: int = 0, device: str | torch.device = "cpu") -> MapData:
    """Tensors of `town` (a `carla_bridge.maps.TownMap`) for the lite simulator."""
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
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)

    H = len(head_phase)
    return MapData(
        points=t(pts),
        yaw=t(yaw),
        dyaw=t(np.concatenate([np.angle(np.exp(1j * np.diff(yaw, axis=1))), np.zeros((L, 1))], axis=1)),
        z=t(z),
        length=t(length),
        num_q=t(nq, torch.int64),
        successors=t(succ, torch.int64),
        num_successors=t(nsucc, torch.int64),
        is_junction=t([ln.is_junction for ln in lanes], torch.bool),
        junction_id=t([ln.junction_id for ln in lanes], torch.int64),
        width=t([ln.width for ln in lanes]),
        speed_limit=t([ln.speed_limit for ln in lanes]),
        lane_head=t(lane_head, torch.int64),
        lane_light_s=t(lane_light_s),
        lane_stop_s=t(lane_stop_s),
        head_phase=t(np.array(head_phase, dtype=np.int64).reshape(H), torch.int64),
        head_group=t(np.array(head_group, dtype=np.int64).reshape(H), torch.int64),
        head_pole=t(np.array(head_pole).reshape(H, 2)),
        head_yaw=t(np.array(head_yaw).reshape(H)),
        head_stop_xy=t(np.array(head_stop).reshape(H, 2)),
        group_phases=t(group_phases.reshape(len(groups)), torch.int64),
        group_offset=t(group_offset.reshape(len(groups))),
        conflict=t(conflict, torch.bool),
        spawn=t(spawn),
        spawn_s=t(spawn_s),
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
