"""Background vehicles: lane following with IDM toward whatever occupies their path (other vehicles,
the ego — also its predicted footprint —, pedestrians, static objects), stopping at red lights and
stop signs (full stop, then go), yielding at junction entries; vehicles stuck far from the ego (or at
a dead end) respawn at a free spawn point.

`vehicle_step` is a compiled kernel (numba): a loop over worlds and vehicles in float64 that reads
only the previous state, so every world's result is the same whether it is stepped alone or with
others (batched branches are bit-identical to sequential ones). Choices are hashed from per-vehicle
keys (no RNG state), so a restored state reproduces the same future.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from agents.idm import idm_scalar
from carla_bridge.lite.geometry import point_box_distance, wrap
from carla_bridge.lite.map_data import LaneArrays, lane_pose

_HASH_A = 1103515245
_HASH_B = 2654435761
_HASH_M = 2**31 - 1
_idm = nb.njit(cache=True)(idm_scalar)


class VehicleParams(NamedTuple):
    """The `LiteConfig` settings the vehicle kernel reads (see `LiteConfig`); idm: `IDMParams` fields in order."""

    dt: float
    lookahead_step: float
    lookahead_points: int
    clearance_margin: float
    yield_distance: float
    yield_patience: float
    stuck_respawn: float
    lat_accel: float
    idm: tuple[float, float, float, float, float, float]


class Obstacles(NamedTuple):
    """What vehicles avoid, `[W, M, ...]` float64: boxes (x, y, yaw, length, width), velocity (vx, vy)
    and valid; the first N rows are the vehicles themselves."""

    box: np.ndarray
    velocity: np.ndarray
    valid: np.ndarray


@nb.njit(cache=True)
def hash_choice(key: int, counter: int, salt: int, n: int) -> int:
    """Deterministic pseudo-random index in [0, n) from integer `key` and `counter` (no RNG state)."""
    h = (key * _HASH_A + counter * _HASH_B + salt * 97 + 12345) % _HASH_M
    h = (h ^ (h >> 13)) * 1274126177 % _HASH_M
    return h % max(n, 1)


@nb.njit(cache=True)
def choose_successor(m: LaneArrays, lane: int, key: int, counter: int) -> int:
    """A hash-chosen successor of `lane`, -1 at a dead end."""
    n = m.num_successors[lane]
    if n == 0:
        return -1
    return m.successors[lane, hash_choice(key, counter, 1, n)]


@nb.njit(cache=True)
def choose_successors(m: LaneArrays, lane: np.ndarray, key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """`choose_successor` for arrays `[...]` of one shape (int64)."""
    out = np.empty(lane.size, dtype=np.int64)
    fl, fk, fc = lane.ravel(), key.ravel(), counter.ravel()
    for i in range(lane.size):
        out[i] = choose_successor(m, fl[i], fk[i], fc[i])
    return out.reshape(lane.shape)


@nb.njit(cache=True)
def vehicle_poses(m: LaneArrays, lane: np.ndarray, s: np.ndarray, lateral: np.ndarray):
    """Box-centre (xy `[W, N, 2]`, yaw `[W, N]`, z `[W, N]`) of vehicles at `(lane, s)` shifted `lateral`
    metres to the left of the centreline."""
    W, N = lane.shape
    xy = np.empty((W, N, 2))
    yaw = np.empty((W, N))
    z = np.empty((W, N))
    for w in range(W):
        for n in range(N):
            x, y, h, zz = lane_pose(m, lane[w, n], s[w, n])
            xy[w, n, 0] = x - math.sin(h) * lateral[w, n]
            xy[w, n, 1] = y + math.cos(h) * lateral[w, n]
            yaw[w, n], z[w, n] = h, zz
    return xy, yaw, z


@nb.njit(cache=True)
def vehicle_step(
    m: LaneArrays,
    p: VehicleParams,
    lane: np.ndarray,
    s: np.ndarray,
    nxt: np.ndarray,
    speed: np.ndarray,
    factor: np.ndarray,
    key: np.ndarray,
    trans: np.ndarray,
    stop_done: np.ndarray,
    still: np.ndarray,
    size: np.ndarray,
    valid: np.ndarray,
    xy: np.ndarray,
    yaw: np.ndarray,
    obstacles: Obstacles,
    lights: np.ndarray,
    ego_sweep: np.ndarray,
):
    """Advance every vehicle of every world one step.

    Args:
        m: the town's lane tables; p: settings.
        lane, s, nxt, speed, factor, key, trans, stop_done, still, valid: `[W, N]` vehicle fields
            (see `VehicleState`); size `[W, N, 3]`; xy `[W, N, 2]`, yaw `[W, N]` current poses.
        obstacles: what each vehicle checks its path against (the first N rows are the vehicles).
        lights: `[W, H]` `HeadState`s.
        ego_sweep: `[W, S, 5]` the ego's box now and where it will be in the next seconds; a vehicle
            about to enter a junction yields while the sweep touches the junction part of its path,
            unless the ego is behind it. Its first row's centre is the ego's.

    Returns:
        The new (lane, s, next, speed, trans, stop_done, still) `[W, N]`; a vehicle stuck far from
        the ego, at a dead end or for 3 × `stuck_respawn` moves to a free spawn point (speed 0).
    """
    W, N = lane.shape
    M = obstacles.box.shape[1]
    K = p.lookahead_points
    step = p.lookahead_step
    a_max, b_comf, d_max, s0, headway, delta = p.idm
    n_lane = lane.copy()
    n_s = s.copy()
    n_next = nxt.copy()
    n_speed = np.zeros_like(speed)
    n_trans = trans.copy()
    n_stop = stop_done.copy()
    n_still = still.copy()
    px = np.empty(K)
    py = np.empty(K)
    pyaw = np.empty(K)
    plane = np.empty(K, dtype=np.int64)
    cosb = np.empty(M)
    sinb = np.empty(M)
    for w in range(W):
        for j in range(M):
            cosb[j] = math.cos(obstacles.box[w, j, 2])
            sinb[j] = math.sin(obstacles.box[w, j, 2])
        for n in range(N):
            if not valid[w, n]:
                continue
            ln, sn, v = lane[w, n], s[w, n], speed[w, n]
            nx = nxt[w, n]
            has_next = nx >= 0
            hl, hw = 0.5 * size[w, n, 0], 0.5 * size[w, n, 1]
            lane_len = m.length[ln]
            front = sn + hl
            to_end = lane_len - front
            # --- path points ahead of the front bumper (this lane, then the chosen successor)
            dead_end = False
            lo_x = lo_y = math.inf
            hi_x = hi_y = -math.inf
            for k in range(K):
                ps = front + step * (k + 1)
                pl = ln
                if ps > lane_len:
                    if has_next:
                        pl, ps = nx, ps - lane_len
                    else:
                        ps, dead_end = lane_len, True
                x, y, h, _ = lane_pose(m, pl, ps)
                px[k], py[k], pyaw[k], plane[k] = x, y, h, pl
                lo_x, hi_x = min(lo_x, x), max(hi_x, x)
                lo_y, hi_y = min(lo_y, y), max(hi_y, y)
            # --- the first path point an obstacle occupies (bounding-circle cull, then exact)
            reach = hw + p.clearance_margin
            cx, cy = 0.5 * (lo_x + hi_x), 0.5 * (lo_y + hi_y)
            radius = 0.5 * math.hypot(hi_x - lo_x, hi_y - lo_y) + reach
            first, lead, lead_d = K, -1, math.inf
            for j in range(M):
                if j == n or not obstacles.valid[w, j]:
                    continue
                bx, by = obstacles.box[w, j, 0], obstacles.box[w, j, 1]
                bl, bw = 0.5 * obstacles.box[w, j, 3], 0.5 * obstacles.box[w, j, 4]
                if math.hypot(bx - cx, by - cy) > radius + math.hypot(bl, bw):
                    continue
                for k in range(min(first + 1, K)):
                    d = point_box_distance(px[k], py[k], bx, by, cosb[j], sinb[j], bl, bw)
                    if d < reach:
                        if k < first or d < lead_d:
                            first, lead, lead_d = k, j, d
                        break
            gap_agent, lead_v, hit_lane = math.inf, 0.0, -1
            if lead >= 0:
                gap_agent = max((first + 0.5) * step - step, 0.0)
                hy = pyaw[first]
                vx, vy = obstacles.velocity[w, lead, 0], obstacles.velocity[w, lead, 1]
                lead_v = max(vx * math.cos(hy) + vy * math.sin(hy), 0.0)
                hit_lane = plane[first]
            # --- stop lines: lights on this lane and the next, stop signs, junction yield
            stop_gap = math.inf
            for q in range(2):
                lq = ln if q == 0 else nx
                if lq < 0:
                    continue
                h = m.lane_head[lq]
                if h < 0:
                    continue
                line = m.lane_light_s[lq] + (-front if q == 0 else to_end)
                st = lights[w, h]
                must = st == 0 or (st == 1 and line > v * v / 8.0)
                if must and line > -1.0:
                    stop_gap = min(stop_gap, line)
            sign_cur = m.lane_stop_s[ln] - front
            if math.isfinite(sign_cur) and sign_cur > -1.0 and not stop_done[w, n]:
                stop_gap = min(stop_gap, sign_cur)
            if has_next and math.isfinite(m.lane_stop_s[nx]):
                stop_gap = min(stop_gap, m.lane_stop_s[nx] + to_end)
            done_sign = stop_done[w, n] or (math.isfinite(sign_cur) and sign_cur < 3.0 and v < 0.1)
            entering = has_next and m.is_junction[nx] and not m.is_junction[ln]
            if entering and -0.5 < to_end < p.yield_distance:
                must_yield = lead >= 0 and hit_lane == nx and m.is_junction[hit_lane]
                if not must_yield and still[w, n] < p.yield_patience:
                    must_yield = _junction_busy(m, nx, lane, valid, w) or _ego_crosses(
                        px, py, plane, nx, m, ego_sweep, w, xy[w, n, 0], xy[w, n, 1], yaw[w, n], reach
                    )
                if must_yield:
                    stop_gap = min(stop_gap, to_end)
            # --- desired speed: speed-limit share, curve limit
            v0 = factor[w, n] * m.speed_limit[ln]
            curv = 0.0
            for k in range(max(1, K // 2)):
                if k + 1 < K:
                    curv = max(curv, abs(wrap(pyaw[k + 1] - pyaw[k])) / step)
            v0 = min(v0, math.sqrt(p.lat_accel / max(curv, 1e-4)))
            end_gap = to_end + 1.0 if dead_end else math.inf
            acc = min(
                _idm(v, v0, gap_agent, lead_v, a_max, b_comf, d_max, s0, headway, delta),
                _idm(v, v0, min(stop_gap + 1.0, end_gap), 0.0, a_max, b_comf, d_max, s0, headway, delta),
            )
            nv = max(v + acc * p.dt, 0.0)
            ns = sn + nv * p.dt
            # --- lane transitions
            new_lane = ln
            if ns > lane_len and has_next:
                new_lane, ns = nx, ns - lane_len
                n_trans[w, n] = trans[w, n] + 1
                n_next[w, n] = choose_successor(m, new_lane, key[w, n], n_trans[w, n])
                done_sign = False
            n_lane[w, n] = new_lane
            n_s[w, n] = min(ns, m.length[new_lane])
            n_speed[w, n] = nv
            n_stop[w, n] = done_sign
            n_still[w, n] = still[w, n] + p.dt if nv < 0.1 else 0.0
    _respawn(m, p, n_lane, n_s, n_next, n_speed, n_trans, n_stop, n_still, nxt, key, size, valid, ego_sweep)
    return n_lane, n_s, n_next, n_speed, n_trans, n_stop, n_still


@nb.njit(cache=True)
def _junction_busy(m: LaneArrays, nxt: int, lane: np.ndarray, valid: np.ndarray, w: int) -> bool:
    """A vehicle of world `w` is inside a junction lane that conflicts with lane `nxt`."""
    for j in range(lane.shape[1]):
        if valid[w, j] and m.is_junction[lane[w, j]] and m.conflict[nxt, lane[w, j]]:
            return True
    return False


@nb.njit(cache=True)
def _ego_crosses(px, py, plane, nxt, m, ego_sweep, w, vx, vy, vyaw, reach) -> bool:
    """The ego's sweep touches (within `reach`) the junction part of the path (points on lane `nxt`)
    and the ego is not behind the vehicle at (vx, vy) heading `vyaw`."""
    rel_x, rel_y = ego_sweep[w, 0, 0] - vx, ego_sweep[w, 0, 1] - vy
    if rel_x * math.cos(vyaw) + rel_y * math.sin(vyaw) <= 0.0:
        return False
    if not m.is_junction[nxt]:
        return False
    for k in range(px.shape[0]):
        if plane[k] != nxt:
            continue
        for i in range(ego_sweep.shape[1]):
            b = ego_sweep[w, i]
            c, s = math.cos(b[2]), math.sin(b[2])
            if point_box_distance(px[k], py[k], b[0], b[1], c, s, 0.5 * b[3], 0.5 * b[4]) < reach:
                return True
    return False


@nb.njit(cache=True)
def _respawn(m, p, lane, s, nxt, speed, trans, stop_done, still, old_next, key, size, valid, ego_sweep) -> None:
    """Move stuck or dead-ended vehicles (in place on the new-state arrays) to the first of 4
    hash-chosen spawn points that is 12 m from every vehicle and 40 m from the ego."""
    W, N = lane.shape
    P = m.spawn.shape[0]
    pos = np.empty((N, 2))
    for w in range(W):
        ex, ey = ego_sweep[w, 0, 0], ego_sweep[w, 0, 1]
        for n in range(N):
            x, y, _, _ = lane_pose(m, lane[w, n], s[w, n])
            pos[n, 0], pos[n, 1] = x, y
        for n in range(N):
            if not valid[w, n]:
                continue
            far = math.hypot(pos[n, 0] - ex, pos[n, 1] - ey) > 40.0
            at_dead_end = old_next[w, n] < 0 and s[w, n] >= m.length[lane[w, n]] - 0.5 * size[w, n, 0] - 0.5
            stuck = still[w, n] > p.stuck_respawn
            if not ((far and (at_dead_end or stuck)) or still[w, n] > 3.0 * p.stuck_respawn):
                continue
            for c in range(4):
                cand = hash_choice(key[w, n], trans[w, n] * 7 + c, 3, P)
                sx, sy = m.spawn[cand, 0], m.spawn[cand, 1]
                if math.hypot(sx - ex, sy - ey) <= 40.0:
                    continue
                free = True
                for j in range(N):
                    if valid[w, j] and math.hypot(sx - pos[j, 0], sy - pos[j, 1]) <= 12.0:
                        free = False
                        break
                if free:
                    lane[w, n] = int(m.spawn[cand, 3])
                    s[w, n] = m.spawn_s[cand]
                    trans[w, n] += 1
                    nxt[w, n] = choose_successor(m, lane[w, n], key[w, n], trans[w, n])
                    speed[w, n] = 0.0
                    still[w, n] = 0.0
                    stop_done[w, n] = False
                    break
