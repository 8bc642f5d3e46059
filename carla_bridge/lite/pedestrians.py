"""Pedestrians (simple crossing model): each walks back and forth along a polyline path on the
sidewalk that may cross the road (at a junction, or jaywalking elsewhere); before stepping onto
the road it waits while a vehicle (the ego included) is close or approaching, and anywhere it stops
while a moving vehicle (or the ego's predicted footprint) comes within reach. Paths are built at
reset (numpy, seeded); the step is a compiled kernel over `[W, P]`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from carla_bridge.lite.geometry import point_box_distance

PATH_POINTS = 4  # path = sidewalk → (crossing) → sidewalk


def _offroad(town, pts: np.ndarray, margin: float) -> np.ndarray:
    """`[M]` bool: the points lie more than `margin` beyond the edge of the nearest driving lane."""
    lane, _, lateral = town.project(pts)
    widths = np.array([town.lanes[int(i)].width for i in lane])
    return np.abs(lateral) > 0.5 * widths + margin


def build_pedestrian_paths(
    town,
    rng: np.random.Generator,
    count: int,
    centre: np.ndarray | None,
    radius: float | None,
    cross_prob: float,
    jaywalk_prob: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample `count` pedestrian paths.

    Returns:
        paths `[P, 4, 2]` world points, road `[P, 3]` bool (segment crosses the road).
    """
    lanes = [ln for ln in town.lanes if not ln.is_junction and ln.length > 12.0]
    if centre is not None and radius is not None:
        near = [ln for ln in lanes if np.min(np.linalg.norm(ln.points - centre[None], axis=1)) < radius]
        lanes = near or lanes
    paths = np.zeros((count, PATH_POINTS, 2))
    road = np.zeros((count, PATH_POINTS - 1), dtype=bool)
    made = 0
    tries = 0
    while made < count and tries < count * 30:
        tries += 1
        ln = lanes[int(rng.integers(len(lanes)))]
        cross = rng.random() < cross_prob
        at_junction = cross and rng.random() > jaywalk_prob
        s_mid = (ln.length - 3.0) if at_junction else rng.uniform(4.0, ln.length - 4.0)
        s_mid = float(np.clip(s_mid, 0.0, ln.length))
        xy, yaw = ln.interpolate(np.array([s_mid]))
        p, h = xy[0], float(yaw[0])
        fwd = np.array([math.cos(h), math.sin(h)])
        right = np.array([math.sin(h), -math.cos(h)])
        # sidewalk on the right: first off-road offset
        offs = np.arange(0.5 * ln.width + 0.5, 0.5 * ln.width + 6.0, 0.5)
        cand = p[None] + offs[:, None] * right[None]
        off = _offroad(town, cand, 0.6)
        if not off.any():
            continue
        side = cand[int(np.argmax(off))] + 0.6 * right
        back = side - fwd * rng.uniform(8.0, 20.0)
        if cross:
            offs = np.arange(1.0, 30.0, 0.5)
            cand = side[None] - offs[:, None] * right[None]
            off = _offroad(town, cand, 0.6)
            on = ~off
            if not on.any():
                continue
            first_on = int(np.argmax(on))
            after = off & (np.arange(len(off)) > first_on)
            if not after.any():
                continue
            far = cand[int(np.argmax(after))] - 0.6 * right
            end = far + fwd * rng.uniform(5.0, 15.0)
            pts = np.stack([back, side, far, end])
            seg_road = np.array([False, True, False])
        else:
            pts = np.stack([back, side, side + fwd * rng.uniform(5.0, 15.0), side + fwd * rng.uniform(16.0, 30.0)])
            seg_road = np.zeros(3, dtype=bool)
        if not _sidewalk_ok(town, pts, seg_road):
            continue
        paths[made], road[made] = pts, seg_road
        made += 1
    if made < count:
        raise ValueError(f"could not place {count} pedestrians in town {town.name} (placed {made})")
    return paths, road


def _sidewalk_ok(town, pts: np.ndarray, seg_road: np.ndarray) -> bool:
    """Every off-road segment of a path stays off the driving lanes (sampled every metre)."""
    samples = []
    for k in np.flatnonzero(~seg_road):
        a, b = pts[k], pts[k + 1]
        n = max(2, int(np.linalg.norm(b - a)) + 1)
        samples.append(a[None] + np.linspace(0.0, 1.0, n)[:, None] * (b - a)[None])
    return bool(_offroad(town, np.concatenate(samples), 0.3).all()) if samples else True


THREAT_DISTANCE = 1.5  # [m] a moving vehicle's box this close stops a pedestrian


