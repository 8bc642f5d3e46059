"""CollisionTest (scenario_runner `atomic_criteria.py`): which of the collision sensor's contacts count.

The sensor reports every contact of the ego's box with another actor, every step the contact lasts.
A report is dropped when its actor is the one of the last counted collision (forgotten `max_id_time`
seconds after it), when the ego is within `radius` metres of where the last counted collision
happened (forgotten once it moves farther), or when the ego moves slower than `min_ego_speed` (a
stopped ego that is hit is not at fault, and such a report is not remembered either). Several
reports in one step are taken in actor order, so the first counted one masks the others (same place).
Actor kinds follow the actor's type id: vehicles (bicycles included), walkers, and static props
(cones, barriers and the leaderboard's parked cars, which it spawns as `static.prop.mesh`).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from carla_bridge.rules import CollisionRule


@nb.njit(cache=True)
def _overlap(ax, ay, ayaw, al, aw, bx, by, byaw, bl, bw) -> bool:
    """Separating-axis test of two oriented rectangles (touching counts as overlap)."""
    dx, dy = bx - ax, by - ay
    ca, sa, cb, sb = math.cos(ayaw), math.sin(ayaw), math.cos(byaw), math.sin(byaw)
    tol = 1e-9 * (abs(ax) + abs(ay) + abs(bx) + abs(by) + al + aw + bl + bw)
    for ux, uy in ((ca, sa), (-sa, ca), (cb, sb), (-sb, cb)):
        ra = 0.5 * al * abs(ca * ux + sa * uy) + 0.5 * aw * abs(-sa * ux + ca * uy)
        rb = 0.5 * bl * abs(cb * ux + sb * uy) + 0.5 * bw * abs(-sb * ux + cb * uy)
        if abs(dx * ux + dy * uy) - ra - rb > tol:
            return False
    return True


@nb.njit(cache=True)
def _contacts(ego, vxy, vyaw, vsize, vvalid, pxy, pyaw, pvalid, ped_l, ped_w, sbox, svalid):
    W, N = vvalid.shape
    P, S = pvalid.shape[1], svalid.shape[1]
    out = np.zeros((W, N + P + S), dtype=np.bool_)
    for w in range(W):
        ex, ey, eyaw, el, ew = ego[w, 0], ego[w, 1], ego[w, 2], ego[w, 3], ego[w, 4]
        reach = 0.5 * math.hypot(el, ew)
        for n in range(N):
            r = reach + 0.5 * math.hypot(vsize[w, n, 0], vsize[w, n, 1])
            if vvalid[w, n] and (vxy[w, n, 0] - ex) ** 2 + (vxy[w, n, 1] - ey) ** 2 <= r * r:
                out[w, n] = _overlap(
                    ex, ey, eyaw, el, ew, vxy[w, n, 0], vxy[w, n, 1], vyaw[w, n], vsize[w, n, 0], vsize[w, n, 1]
                )
        for p in range(P):
            r = reach + 0.5 * math.hypot(ped_l, ped_w)
            if pvalid[w, p] and (pxy[w, p, 0] - ex) ** 2 + (pxy[w, p, 1] - ey) ** 2 <= r * r:
                out[w, N + p] = _overlap(ex, ey, eyaw, el, ew, pxy[w, p, 0], pxy[w, p, 1], pyaw[w, p], ped_l, ped_w)
        for k in range(S):
            r = reach + 0.5 * math.hypot(sbox[w, k, 3], sbox[w, k, 4])
            if svalid[w, k] and (sbox[w, k, 0] - ex) ** 2 + (sbox[w, k, 1] - ey) ** 2 <= r * r:
                b = sbox[w, k]
                out[w, N + P + k] = _overlap(ex, ey, eyaw, el, ew, b[0], b[1], b[2], b[3], b[4])
    return out


def contacts(ego_box: np.ndarray, vehicles, pedestrians, statics, ped_size: tuple[float, float]) -> np.ndarray:
    """The collision sensor: `[W, A]` bool, the ego's box touches each agent's (vehicles, pedestrians,
    statics in that order; a bounding-circle test first, then the exact separating-axis test).

    Args:
        ego_box: `[W, 5]` (x, y, yaw, length, width); vehicles / pedestrians / statics: the lite state's
            groups (xy, yaw, size / box, valid); ped_size: pedestrian (length, width) [m].
    """
    v, p, s = vehicles, pedestrians, statics
    return _contacts(
        np.ascontiguousarray(ego_box, dtype=np.float64),
        v.xy.numpy(),
        v.yaw.numpy(),
        v.size.numpy(),
        v.valid.numpy(),
        p.xy.numpy(),
        p.yaw.numpy(),
        p.valid.numpy(),
        float(ped_size[0]),
        float(ped_size[1]),
        s.box.numpy(),
        s.valid.numpy(),
    )


@nb.njit(cache=True)
def _filter(contact, ids, pos, speed, time, last_id, last_time, last_xy, has_xy, radius, max_id_time, min_speed):
    W, A = contact.shape
    counted = np.zeros((W, A), dtype=np.bool_)
    last_id, last_time, last_xy, has_xy = last_id.copy(), last_time.copy(), last_xy.copy(), has_xy.copy()
    for w in range(W):
        for a in range(A):  # the sensor's reports of this step
            if not contact[w, a] or ids[w, a] == last_id[w]:
                continue
            if has_xy[w] and math.hypot(pos[w, 0] - last_xy[w, 0], pos[w, 1] - last_xy[w, 1]) <= radius:
                continue
            if speed[w] < min_speed:
                continue
            counted[w, a] = True
            last_time[w] = time[w]
            last_xy[w, 0], last_xy[w, 1], has_xy[w] = pos[w, 0], pos[w, 1], True
            last_id[w] = ids[w, a]
        # the criterion's update() after the tick: forget the place and the actor
        if has_xy[w] and math.hypot(pos[w, 0] - last_xy[w, 0], pos[w, 1] - last_xy[w, 1]) > radius:
            has_xy[w] = False
        if last_id[w] >= 0 and time[w] - last_time[w] > max_id_time:
            last_id[w] = -1
    return counted, last_id, last_time, last_xy, has_xy


def collision_update(
    contact: np.ndarray,
    ids: np.ndarray,
    location: np.ndarray,
    speed: np.ndarray,
    time: np.ndarray,
    last_id: np.ndarray,
    last_time: np.ndarray,
    last_xy: np.ndarray,
    has_xy: np.ndarray,
    rule: CollisionRule,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step of the criterion for W egos.

    Args:
        contact: `[W, A]` bool, the ego's box touches actor a now (the sensor's reports).
        ids: `[W, A]` int64 actor ids (≥ 0).
        location: `[W, 2]` ego locations (box centres) [m]; speed: `[W]` [m/s]; time: `[W]` [s].
        last_id: `[W]` int64 actor of the last counted collision (-1: none / forgotten).
        last_time: `[W]` its time [s]; last_xy: `[W, 2]` the ego's location then; has_xy: `[W]` bool
            (the place is still remembered).
        rule: the rule set's parameters.

    Returns:
        counted `[W, A]` bool (a collision event each), and the updated last_id, last_time, last_xy, has_xy.
    """
    return _filter(
        np.ascontiguousarray(contact, dtype=np.bool_),
        np.ascontiguousarray(ids, dtype=np.int64),
        np.ascontiguousarray(location, dtype=np.float64),
        np.ascontiguousarray(speed, dtype=np.float64),
        np.ascontiguousarray(time, dtype=np.float64),
        np.asarray(last_id, dtype=np.int64),
        np.asarray(last_time, dtype=np.float64),
        np.asarray(last_xy, dtype=np.float64),
        np.asarray(has_xy, dtype=np.bool_),
        float(rule.radius),
        float(rule.max_id_time),
        float(rule.min_ego_speed),
    )


def hit_from_behind(ego_pose: np.ndarray, other_xy: np.ndarray, ego_length: float) -> np.ndarray:
    """`[...]` bool: the other actor's centre lies behind the ego's rear half (it ran into the ego).
    A description for reports; the criterion itself does not look at it.

    Args:
        ego_pose: `[..., 3]` (x, y, yaw) of the ego's box centre; other_xy: `[..., 2]`; ego_length [m].
    """
    rel = np.asarray(other_xy) - np.asarray(ego_pose)[..., :2]
    along = rel[..., 0] * np.cos(ego_pose[..., 2]) + rel[..., 1] * np.sin(ego_pose[..., 2])
    return along < -0.25 * ego_length
