"""The compiled scenario step: triggers, conditions, actor behaviours, flows, light freezes and cleared
lanes of every scenario in every world (numba; a loop over worlds that reads only that world, so a
world's future is the same whether it is stepped alone or batched — and it draws no random numbers:
flow gaps and control noise are hashed from keys and counters).

Order within a step (after the ego, the background vehicles and the pedestrians moved):
1. scenario phases: DORMANT → INITIALISED when the ego centre is within `INIT_DISTANCE` of the trigger
   point (the leaderboard's `RouteScenario.INIT_THRESHOLD`), → RUNNING when the ego centre's route
   progress reaches the trigger's less `TRIGGER_DISTANCE` (`ScenarioTriggerer`);
2. conditions of running scenarios latch (in index order: each refers only to earlier ones);
3. a running scenario whose end condition holds ends: its actors go, its timeout / yield verdicts are
   kept for the events;
4. vehicle actors appear / move / vanish; flows spawn and sink; walkers and props;
5. their slots in the vehicle / pedestrian / static groups are written (the background step's values
   for those slots are overwritten);
6. light freezes, flags (allow opposite lane, blocked test off, control noise) for the next step, and
   background vehicles inside an active cleared stretch are moved to a spawn point far from the ego.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import NamedTuple

import numba as nb
import numpy as np

from agents import EGO
from agents.idm import idm_scalar
from carla_bridge.lite.geometry import point_box_distance
from carla_bridge.lite.map_data import LaneArrays, lane_pose
from carla_bridge.lite.vehicles import choose_successor, hash_choice
from carla_bridge.scenarios.tables import ScenarioTables

INIT_DISTANCE = 500.0
"""[m] a scenario's actors exist once the ego is this close to its trigger point (`INIT_THRESHOLD`)."""
TRIGGER_DISTANCE = 2.0
"""[m] a scenario starts when the ego's route progress is this close to its trigger point (`DIST_THRESHOLD`)."""
HARD_DECEL = 8.0
"""[m/s²] a braking scenario vehicle (HardBreakRoute, a stopping flow)."""
LOOKAHEAD_STEP, LOOKAHEAD_POINTS = 2.0, 20
"""A FOLLOW vehicle checks this many points this far apart along its path ahead for obstacles."""
LATERAL_MARGIN = 0.3
"""[m] beyond half widths for "in my path"."""
NOISE_KEY = 7919
"""Hash key of the control-loss noise (with the step index as counter)."""
TELEPORT_EGO_DISTANCE = 40.0
"""[m] a background vehicle moved out of a cleared stretch lands at least this far from the ego."""

_idm = nb.njit(cache=True)(idm_scalar)
_AXLE, _EGO_L, _EGO_W = EGO.rear_axle_to_center, EGO.length, EGO.width


class ScenarioPhase(IntEnum):
    DORMANT = 0
    INITIALISED = 1
    RUNNING = 2
    ENDED = 3


class ActorPhase(IntEnum):
    HIDDEN = 0
    WAITING = 1
    MOVING = 2
    DONE = 3


# condition kinds and other enums as plain ints for the kernel (see `spec`)
_STARTED, _EGO_NEAR, _AHEAD_POINT, _AHEAD_ACTOR, _EGO_PAST_S = 0, 1, 2, 3, 4
_ACTOR_DONE, _ACTOR_TRAVELLED, _ACTOR_NEAR_EGO, _AFTER, _DRIVE, _ANY, _ALL, _EGO_FAR = 5, 6, 7, 8, 9, 10, 11, 12
_PARKED, _CONSTANT, _FOLLOW, _EMERGENCY, _SYNC = 0, 1, 2, 3, 4
_DESTROY = 1
_ALLOW_OPPOSITE, _BLOCKED_OFF, _NOISE, _CLEAR = 0, 1, 2, 3
_DORMANT, _INIT, _RUNNING, _ENDED = 0, 1, 2, 3
_HIDDEN, _WAITING, _MOVING, _DONE = 0, 1, 2, 3
_PED_HALF = 0.3