@nb.njit(cache=True)
def pedestrian_step(
    path: np.ndarray,
    cum: np.ndarray,
    road: np.ndarray,
    u: np.ndarray,
    direction: np.ndarray,
    v0: np.ndarray,
    valid: np.ndarray,
    movers: np.ndarray,
    mover_speed: np.ndarray,
    mover_valid: np.ndarray,
    dt: float,
):
    """Advance every pedestrian one step (compiled; a loop over worlds and pedestrians).

    Args:
        path `[W, P, 4, 2]`, cum `[W, P, 4]`, road `[W, P, 3]`, u, direction, v0, valid `[W, P]`: see
            `PedestrianState`.
        movers: `[W, V, 5]` boxes of every vehicle incl. the ego and its predicted footprint;
            mover_speed `[W, V]`; mover_valid `[W, V]`.
        dt: step [s].

    Returns:
        (u, direction, speed, xy `[W, P, 2]`, yaw) after the step.
    """
    W, P = u.shape
    V = movers.shape[1]
    n_u = u.copy()
    n_dir = direction.copy()
    n_speed = np.zeros_like(u)
    for w in range(W):
        for i in range(P):
            if not valid[w, i]:
                continue
            total = cum[w, i, -1]
            dr = direction[w, i]
            ahead = min(max(u[w, i] + dr * 1.5, 0.0), total)
            on_road = road[w, i, _segment(cum[w, i], u[w, i], dr)]
            road_ahead = road[w, i, _segment(cum[w, i], ahead, dr)]
            ax, ay, _ = _pose(path[w, i], cum[w, i], ahead, dr)
            danger = touching = threatened = False
            for j in range(V):
                if not mover_valid[w, j]:
                    continue
                b = movers[w, j]
                d = point_box_distance(ax, ay, b[0], b[1], math.cos(b[2]), math.sin(b[2]), 0.5 * b[3], 0.5 * b[4])
                danger |= d < 3.0 + 2.5 * mover_speed[w, j]
                touching |= d < 0.5
                threatened |= mover_speed[w, j] > 0.5 and d < THREAT_DISTANCE
            # a moving vehicle (or the ego's predicted footprint) within reach of where the pedestrian
            # is going stops it; stopped vehicles don't hold pedestrians, so a car waiting for a
            # pedestrian never deadlocks with it
            wait = (not on_road and road_ahead and danger) or touching or threatened
            spd = 0.0 if wait else v0[w, i]
            nu = u[w, i] + dr * spd * dt
            if nu >= total:
                dr = -1.0
            elif nu <= 0.0:
                dr = 1.0
            n_u[w, i] = min(max(nu, 0.0), total)
            n_dir[w, i] = dr
            n_speed[w, i] = spd
    xy, yaw = pedestrian_poses(path, cum, n_u, n_dir)
    return n_u, n_dir, n_speed, xy, yaw


@nb.njit(cache=True)
def pedestrian_poses(path: np.ndarray, cum: np.ndarray, u: np.ndarray, direction: np.ndarray):
    """Point `[W, P, 2]` and walking heading `[W, P]` at arc positions `u [W, P]` on the paths."""
    W, P = u.shape
    xy = np.empty((W, P, 2))
    yaw = np.empty((W, P))
    for w in range(W):
        for i in range(P):
            x, y, h = _pose(path[w, i], cum[w, i], u[w, i], direction[w, i])
            xy[w, i, 0], xy[w, i, 1], yaw[w, i] = x, y, h
    return xy, yaw


@nb.njit(cache=True)
def _segment(cum: np.ndarray, u: float, dr: float) -> int:
    """Index of the path segment containing arc position `u` (the walking direction breaks ties)."""
    eps = 1e-4 if dr > 0 else -1e-4
    seg = 0
    for k in range(1, cum.shape[0]):
        if u + eps >= cum[k]:
            seg += 1
    return min(seg, cum.shape[0] - 2)


@nb.njit(cache=True)
def _pose(path: np.ndarray, cum: np.ndarray, u: float, dr: float) -> tuple[float, float, float]:
    seg = _segment(cum, u, dr)
    frac = min(max((u - cum[seg]) / max(cum[seg + 1] - cum[seg], 1e-6), 0.0), 1.0)
    dx, dy = path[seg + 1, 0] - path[seg, 0], path[seg + 1, 1] - path[seg, 1]
    return path[seg, 0] + dx * frac, path[seg, 1] + dy * frac, math.atan2(dy * dr, dx * dr)


def path_cumulative(paths: np.ndarray) -> np.ndarray:
    """`[P, K, 2]` → `[P, K]` arc length at each path point."""
    seg = np.linalg.norm(np.diff(paths, axis=1), axis=-1)
    return np.concatenate([np.zeros((len(paths), 1)), np.cumsum(seg, axis=1)], axis=1)
