"""Pedestrians (simple crossing model): each walks back and forth along a polyline path on the
sidewalk that may cross the road (at a junction, or jaywalking elsewhere); before stepping onto
the road it waits while a vehicle (the ego included) is close or approaching, and anywhere it stops
while a moving vehicle (or the ego's predicted footprint) comes within reach. Paths are built at
reset (numpy, seeded); the step is vectorized over `[W, P]`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

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


def pedestrian_step(p: dict[str, Tensor], vehicle_boxes: Tensor, vehicle_speed: Tensor, dt: float) -> dict[str, Tensor]:
    """Advance pedestrians one step.

    Args:
        p: fields `[W, P]` unless noted: path `[W, P, 4, 2]`, cum `[W, P, 4]` (arc length at the
            path points), road `[W, P, 3]` bool, u (arc position), dir (±1), v0 (walking speed),
            speed, valid.
        vehicle_boxes: `[W, V, 5]` boxes of every vehicle incl. the ego and its predicted
            footprint (invalid rows far away).
        vehicle_speed: `[W, V]`.
        dt: step [s].

    Returns:
        Updated fields (new dict) with xy `[W, P, 2]`, yaw `[W, P]` filled in.
    """
    u, dr = p["u"], p["dir"]
    total = p["cum"][..., -1]
    ahead = (u + dr * 1.5).clamp(min=0.0)
    ahead = torch.minimum(ahead, total)
    seg_now = _segment(p["cum"], u, dr)
    seg_ahead = _segment(p["cum"], ahead, dr)
    on_road = p["road"].gather(-1, seg_now[..., None]).squeeze(-1)
    road_ahead = p["road"].gather(-1, seg_ahead[..., None]).squeeze(-1)
    axy, _ = _pose(p["path"], p["cum"], ahead, dr)
    d = point_box_distance(axy[:, :, None, :], vehicle_boxes)[:, :, 0, :]  # [W, P, V]
    danger = (d < 3.0 + 2.5 * vehicle_speed[:, None, :]).any(-1)
    touching = (d < 0.5).any(-1)
    # a moving vehicle (or the ego's predicted footprint) within reach of where the pedestrian is
    # going, on the road or off it: the pedestrian stops for it (stopped vehicles don't hold pedestrians, so a
    # car waiting for a pedestrian never deadlocks with it)
    threatened = ((vehicle_speed[:, None, :] > 0.5) & (d < THREAT_DISTANCE)).any(-1)
    wait = (~on_road & road_ahead & danger) | touching | threatened
    speed = torch.where(wait | ~p["valid"], torch.zeros_like(p["v0"]), p["v0"])
    u = u + dr * speed * dt
    flip_hi = u >= total
    flip_lo = u <= 0.0
    u = torch.minimum(u.clamp(min=0.0), total)
    dr = torch.where(flip_hi, -torch.ones_like(dr), torch.where(flip_lo, torch.ones_like(dr), dr))
    xy, yaw = _pose(p["path"], p["cum"], u, dr)
    out = dict(p)
    out.update(u=u, dir=dr, speed=speed, xy=xy, yaw=yaw)
    return out


def _segment(cum: Tensor, u: Tensor, dr: Tensor) -> Tensor:
    """Index of the path segment containing arc position `u` (walking direction breaks ties)."""
    k = cum.shape[-1]
    eps = torch.where(dr > 0, 1e-4, -1e-4)
    seg = ((u + eps)[..., None] >= cum[..., 1:]).sum(-1)
    return seg.clamp(0, k - 2)


def _pose(path: Tensor, cum: Tensor, u: Tensor, dr: Tensor) -> tuple[Tensor, Tensor]:
    """Point `[W, P, 2]` and walking heading `[W, P]` at arc position `u [W, P]` on `path [W, P, K, 2]`."""
    seg = _segment(cum, u, dr)
    g = seg[..., None, None].expand(*seg.shape, 1, 2)
    a = path.gather(2, g).squeeze(2)
    b = path.gather(2, g + 1).squeeze(2)
    c0 = cum.gather(-1, seg[..., None]).squeeze(-1)
    c1 = cum.gather(-1, (seg + 1)[..., None]).squeeze(-1)
    frac = ((u - c0) / (c1 - c0).clamp(min=1e-6)).clamp(0.0, 1.0)
    d = b - a
    yaw = torch.atan2(d[..., 1] * dr, d[..., 0] * dr)
    return a + d * frac[..., None], yaw


def path_cumulative(paths: np.ndarray) -> np.ndarray:
    """`[P, K, 2]` → `[P, K]` arc length at each path point."""
    seg = np.linalg.norm(np.diff(paths, axis=1), axis=-1)
    return np.concatenate([np.zeros((len(paths), 1)), np.cumsum(seg, axis=1)], axis=1)
