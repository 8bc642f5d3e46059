"""RunningRedLightTest (scenario_runner `atomic_criteria.py`): the ego's rear crosses a red light's stop line.

Each light governs stop lines on its approach lanes: in the reference, the light's trigger-volume
waypoints advanced in `waypoint_step` (0.5 m) steps until the junction, so the line lies within the
last half step before the junction entry (we take the middle of that step); it spans ± `stop_line_half_width`
lane widths across the lane. Each step, for every red light within `distance_light` of the ego's
location (we take the mean of the light's stop points as its trigger volume's centre) other than the
last one it ran, the ego runs it when the segment from `tail_close` × half-length behind its centre to
`tail_far_margin` metres behind its rear bumper intersects a stop line of that light, while the
rear point lies on that stop line's lane (same OpenDRIVE road and lane id, nearest driving lane) and
the ego heads the lane's way. A light run once is not counted again until another light is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from carla_bridge.rules import RedLightRule


@dataclass(frozen=True)
class StopLines:
    """The stop lines of a town's lights (float64 / int64 numpy arrays).

    Attributes:
        head: `[M]` light head index of each stop line; xy `[M, 2]` line centre; forward `[M, 2]` lane
            direction; width `[M]` lane width [m]; road_lane `[M, 2]` OpenDRIVE (road, lane) ids.
        centre: `[H]`×2 position of each light (the trigger volume's centre) [m].
    """

    head: np.ndarray
    xy: np.ndarray
    forward: np.ndarray
    width: np.ndarray
    road_lane: np.ndarray
    centre: np.ndarray


def stop_lines(town, rule: RedLightRule) -> StopLines:
    """`StopLines` of every light head of `town` (in `town.traffic_lights` head order)."""
    heads = [h for g in town.traffic_lights for h in g.heads]
    head, xy, fwd, width, road_lane = [], [], [], [], []
    centre = np.zeros((len(heads), 2))
    for k, h in enumerate(heads):
        pts = []
        for lane_id, stop_s in zip(h.lane_ids, np.asarray(h.stop_s, dtype=np.float64).reshape(-1)):
            ln = town.lanes[lane_id]
            into_junction = any(town.lanes[j].is_junction for j in ln.successors)
            s = max(0.0, ln.length - 0.5 * rule.waypoint_step) if into_junction else float(stop_s)
            p, yaw = ln.interpolate(s)
            head.append(k)
            xy.append(p[0])
            fwd.append([np.cos(yaw[0]), np.sin(yaw[0])])
            width.append(float(np.interp(s, ln.s, ln.widths)) if ln.widths is not None else ln.width)
            road_lane.append([ln.road_id, ln.lane_id])
            pts.append(p[0])
        centre[k] = np.mean(pts, axis=0) if pts else np.asarray(h.pole_xy, dtype=np.float64)[:2]
    return StopLines(
        head=np.asarray(head, dtype=np.int64),
        xy=np.asarray(xy, dtype=np.float64).reshape(-1, 2),
        forward=np.asarray(fwd, dtype=np.float64).reshape(-1, 2),
        width=np.asarray(width, dtype=np.float64),
        road_lane=np.asarray(road_lane, dtype=np.int64).reshape(-1, 2),
        centre=centre,
    )


@nb.njit(cache=True)
def _orient(ax, ay, bx, by, cx, cy):
    v = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    return 0 if abs(v) < 1e-12 else (1 if v > 0 else -1)


@nb.njit(cache=True)
def _on_segment(ax, ay, bx, by, cx, cy):
    return min(ax, bx) - 1e-12 <= cx <= max(ax, bx) + 1e-12 and min(ay, by) - 1e-12 <= cy <= max(ay, by) + 1e-12


@nb.njit(cache=True)
def segments_intersect(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    """Whether the closed segments a–b and c–d (each `[2]`) share a point (touching included), as
    shapely's `intersection(...)` being non-empty."""
    o1 = _orient(a[0], a[1], b[0], b[1], c[0], c[1])
    o2 = _orient(a[0], a[1], b[0], b[1], d[0], d[1])
    o3 = _orient(c[0], c[1], d[0], d[1], a[0], a[1])
    o4 = _orient(c[0], c[1], d[0], d[1], b[0], b[1])
    if o1 != o2 and o3 != o4:
        return True
    if o1 == 0 and _on_segment(a[0], a[1], b[0], b[1], c[0], c[1]):
        return True
    if o2 == 0 and _on_segment(a[0], a[1], b[0], b[1], d[0], d[1]):
        return True
    if o3 == 0 and _on_segment(c[0], c[1], d[0], d[1], a[0], a[1]):
        return True
    return o4 == 0 and _on_segment(c[0], c[1], d[0], d[1], b[0], b[1])


@nb.njit(cache=True)
def _candidates(centre, yaw, red, last, light_centre, line_head, line_xy, line_fwd, line_width, half_len, p):
    distance_light, tail_close, tail_far_margin, half_width = p
    W = centre.shape[0]
    M = line_head.shape[0]
    out = []
    seg_a, seg_b = np.empty(2), np.empty(2)
    line_a, line_b = np.empty(2), np.empty(2)
    for w in range(W):
        c, s = np.cos(yaw[w]), np.sin(yaw[w])
        seg_a[0], seg_a[1] = centre[w, 0] - tail_close * half_len * c, centre[w, 1] - tail_close * half_len * s
        far = half_len + tail_far_margin
        seg_b[0], seg_b[1] = centre[w, 0] - far * c, centre[w, 1] - far * s
        for m in range(M):
            h = line_head[m]
            if h == last[w] or not red[w, h]:
                continue
            dx, dy = light_centre[h, 0] - centre[w, 0], light_centre[h, 1] - centre[w, 1]
            if dx * dx + dy * dy > distance_light * distance_light:
                continue
            if c * line_fwd[m, 0] + s * line_fwd[m, 1] <= 0.0:
                continue
            hw = half_width * line_width[m]
            line_a[0], line_a[1] = line_xy[m, 0] - hw * line_fwd[m, 1], line_xy[m, 1] + hw * line_fwd[m, 0]
            line_b[0], line_b[1] = line_xy[m, 0] + hw * line_fwd[m, 1], line_xy[m, 1] - hw * line_fwd[m, 0]
            if segments_intersect(seg_a, seg_b, line_a, line_b):
                out.append((w, m))
    return out


def red_light_candidates(
    location: np.ndarray,
    yaw: np.ndarray,
    red: np.ndarray,
    last: np.ndarray,
    lines: StopLines,
    half_length: float,
    rule: RedLightRule,
) -> list[tuple[int, int]]:
    """The (world, stop line) pairs where the ego's tail segment crosses a red line this step, in
    (world, line) order, before the lane check of the tail point (`tail_point`, done by the caller).

    Args:
        location: `[W, 2]` ego box centres [m]; yaw: `[W]` [rad]; red: `[W, H]` bool, the head shows red.
        last: `[W]` int64 head of the last light run (-1: none); half_length: the ego's half length [m].
    """
    if not len(lines.head):
        return []
    p = (
        float(rule.distance_light),
        float(rule.tail_close),
        float(rule.tail_far_margin),
        float(rule.stop_line_half_width),
    )
    found = _candidates(
        np.ascontiguousarray(location, dtype=np.float64),
        np.ascontiguousarray(yaw, dtype=np.float64),
        np.ascontiguousarray(red, dtype=np.bool_),
        np.ascontiguousarray(last, dtype=np.int64),
        lines.centre,
        lines.head,
        lines.xy,
        lines.forward,
        lines.width,
        float(half_length),
        p,
    )
    return [(int(w), int(m)) for w, m in found]


def tail_point(location: np.ndarray, yaw: float, half_length: float, rule: RedLightRule) -> np.ndarray:
    """`[2]` the far tail point (`tail_far_margin` behind the rear bumper) whose lane is checked."""
    far = half_length + rule.tail_far_margin
    return np.asarray(location, dtype=np.float64)[:2] - far * np.array([np.cos(yaw), np.sin(yaw)])
