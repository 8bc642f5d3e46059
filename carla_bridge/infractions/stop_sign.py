"""RunningStopTest (scenario_runner `atomic_criteria.py`): the ego must stop while a stop sign affects it.

A stop sign's trigger box is placed as CARLA's `UStopSignComponent::InitializeSign` places it: a
square of half size `box_lane_fraction` × half the lane width, on the signal's lane at the signal's
s moved back by that half size (clamped into its lane section: a signal on a junction's connecting
lane gets its box at the junction entry). The ego's
check waypoints are its nearest lane point and the points every `waypoint_step` metres ahead up to
`proximity` metres (following each lane's first successor). A sign affects the ego when its box
centre is within `proximity` of the first check waypoint and one check waypoint lies strictly inside
the box grown by `box_multiplier` (the reference tests the world axes, not the box's rotation).

Per ego: with no target, the first affecting sign becomes the target (not while driving backwards or
against the lane, below `reverse_cos`); from the next step on, a speed below `speed` completes the
stop; once the target no longer affects the ego, it ran the sign unless it stopped or this sign was
the last one it failed; then the target is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from carla_bridge.coords import location_to_world
from carla_bridge.maps.stop_signs import STOP_SIGN_TYPE
from carla_bridge.maps.xodr import read_xodr
from carla_bridge.rules import StopSignRule


@dataclass(frozen=True)
class StopBoxes:
    """Trigger boxes of a town's stop signs, one per `town.stop_signs` entry.

    Attributes:
        centre: `[S, 2]` [m]; half: `[S]` half size [m]; lane: `[S]` approach lane id;
        sign: `[S]` `StopSign.id`.
    """

    centre: np.ndarray
    half: np.ndarray
    lane: np.ndarray
    sign: np.ndarray


def _sections(path) -> dict[int, list[float]]:
    """road id → its lane-section start s values and, last, the road length (from the .xodr)."""
    _, root = read_xodr(path)
    out = {}
    for road in root.iter("road"):
        starts = [float(sec.get("s", "0")) for sec in road.findall("lanes/laneSection")]
        out[int(road.get("id", "-1"))] = [*starts, float(road.get("length", "0"))]
    return out


def _landmark_boxes(town, landmark, sections, rule: StopSignRule) -> list[tuple[np.ndarray, float]]:
    """CARLA's `UStopSignComponent::InitializeSign`: per driving lane of the signal's validities, a box of
    half size `box_lane_fraction` × half the lane width, centred on the lane at the signal's s moved
    back (against the lane's direction) by that half size, clamped into the signal's lane section."""
    import carla

    road, s_sig = int(landmark.road_id), float(landmark.s)
    bounds = sections.get(road, [0.0, math.inf])
    k = max(0, int(np.searchsorted(bounds[:-1], s_sig, side="right")) - 1)
    s0, s1 = bounds[k], bounds[k + 1]
    out = []
    for lo, hi in landmark.get_lane_validities():
        for lane in range(min(lo, hi), max(lo, hi) + 1):
            wp = town.carla_map.get_waypoint_xodr(road, lane, s_sig) if lane else None
            if wp is None or wp.lane_type != carla.LaneType.Driving:
                continue
            half = rule.box_lane_fraction * float(wp.lane_width) / 2.0
            s = s_sig - half if lane < 0 else s_sig + half
            s = min(max(s, s0 + _EPS), s1 - _EPS)
            centre = town.carla_map.get_waypoint_xodr(road, lane, s)
            out.append((location_to_world((centre or wp).transform.location)[:2], half))
    return out


_EPS = 1e-5


def stop_boxes(town, rule: StopSignRule) -> StopBoxes:
    """`StopBoxes` of `town.stop_signs`: each sign's box is the one of its OpenDRIVE signal nearest to
    its stop line (a signal with several lanes has a box per lane)."""
    signs = town.stop_signs
    if not signs:
        return StopBoxes(np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    sections = _sections(town.path)
    landmarks: dict[str, list] = {}
    for lm in town.carla_map.get_all_landmarks_of_type(STOP_SIGN_TYPE):
        landmarks.setdefault(str(lm.id), []).append(lm)
    centre, half = [], []
    for st in signs:
        boxes = [b for lm in landmarks.get(st.signal_id, []) for b in _landmark_boxes(town, lm, sections, rule)]
        if not boxes:
            raise ValueError(f"{town.name}: stop sign {st.signal_id} has no trigger box on a driving lane")
        c, h = min(boxes, key=lambda b: float(np.linalg.norm(b[0] - np.asarray(st.stop_xy))))
        centre.append(c)
        half.append(h)
    return StopBoxes(
        centre=np.asarray(centre, dtype=np.float64).reshape(-1, 2),
        half=np.asarray(half, dtype=np.float64),
        lane=np.asarray([st.lane_id for st in signs], dtype=np.int64),
        sign=np.asarray([st.id for st in signs], dtype=np.int64),
    )


def near_stop(location: np.ndarray, boxes: StopBoxes, rule: StopSignRule) -> np.ndarray:
    """`[W]` bool: some stop box is close enough to matter (a cheap pre-filter; the rest of the
    criterion runs only there or while a target is held)."""
    if not len(boxes.half):
        return np.zeros(len(location), dtype=bool)
    reach = rule.proximity + rule.proximity + (rule.box_multiplier * boxes.half).max() + 1.0
    d = np.linalg.norm(np.asarray(location)[:, None, :2] - boxes.centre[None], axis=-1)
    return (d <= reach).any(-1)


def check_waypoints(town, location: np.ndarray, rule: StopSignRule) -> tuple[np.ndarray, np.ndarray]:
    """The ego's check waypoints: its nearest driving-lane point and the points every
    `waypoint_step` ahead up to `proximity` (first successors).

    Returns:
        points `[K, 2]` and the lane direction at the first one `[2]`.
    """
    lane, s, _ = town.project(np.asarray(location, dtype=np.float64)[None, :2])
    ln, s = town.lanes[int(lane[0])], float(s[0])
    pts, first_dir = [], None
    for _ in range(int(rule.proximity / rule.waypoint_step) + 1):
        p, yaw = ln.interpolate(s)
        pts.append(p[0])
        if first_dir is None:
            first_dir = np.array([np.cos(yaw[0]), np.sin(yaw[0])])
        s += rule.waypoint_step
        while s > ln.length:
            if not ln.successors:
                return np.asarray(pts), first_dir
            s -= ln.length
            ln = town.lanes[ln.successors[0]]
    return np.asarray(pts), first_dir


def affected(points: np.ndarray, k: int, boxes: StopBoxes, rule: StopSignRule) -> bool:
    """Whether stop box `k` affects an ego with check waypoints `points [K, 2]` (`is_actor_affected_by_stop`)."""
    c = boxes.centre[k]
    if np.linalg.norm(points[0] - c) > rule.proximity:
        return False
    h = rule.box_multiplier * boxes.half[k]
    inside = (
        (points[:, 0] > c[0] - h) & (points[:, 0] < c[0] + h) & (points[:, 1] > c[1] - h) & (points[:, 1] < c[1] + h)
    )
    return bool(inside.any())


def stop_sign_step(
    points: np.ndarray,
    lane_dir: np.ndarray,
    heading: float,
    speed: float,
    target: int,
    completed: bool,
    last_failed: int,
    boxes: StopBoxes,
    rule: StopSignRule,
) -> tuple[int, bool, int, int]:
    """One step of the criterion for one ego.

    Args:
        points / lane_dir: `check_waypoints` of the ego; heading: its yaw [rad]; speed: its signed
            speed along its heading [m/s] (negative when reversing).
        target: the box index it is judged against (-1: none); completed: it stopped for the target;
        last_failed: the box it last ran (-1: none).

    Returns:
        (target, completed, last_failed, ran) with ran = the box it ran this step (-1: none).
    """
    fwd = np.array([np.cos(heading), np.sin(heading)])
    if target < 0:
        if speed < rule.reverse_cos or float(fwd @ lane_dir) < rule.reverse_cos:
            return -1, False, last_failed, -1
        for k in range(len(boxes.half)):
            if affected(points, k, boxes, rule):
                return k, False, last_failed, -1
        return -1, False, last_failed, -1
    completed = completed or speed < rule.speed
    ran = -1
    if not affected(points, target, boxes, rule):
        if not completed and last_failed != target:
            ran = last_failed = target
        target, completed = -1, False
    return target, completed, last_failed, ran
