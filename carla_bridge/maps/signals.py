"""OpenDRIVE signals (`carla.Landmark`) → the driving lanes they govern.

A signal references a road, an s along it and a range of lane ids (``get_lane_validities``). In CARLA
towns traffic lights reference the junction's connecting lanes near their start; then the lane a car
must stop on is the connecting lane's predecessor, the approach lane, and the stop line is at the
approach lane's end. A signal on an ordinary road governs that lane directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from carla_bridge.coords import location_to_world
from carla_bridge.maps.lanes import Lane

STOP_LINE_BACKOFF = 1.0  # [m] stop line this far before the junction entry


@dataclass(frozen=True)
class SignalLane:
    """One (approach lane, stop position) governed by a signal.

    Attributes:
        approach: lane id the stopping car is on.
        stop_s: arc length of the stop line on `approach` [m].
        governed: the junction connecting lane the signal references, or -1 when it references `approach`.
    """

    approach: int
    stop_s: float
    governed: int


def signal_lanes(
    carla_map: Any, lanes: list[Lane], index: dict[tuple[int, int, int], int], landmark: Any
) -> list[SignalLane]:
    """Lanes governed by one landmark (deduplicated by approach lane)."""
    out: dict[int, SignalLane] = {}
    pos = location_to_world(landmark.transform.location)[:2]
    for lo, hi in landmark.get_lane_validities():
        for lane_id in range(min(lo, hi), max(lo, hi) + 1):
            if lane_id == 0:
                continue
            wp = carla_map.get_waypoint_xodr(int(landmark.road_id), lane_id, float(landmark.s))
            if wp is None:
                continue
            j = index.get((int(wp.road_id), int(wp.section_id), int(wp.lane_id)))
            if j is None:
                continue
            lane = lanes[j]
            if lane.is_junction:
                for p in lane.predecessors:
                    if p not in out:
                        out[p] = SignalLane(p, stop_line_s(lanes[p]), j)
            elif j not in out:
                out[j] = SignalLane(j, _stop_s_on_lane(lanes, lane, pos), -1)
    return list(out.values())


def stop_line_s(lane: Lane) -> float:
    """Stop-line arc length at the end of an approach lane [m]."""
    return float(max(0.0, lane.length - STOP_LINE_BACKOFF))


def _stop_s_on_lane(lanes: list[Lane], lane: Lane, pos: np.ndarray) -> float:
    """Stop position for a signal placed beside an ordinary lane: the lane's end if it leads into a
    junction, else the signal's position projected onto the lane."""
    if lane.successors and all(lanes[k].is_junction for k in lane.successors):
        return stop_line_s(lane)
    d = np.linalg.norm(lane.points - pos, axis=1)
    return float(lane.s[int(np.argmin(d))])