class ScenarioArrays(NamedTuple):
    """The scenario group of one state as numpy arrays (`carla_bridge.lite.state.ScenarioState`)."""

    phase: np.ndarray
    timed_out: np.ndarray
    yield_failed: np.ndarray
    cond_on: np.ndarray
    cond_time: np.ndarray
    cond_odo: np.ndarray
    veh_phase: np.ndarray
    veh_mode: np.ndarray
    veh_u: np.ndarray
    veh_speed: np.ndarray
    veh_ref_speed: np.ndarray
    veh_travel: np.ndarray
    veh_spawns: np.ndarray
    walker_phase: np.ndarray
    walker_walked: np.ndarray
    walker_clock: np.ndarray
    prop_phase: np.ndarray
    flow_gap: np.ndarray
    flow_count: np.ndarray
    flow_last: np.ndarray
    flow_contact: np.ndarray
    flow_started: np.ndarray
    light_override: np.ndarray
    allow_opposite: np.ndarray
    blocked_off: np.ndarray
    noise: np.ndarray


class VehicleArrays(NamedTuple):
    """The vehicle-group fields the scenario step reads and writes, `[W, N]` (see `VehicleState`)."""

    lane: np.ndarray
    s: np.ndarray
    next: np.ndarray
    lateral: np.ndarray
    speed: np.ndarray
    key: np.ndarray
    trans: np.ndarray
    stop_done: np.ndarray
    still: np.ndarray
    size: np.ndarray
    track_id: np.ndarray
    valid: np.ndarray
    xy: np.ndarray
    yaw: np.ndarray
    z: np.ndarray


class PedestrianArrays(NamedTuple):
    u: np.ndarray
    direction: np.ndarray
    speed: np.ndarray
    valid: np.ndarray
    xy: np.ndarray
    yaw: np.ndarray


@nb.njit(cache=True)
def _uniform(key: int, counter: int, salt: int) -> float:
    return hash_choice(key, counter, salt, 1_000_003) / 1_000_003.0


@nb.njit(cache=True)
def gauss(key: int, counter: int) -> float:
    """A standard normal number hashed from (key, counter) (Box–Muller)."""
    u1 = max(_uniform(key, counter, 11), 1e-9)
    u2 = _uniform(key, counter, 13)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@nb.njit(cache=True)
def segment_pose(T: ScenarioTables, m: LaneArrays, k: int, u: float):
    """Box-centre (x, y, yaw, z, lane, s, lateral, junction) of vehicle actor k at path arc length u."""
    i0, n = T.va_seg0[k], T.va_nseg[k]
    i = i0
    for j in range(i0, i0 + n):
        if T.seg_u0[j] <= u:
            i = j
    L = T.seg_len[i]
    f = 0.0 if L <= 1e-9 else min(max((u - T.seg_u0[i]) / L, 0.0), 1.0)
    lane = T.seg_lane[i]
    s = T.seg_s0[i] + (T.seg_s1[i] - T.seg_s0[i]) * f
    lat = T.seg_lat0[i] + (T.seg_lat1[i] - T.seg_lat0[i]) * f
    x, y, h, z = lane_pose(m, lane, s)
    return x - math.sin(h) * lat, y + math.cos(h) * lat, h + T.seg_yaw[i], z, lane, s, lat, m.is_junction[lane]


@nb.njit(cache=True)
def _overlap(ax, ay, ayaw, al, aw, bx, by, byaw, bl, bw) -> bool:
    """Two oriented rectangles overlap (separating axis test)."""
    ca, sa, cb, sb = math.cos(ayaw), math.sin(ayaw), math.cos(byaw), math.sin(byaw)
    dx, dy = bx - ax, by - ay
    for axx, axy in ((ca, sa), (-sa, ca), (cb, sb), (-sb, cb)):
        ra = 0.5 * al * abs(ca * axx + sa * axy) + 0.5 * aw * abs(-sa * axx + ca * axy)
        rb = 0.5 * bl * abs(cb * axx + sb * axy) + 0.5 * bw * abs(-sb * axx + cb * axy)
        if abs(dx * axx + dy * axy) > ra + rb:
            return False
    return True


