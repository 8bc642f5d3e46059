"""Non-driving lanes beside the driving lanes (sidewalks, shoulders, parking …) sampled from `carla.Map`.

`carla.Map.generate_waypoints` yields driving lanes only, so each driving lane is sampled
every `SIDE_SPACING` metres with ``get_waypoint_xodr`` and walked outwards (``get_right_lane`` /
``get_left_lane``) across non-driving lanes of the same driving direction until the next driving lane
or the road's edge. Each side lane becomes one strip: a centreline with per-point widths.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from carla_bridge.coords import location_to_world
from carla_bridge.maps.lanes import Lane

SIDE_SPACING = 2.0  # [m]
MAX_SIDE_LANES = 6


@dataclass(frozen=True)
class SideStrip:
    """One non-driving lane along a stretch of road.

    Attributes:
        kind: CARLA lane type name ('Sidewalk', 'Shoulder', 'Parking', 'Border', …).
        points: `[Q, 2]` world centreline [m] (Q ≥ 2).
        widths: `[Q]` lane width [m].
        key: (road, section, lane id) of the side lane.
    """

    kind: str
    points: np.ndarray
    widths: np.ndarray
    key: tuple[int, int, int]


def side_strips(carla_map: Any, lanes: list[Lane]) -> list[SideStrip]:
    """Every non-driving lane next to a driving lane (junction corners included), as strips (sorted by key)."""
    import carla

    samples: dict[tuple[int, int, int], list[tuple[float, np.ndarray, float, str]]] = defaultdict(list)
    for lane in lanes:
        if lane.length < 0.5:
            continue
        s0, s1 = lane.xodr_s
        lo, hi = min(s0, s1), max(s0, s1)
        n = max(2, int(np.ceil((hi - lo) / SIDE_SPACING)) + 1)
        for s in np.linspace(lo + 1e-3, hi - 1e-3, n):
            wp = carla_map.get_waypoint_xodr(lane.road_id, lane.lane_id, float(s))
            if wp is None:
                continue
            for step in ("get_right_lane", "get_left_lane"):
                cur = getattr(wp, step)()
                for _ in range(MAX_SIDE_LANES):
                    if cur is None or cur.lane_type == carla.LaneType.Driving or cur.lane_id * wp.lane_id <= 0:
                        break
                    key = (int(cur.road_id), int(cur.section_id), int(cur.lane_id))
                    xy = location_to_world(cur.transform.location)[:2]
                    samples[key].append((float(cur.s), xy, float(cur.lane_width), str(cur.lane_type)))
                    cur = getattr(cur, step)()
    out = []
    for key in sorted(samples):
        rows = sorted(samples[key], key=lambda r: r[0])
        # Deduplicate samples at the same s (two driving lanes walk onto the same side lane).
        pts, widths, kind, last = [], [], rows[0][3], -np.inf
        for s, xy, w, _ in rows:
            if s - last > 0.25:
                pts.append(xy)
                widths.append(w)
                last = s
        if len(pts) >= 2 and max(widths) > 0.05:
            out.append(SideStrip(kind, np.array(pts), np.array(widths), key))
    return out