@nb.njit(cache=True)
def _obstacle(j, w, self_slot, V, P, sbox, svalid, ex, ey, eyaw, espeed):
    """Box (x, y, yaw, length, width), speed and validity of obstacle j: vehicles, then the ego, then
    pedestrians, then statics."""
    N, Pn = V.valid.shape[1], P.valid.shape[1]
    if j < N:
        ok = j != self_slot and V.valid[w, j]
        return V.xy[w, j, 0], V.xy[w, j, 1], V.yaw[w, j], V.size[w, j, 0], V.size[w, j, 1], V.speed[w, j], ok
    if j == N:
        return ex, ey, eyaw, _EGO_L, _EGO_W, espeed, True
    if j < N + 1 + Pn:
        p = j - N - 1
        return P.xy[w, p, 0], P.xy[w, p, 1], P.yaw[w, p], 2 * _PED_HALF, 2 * _PED_HALF, P.speed[w, p], P.valid[w, p]
    q = j - N - 1 - Pn
    return sbox[w, q, 0], sbox[w, q, 1], sbox[w, q, 2], sbox[w, q, 3], sbox[w, q, 4], 0.0, svalid[w, q]


@nb.njit(cache=True)
def _gap_ahead(T, m, k, u, hl, hw, w, self_slot, V, P, sbox, svalid, ex, ey, eyaw, espeed):
    """(gap [m], speed along the path of what is there): the first of `LOOKAHEAD_POINTS` points every
    `LOOKAHEAD_STEP` m along vehicle actor k's own path ahead of its front that an obstacle's box comes
    within half its width + `LATERAL_MARGIN` of (vehicles, the ego, pedestrians, statics; inf if none)."""
    K = LOOKAHEAD_POINTS
    px = np.empty(K)
    py = np.empty(K)
    ph = np.empty(K)
    lo_x = lo_y = math.inf
    hi_x = hi_y = -math.inf
    for i in range(K):
        x, y, h, _, _, _, _, _ = segment_pose(T, m, k, u + hl + LOOKAHEAD_STEP * (i + 1))
        px[i], py[i], ph[i] = x, y, h
        lo_x, hi_x, lo_y, hi_y = min(lo_x, x), max(hi_x, x), min(lo_y, y), max(hi_y, y)
    reach = hw + LATERAL_MARGIN
    cx, cy = 0.5 * (lo_x + hi_x), 0.5 * (lo_y + hi_y)
    radius = 0.5 * math.hypot(hi_x - lo_x, hi_y - lo_y) + reach
    first, lead_v = K, 0.0
    M = V.valid.shape[1] + 1 + P.valid.shape[1] + svalid.shape[1]
    for j in range(M):
        bx, by, byaw, bl, bw, bv, ok = _obstacle(j, w, self_slot, V, P, sbox, svalid, ex, ey, eyaw, espeed)
        if not ok or math.hypot(bx - cx, by - cy) > radius + 0.5 * math.hypot(bl, bw):
            continue
        c, s = math.cos(byaw), math.sin(byaw)
        for i in range(min(first, K)):
            if point_box_distance(px[i], py[i], bx, by, c, s, 0.5 * bl, 0.5 * bw) < reach:
                first, lead_v = i, max(bv * math.cos(byaw - ph[i]), 0.0)
                break
    if first >= K:
        return math.inf, 0.0
    return max(first * LOOKAHEAD_STEP, 0.0), lead_v


@nb.njit(cache=True)
def _ego_centre(ego_pose, w):
    c, s = math.cos(ego_pose[w, 2]), math.sin(ego_pose[w, 2])
    return ego_pose[w, 0] + _AXLE * c, ego_pose[w, 1] + _AXLE * s


@nb.njit(cache=True)
def _actor_pose(T, m, D, w, k):
    x, y, h, _, _, _, _, _ = segment_pose(T, m, k, D.veh_u[w, k])
    return x, y, h


@nb.njit(cache=True)
def _cond(T, m, D, w, q, t, cx, cy, eyaw, ev, prog, odo) -> bool:
    kind = T.cq_kind[q]
    f = T.cq_f[q]
    i = T.cq_i[q]
    if kind == _STARTED:
        return False  # latched by the trigger only
    if kind == _EGO_NEAR:
        d = math.hypot(cx - f[0], cy - f[1])
        return d < f[2] or (ev > 0.1 and d / ev < f[3])
    if kind == _AHEAD_POINT:
        if i[0] < 0:
            px, py = cx, cy
        elif i[0] == 0:
            if D.veh_phase[w, i[1]] == _HIDDEN:
                return False
            px, py, _ = _actor_pose(T, m, D, w, i[1])
        else:
            return False
        ahead = (px - f[0]) * math.cos(f[2]) + (py - f[1]) * math.sin(f[2]) > 0.0
        return ahead and math.hypot(px - f[0], py - f[1]) < f[3]
    if kind == _AHEAD_ACTOR:
        who, of = i[0], i[1]
        if who >= 0 and (D.veh_phase[w, who] == _HIDDEN or D.veh_phase[w, who] == _DONE):
            return False
        if of >= 0 and (D.veh_phase[w, of] == _HIDDEN or D.veh_phase[w, of] == _DONE):
            return False
        if who < 0:
            px, py = cx, cy
        else:
            px, py, _ = _actor_pose(T, m, D, w, who)
        if of < 0:
            ox, oy, oh = cx, cy, eyaw
        else:
            ox, oy, oh = _actor_pose(T, m, D, w, of)
        rx, ry = px - (ox + f[0] * math.cos(oh)), py - (oy + f[0] * math.sin(oh))
        return rx * math.cos(oh) + ry * math.sin(oh) > 0.0 and math.hypot(px - ox, py - oy) < f[1]
    if kind == _EGO_PAST_S:
        return prog >= f[0]
    if kind == _ACTOR_DONE:
        g, j = i[0], i[1]
        if g == 0:
            return D.veh_phase[w, j] == _DONE
        if g == 1:
            return D.walker_phase[w, j] == 3
        return D.prop_phase[w, j] == 3
    if kind == _ACTOR_TRAVELLED:
        return D.veh_phase[w, i[0]] >= _MOVING and D.veh_u[w, i[0]] >= f[0]
    if kind == _ACTOR_NEAR_EGO:
        if D.veh_phase[w, i[0]] == _HIDDEN or D.veh_phase[w, i[0]] == _DONE:
            return False
        px, py, _ = _actor_pose(T, m, D, w, i[0])
        return math.hypot(px - cx, py - cy) < f[0]
    if kind == _AFTER:
        return D.cond_on[w, i[0]] and t - D.cond_time[w, i[0]] >= f[0] - 1e-9
    if kind == _DRIVE:
        if not D.cond_on[w, i[0]]:
            return False
        if i[1] < 0:
            return odo - D.cond_odo[w, i[0]] >= f[0]
        if D.cond_time[w, q] < 0.0:  # first look since q latched: mark the actor's odometer
            D.cond_time[w, q], D.cond_odo[w, q] = 0.0, D.veh_travel[w, i[1]]
        return D.veh_travel[w, i[1]] - D.cond_odo[w, q] >= f[0]
    if kind == _EGO_FAR:
        return D.cond_on[w, i[0]] and math.hypot(cx - f[0], cy - f[1]) > f[2]
    if kind == _ANY:
        return D.cond_on[w, i[0]] or D.cond_on[w, i[1]]
    if kind == _ALL:
        return D.cond_on[w, i[0]] and D.cond_on[w, i[1]]
    return False


@nb.njit(cache=True)
def _latched(D, w, q) -> bool:
    return q >= 0 and D.cond_on[w, q]


@nb.njit(cache=True)
def _window_on(T, D, w, c, start, stop) -> bool:
    return D.phase[w, c] == _RUNNING and _latched(D, w, start) and not _latched(D, w, stop)


@nb.njit(cache=True)
def _place(T, m, D, V, w, k, slot, u):
    x, y, h, z, lane, s, lat, _ = segment_pose(T, m, k, u)
    V.lane[w, slot], V.s[w, slot], V.lateral[w, slot] = lane, s, lat
    V.xy[w, slot, 0], V.xy[w, slot, 1], V.yaw[w, slot], V.z[w, slot] = x, y, h, z


@nb.njit(cache=True)
def _spawn(T, D, w, k, u, speed):
    D.veh_phase[w, k] = _MOVING
    D.veh_u[w, k] = u
    D.veh_speed[w, k] = speed
    D.veh_ref_speed[w, k] = T.va_speed[k]
    D.veh_mode[w, k] = T.va_behaviour[k]
    D.veh_travel[w, k] = 0.0
    D.veh_spawns[w, k] += 1


@nb.njit(cache=True)
def _free_flow_slot(T, D, w, f) -> int:
    for k in range(T.fl_k0[f], T.fl_k1[f]):
        if D.veh_phase[w, k] == _HIDDEN or D.veh_phase[w, k] == _DONE:
            return k
    return -1


@nb.njit(cache=True)
def _next_gap(T, D, w, f) -> float:
    lo, hi = T.fl_gap[f, 0], T.fl_gap[f, 1]
    return lo + (hi - lo) * _uniform(T.fl_key[f], D.flow_count[w, f], 7)


@nb.njit(cache=True)
def _flows(T, m, D, w, ego_box):
    F = T.fl_scen.shape[0]
    for f in range(F):
        c = T.fl_scen[f]
        if D.phase[w, c] != _RUNNING or not D.cond_on[w, T.fl_active[f]]:
            continue
        k0 = T.fl_k0[f]
        if not D.flow_started[w, f]:
            D.flow_started[w, f] = True
            D.flow_gap[w, f] = _next_gap(T, D, w, f)
            if T.fl_initial[f]:
                u = D.flow_gap[w, f]
                while u < T.va_len[k0] - T.fl_sink[f] - 1.0:
                    _, _, _, _, _lane, _, _, junction = segment_pose(T, m, k0, u)
                    if junction and not T.fl_initial_junction[f]:
                        u += 1.0
                        continue
                    k = _free_flow_slot(T, D, w, f)
                    if k < 0:
                        break
                    _spawn(T, D, w, k, u, T.fl_speed[f])
                    D.flow_last[w, f] = k
                    D.flow_count[w, f] += 1
                    D.flow_gap[w, f] = _next_gap(T, D, w, f)
                    u += D.flow_gap[w, f]
        last = D.flow_last[w, f]
        alive = last >= 0 and D.veh_phase[w, last] == _MOVING
        if not alive or D.veh_u[w, last] > D.flow_gap[w, f]:
            k = _free_flow_slot(T, D, w, f)
            if k >= 0:
                _spawn(T, D, w, k, 0.0, T.fl_speed[f])
                D.flow_last[w, f] = k
                D.flow_count[w, f] += 1
                D.flow_gap[w, f] = _next_gap(T, D, w, f)
        if not D.flow_contact[w, f]:  # constant velocity holds until one of the flow touches the ego
            for k in range(k0, T.fl_k1[f]):
                if D.veh_phase[w, k] != _MOVING:
                    continue
                x, y, h, _, _, _, _, _ = segment_pose(T, m, k, D.veh_u[w, k])
                if _overlap(
                    x, y, h, T.va_size[k, 0], T.va_size[k, 1], ego_box[0], ego_box[1], ego_box[2], _EGO_L, _EGO_W
                ):
                    D.flow_contact[w, f] = True
                    break
        if D.flow_contact[w, f]:
            for k in range(k0, T.fl_k1[f]):
                D.veh_mode[w, k] = _FOLLOW


@nb.njit(cache=True)
def _move_vehicle(T, m, D, V, P, sbox, svalid, w, k, dt, idm, ex, ey, eyaw, ev, prog):
    a_max, b_comf, d_max, s0, headway, delta = idm
    slot = T.first_vehicle + k
    v = D.veh_speed[w, k]
    mode = D.veh_mode[w, k]
    if mode == _SYNC:
        ref = T.va_sync_ref[k] - prog
        if D.veh_u[w, k] >= T.va_sync_u[k] - 5.0 or ref <= 0.0:
            D.veh_mode[w, k] = _FOLLOW
            D.veh_ref_speed[w, k] = T.va_speed[k] * ev
        elif ev > 0.1:
            v = min(max((T.va_sync_u[k] - D.veh_u[w, k]) / (ref / ev), 0.0), 40.0)
        mode = D.veh_mode[w, k]
    if mode == _CONSTANT:
        v = T.va_speed[k]
    elif mode == _FOLLOW or mode == _EMERGENCY:
        braking = _latched(D, w, T.va_brake[k]) and not _latched(D, w, T.va_release[k])
        if braking:
            v = max(v - HARD_DECEL * dt, 0.0)
        else:
            v0 = D.veh_ref_speed[w, k] if mode == _FOLLOW else ev + T.va_speed[k]
            hl, hw = 0.5 * T.va_size[k, 0], 0.5 * T.va_size[k, 1]
            gap, lead_v = _gap_ahead(T, m, k, D.veh_u[w, k], hl, hw, w, slot, V, P, sbox, svalid, ex, ey, eyaw, ev)
            to_end = T.va_len[k] - D.veh_u[w, k] + (1.0 if T.va_finish[k] != _DESTROY else 1e9)
            acc = min(
                _idm(v, v0, gap, lead_v, a_max, b_comf, d_max, s0, headway, delta),
                _idm(v, v0, to_end, 0.0, a_max, b_comf, d_max, s0, headway, delta),
            )
            v = max(v + acc * dt, 0.0)
            if mode == _EMERGENCY:  # constant velocity at the target unless it must brake harder
                v = v0 if acc >= 0.0 else min(v, v0)
    elif mode == _PARKED:
        v = 0.0
    u = D.veh_u[w, k] + v * dt
    D.veh_travel[w, k] += v * dt
    if u >= T.va_len[k]:
        u = T.va_len[k]
        if T.va_finish[k] == _DESTROY:
            D.veh_phase[w, k] = _DONE
        v = 0.0
    if T.va_flow[k] >= 0 and u >= T.va_len[k] - T.fl_sink[T.va_flow[k]]:
        D.veh_phase[w, k] = _DONE
    D.veh_u[w, k] = u
    D.veh_speed[w, k] = v


@nb.njit(cache=True)
def _clear_background(T, m, D, V, w, n_bg, ex, ey):
    """Move background vehicles out of every active cleared stretch."""
    G = T.wd_kind.shape[0]
    P = m.spawn.shape[0]
    for g in range(G):
        if T.wd_kind[g] != _CLEAR or not _window_on(T, D, w, T.wd_scen[g], T.wd_start[g], T.wd_stop[g]):
            continue
        for n in range(n_bg):
            if not V.valid[w, n] or V.lane[w, n] != T.wd_lane[g]:
                continue
            if V.s[w, n] < T.wd_s0[g] - 3.0 or V.s[w, n] > T.wd_s1[g] + 3.0:
                continue
            for cand_i in range(8):
                cand = hash_choice(V.key[w, n], V.trans[w, n] * 11 + cand_i, 5, P)
                sx, sy = m.spawn[cand, 0], m.spawn[cand, 1]
                lane = int(m.spawn[cand, 3])
                if math.hypot(sx - ex, sy - ey) <= TELEPORT_EGO_DISTANCE:
                    continue
                blocked = False
                for g2 in range(G):
                    if T.wd_kind[g2] == _CLEAR and T.wd_lane[g2] == lane:
                        blocked = True
                for j in range(V.valid.shape[1]):
                    if V.valid[w, j] and math.hypot(sx - V.xy[w, j, 0], sy - V.xy[w, j, 1]) <= 12.0:
                        blocked = True
                        break
                if blocked:
                    continue
                V.lane[w, n], V.s[w, n] = lane, m.spawn_s[cand]
                V.trans[w, n] += 1
                V.next[w, n] = choose_successor(m, lane, V.key[w, n], V.trans[w, n])
                V.speed[w, n], V.still[w, n], V.stop_done[w, n], V.lateral[w, n] = 0.0, 0.0, False, 0.0
                x, y, h, z = lane_pose(m, lane, V.s[w, n])
                V.xy[w, n, 0], V.xy[w, n, 1], V.yaw[w, n], V.z[w, n] = x, y, h, z
                break


@nb.njit(cache=True)
def scenario_step(
    T: ScenarioTables,
    m: LaneArrays,
    D: ScenarioArrays,
    V: VehicleArrays,
    P: PedestrianArrays,
    svalid: np.ndarray,
    sbox: np.ndarray,
    time: np.ndarray,
    ego_pose: np.ndarray,
    ego_speed: np.ndarray,
    progress: np.ndarray,
    odometer: np.ndarray,
    dt: float,
    idm: tuple,
    n_bg: int,
) -> None:
    """Advance every scenario of every world one step, in place on `D`, `V`, `P`, `svalid` (copies the
    caller made of the state's arrays; see the module docstring).

    Args:
        time `[W]` (after the step), ego_pose `[W, 3]` / ego_speed `[W]` (after the step), progress /
            odometer `[W]` (the ego's rear-axle route progress and distance driven before the step) [m].
        idm: `IDMParams` fields in order; n_bg: number of background vehicle slots.
    """
    W = time.shape[0]
    C, Q, K = T.sc_end.shape[0], T.cq_kind.shape[0], T.va_scen.shape[0]
    for w in range(W):
        t, odo = time[w], odometer[w]
        cx, cy = _ego_centre(ego_pose, w)
        eyaw, ev = ego_pose[w, 2], ego_speed[w]
        prog = progress[w] + _AXLE
        ego_box = (cx, cy, eyaw)
        # 1. phases
        for c in range(C):
            ph = D.phase[w, c]
            if ph == _DORMANT and math.hypot(cx - T.sc_trigger_xy[c, 0], cy - T.sc_trigger_xy[c, 1]) < INIT_DISTANCE:
                ph = _INIT
            if ph == _INIT and prog >= T.sc_trigger_s[c] - TRIGGER_DISTANCE:
                ph = _RUNNING
                q = T.sc_started[c]
                D.cond_on[w, q], D.cond_time[w, q], D.cond_odo[w, q] = True, t, odo
            D.phase[w, c] = ph
        # 2. conditions
        for q in range(Q):
            if D.cond_on[w, q] or D.phase[w, T.cq_scen[q]] != _RUNNING:
                continue
            if _cond(T, m, D, w, q, t, cx, cy, eyaw, ev, prog, odo):
                D.cond_on[w, q], D.cond_time[w, q], D.cond_odo[w, q] = True, t, odo
        # 3. ends
        for c in range(C):
            if D.phase[w, c] != _RUNNING or not D.cond_on[w, T.sc_end[c]]:
                continue
            D.phase[w, c] = _ENDED
            D.timed_out[w, c] = _latched(D, w, T.sc_timeout[c])
            k = T.sc_emergency[c]
            if k >= 0 and D.veh_phase[w, k] == _MOVING:
                x, y, h = _actor_pose(T, m, D, w, k)
                D.yield_failed[w, c] = (cx - x) * math.cos(h) + (cy - y) * math.sin(h) > 0.0
        # 4. actors
        _flows(T, m, D, w, ego_box)
        for k in range(K):
            c = T.va_scen[k]
            a = D.veh_phase[w, k]
            if D.phase[w, c] == _ENDED:
                a = _DONE if a != _HIDDEN else _HIDDEN
            elif T.va_flow[k] < 0:
                ap = T.va_appear[k]
                if a == _HIDDEN and ((ap == -1 and D.phase[w, c] >= _INIT) or _latched(D, w, ap)):
                    a = _WAITING
                    D.veh_mode[w, k] = T.va_behaviour[k]
                    D.veh_ref_speed[w, k] = T.va_speed[k]
                    D.veh_spawns[w, k] += 1
                    if T.va_ahead[k] > 0.0:
                        D.veh_u[w, k] = prog + T.va_ahead[k]
                        D.veh_speed[w, k] = ev
                        a = _MOVING
                    else:
                        D.veh_u[w, k] = T.va_start_u[k]
                if a == _WAITING and _latched(D, w, T.va_move[k]):
                    a = _MOVING
                if (a == _WAITING or a == _MOVING) and _latched(D, w, T.va_vanish[k]):
                    a = _DONE
            D.veh_phase[w, k] = a
            if a == _MOVING:
                _move_vehicle(T, m, D, V, P, sbox, svalid, w, k, dt, idm, cx, cy, eyaw, ev, prog)
        for j in range(T.wa_scen.shape[0]):
            c = T.wa_scen[j]
            a = D.walker_phase[w, j]
            if D.phase[w, c] == _ENDED:
                a = _DONE if a != _HIDDEN else _HIDDEN
            else:
                ap = T.wa_appear[j]
                if a == _HIDDEN and ((ap == -1 and D.phase[w, c] >= _INIT) or _latched(D, w, ap)):
                    a = _WAITING
                if a == _WAITING and _latched(D, w, T.wa_move[j]):
                    D.walker_clock[w, j] += dt
                    if D.walker_clock[w, j] > T.wa_delay[j]:
                        a = _MOVING
                if a == _MOVING:
                    D.walker_walked[w, j] += T.wa_speed[j] * dt
                    if D.walker_walked[w, j] >= T.wa_dist[j]:
                        a = _DONE
            D.walker_phase[w, j] = a
        for j in range(T.pr_scen.shape[0]):
            c = T.pr_scen[j]
            a = D.prop_phase[w, j]
            ap = T.pr_appear[j]
            if D.phase[w, c] == _ENDED:
                a = _DONE if a != _HIDDEN else _HIDDEN
            elif a == _HIDDEN and ((ap == -1 and D.phase[w, c] >= _INIT) or _latched(D, w, ap)):
                a = _WAITING
            if a == _WAITING and _latched(D, w, T.pr_vanish[j]):
                a = _DONE
            D.prop_phase[w, j] = a
        # 5. slots
        for k in range(K):
            slot = T.first_vehicle + k
            a = D.veh_phase[w, k]
            live = a == _WAITING or a == _MOVING
            V.valid[w, slot] = live
            V.next[w, slot], V.trans[w, slot], V.stop_done[w, slot], V.still[w, slot] = -1, 0, False, 0.0
            V.speed[w, slot] = D.veh_speed[w, k] if a == _MOVING else 0.0
            V.track_id[w, slot] = 100_000 + 1000 * k + D.veh_spawns[w, k]
            if live:
                _place(T, m, D, V, w, k, slot, D.veh_u[w, k])
                door = T.va_door[k] if (a == _MOVING and T.va_door[k] > 0.0) else 0.0
                V.size[w, slot, 0], V.size[w, slot, 1], V.size[w, slot, 2] = (
                    T.va_size[k, 0],
                    T.va_size[k, 1] + door,
                    T.va_size[k, 2],
                )
                if door > 0.0:
                    h = V.yaw[w, slot]
                    shift = 0.5 * door * T.va_door_side[k]
                    V.xy[w, slot, 0] -= math.sin(h) * shift
                    V.xy[w, slot, 1] += math.cos(h) * shift
        for j in range(T.wa_scen.shape[0]):
            slot = T.first_pedestrian + j
            a = D.walker_phase[w, j]
            P.valid[w, slot] = a == _WAITING or a == _MOVING
            d = D.walker_walked[w, j]
            P.u[w, slot], P.direction[w, slot] = d, 1.0
            P.speed[w, slot] = T.wa_speed[j] if a == _MOVING else 0.0
            P.xy[w, slot, 0] = T.wa_start[j, 0] + d * math.cos(T.wa_yaw[j])
            P.xy[w, slot, 1] = T.wa_start[j, 1] + d * math.sin(T.wa_yaw[j])
            P.yaw[w, slot] = T.wa_yaw[j]
        for j in range(T.pr_scen.shape[0]):
            svalid[w, T.first_static + j] = D.prop_phase[w, j] == _WAITING
        # 6. lights, flags, cleared stretches
        for h in range(D.light_override.shape[1]):
            D.light_override[w, h] = -1
        for i in range(T.lf_scen.shape[0]):
            if _window_on(T, D, w, T.lf_scen[i], T.lf_start[i], T.lf_stop[i]):
                D.light_override[w, T.lf_head[i]] = T.lf_state[i]
        D.allow_opposite[w], D.blocked_off[w] = False, False
        for g in range(4):
            D.noise[w, g] = 0.0
        for g in range(T.wd_kind.shape[0]):
            if not _window_on(T, D, w, T.wd_scen[g], T.wd_start[g], T.wd_stop[g]):
                continue
            kind = T.wd_kind[g]
            if kind == _ALLOW_OPPOSITE:
                D.allow_opposite[w] = True
            elif kind == _BLOCKED_OFF:
                D.blocked_off[w] = True
            elif kind == _NOISE:
                for i in range(4):
                    D.noise[w, i] = T.wd_params[g, i]
        _clear_background(T, m, D, V, w, n_bg, cx, cy)


@nb.njit(cache=True)
def apply_noise(controls: np.ndarray, noise: np.ndarray, step: np.ndarray, key: int) -> np.ndarray:
    """Controls `[W, 3]` with `AddNoiseToRouteEgo` noise where `noise [W, 4]` (throttle mean, std, steer
    mean, std) is active: throttle and steer get hashed normal noise (per step index `step [W]`), clamped."""
    out = controls.copy()
    for w in range(controls.shape[0]):
        if noise[w, 1] == 0.0 and noise[w, 3] == 0.0 and noise[w, 0] == 0.0 and noise[w, 2] == 0.0:
            continue
        th = noise[w, 0] + noise[w, 1] * gauss(key, 2 * step[w])
        st = noise[w, 2] + noise[w, 3] * gauss(key, 2 * step[w] + 1)
        out[w, 0] = min(max(controls[w, 0] + th, 0.0), 1.0)
        out[w, 1] = min(max(controls[w, 1] + st, -1.0), 1.0)
    return out
