"""Crosswalks: the map's own (``carla.Map.get_crosswalks()``, present in Town04/Town06) or placed at
junction approaches that have sidewalks on both sides.

A procedural crosswalk lies just inside the junction (beyond the stop line, which is 1 m before the
junction entry), spans the drivable cross-section and is `CROSSWALK_WIDTH` wide. Each crosswalk has a
pedestrian segment from sidewalk to sidewalk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from shapely.geometry import LineString, Polygon

from carla_bridge.coords import location_to_world
from carla_bridge.maps.lanes import Lane

CROSSWALK_WIDTH = 3.0  # [m] along the road
CROSSWALK_INSET = 1.0  # [m] from the junction entry into the junction (centre of the band)
MAX_CROSSING = 30.0  # [m] longer cross-sections are open areas, not crossings
SIDEWALK_REACH = 4.0  # [m] a sidewalk must lie this close to each end of the crossing
MAX_EXTRA_WIDTH = 3.0  # [m] a crossing may exceed the road's driving width by this much (shoulders, flare)
SAMPLE = 0.1  # [m] cross-section sampling step on the ground raster
SIDEWALK_SEARCH_BACK = (0.0, 1.0, 2.0)  # [m] shifts of the sidewalk search back from the crossing line


def map_crosswalks(carla_map: Any) -> list[Polygon]:
    """Crosswalk polygons of the map itself (CARLA lists their vertices, each polygon closed by repeating its
    first vertex)."""
    polys: list[Polygon] = []
    cur: list[np.ndarray] = []
    for loc in carla_map.get_crosswalks():
        p = location_to_world(loc)[:2]
        if len(cur) >= 3 and np.linalg.norm(p - cur[0]) < 1e-3:
            poly = Polygon(cur)
            if poly.is_valid and poly.area > 0.5:
                polys.append(poly)
            cur = []
        else:
            cur.append(p)
    return polys


def _junction_mouths(lanes: list[Lane]) -> list[tuple[int, int, np.ndarray, float, float]]:
    """(junction id, road id, point at the junction entry, heading into the junction, road width there), one per
    road and junction; the width sums the road's lanes touching the junction (both directions)."""
    seen: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
    width: dict[tuple[int, int], dict[int, float]] = {}
    for ln in lanes:
        if not ln.is_junction:
            continue
        for p in ln.predecessors:
            a = lanes[p]
            if not a.is_junction:
                seen.setdefault((ln.junction_id, a.road_id), (a.points[-1], float(a.yaw[-1])))
                w = a.widths[-1] if a.widths is not None else a.width
                width.setdefault((ln.junction_id, a.road_id), {})[a.lane_id] = float(w)
        for k in ln.successors:
            b = lanes[k]
            if not b.is_junction:
                seen.setdefault((ln.junction_id, b.road_id), (b.points[0], float(b.yaw[0]) + np.pi))
                w = b.widths[0] if b.widths is not None else b.width
                width.setdefault((ln.junction_id, b.road_id), {})[b.lane_id] = float(w)
    return [(j, r, p, h, sum(width[(j, r)].values())) for (j, r), (p, h) in sorted(seen.items(), key=lambda kv: kv[0])]


def procedural_crosswalks(
    lanes: list[Lane], ground_at: Callable[[np.ndarray], np.ndarray], driveable: int, sidewalk: int
) -> tuple[list[Polygon], list[np.ndarray]]:
    """Crosswalks at junction mouths with sidewalks on both sides → (polygons, `[2, 2]` pedestrian segments).

    Args:
        lanes: the town's lanes.
        ground_at: `[M, 2]` world points → `[M]` ground class (the town's ground raster).
        driveable / sidewalk: the class values of drivable ground and sidewalks.
    """
    polys: list[Polygon] = []
    segs: list[np.ndarray] = []
    t = np.arange(-MAX_CROSSING, MAX_CROSSING + 1e-9, SAMPLE)
    k0 = len(t) // 2  # t = 0
    reach = round(SIDEWALK_REACH / SAMPLE)
    for _, _, p, heading, road_width in _junction_mouths(lanes):
        d = np.array([np.cos(heading), np.sin(heading)])
        n = np.array([-d[1], d[0]])
        c = p + CROSSWALK_INSET * d
        cls = ground_at(c + t[:, None] * n)
        if cls[k0] != driveable:
            continue
        off = np.flatnonzero(cls != driveable)
        lo = off[off < k0].max() + 1 if (off < k0).any() else 0
        hi = off[off > k0].min() - 1 if (off > k0).any() else len(t) - 1
        if lo == 0 or hi == len(t) - 1:
            continue  # no edge within reach: an open area, not a crossing
        if t[hi] - t[lo] > road_width + MAX_EXTRA_WIDTH:
            continue  # wider than the road: the line runs along the junction, not across the road
        # Sidewalks beyond both edges: on the crossing line or back towards the road (junction
        # corners often have none), up to 2 m back.
        ends = None
        for back in SIDEWALK_SEARCH_BACK:
            cb = ground_at(c - back * d + t[:, None] * n) if back else cls
            side_lo = np.flatnonzero(cb[max(0, lo - reach) : lo] == sidewalk)
            side_hi = np.flatnonzero(cb[hi + 1 : hi + 1 + reach] == sidewalk)
            if len(side_lo) and len(side_hi):
                t_lo, t_hi = t[max(0, lo - reach) + side_lo.max()], t[hi + 1 + side_hi.min()]
                ends = (c - back * d + (t_lo - SAMPLE) * n, c - back * d + (t_hi + SAMPLE) * n)
                break
        if ends is None:
            continue
        a, b = c + t[lo] * n, c + t[hi] * n
        band = LineString([a, b]).buffer(CROSSWALK_WIDTH / 2.0, cap_style="flat")
        if any(band.intersection(q).area > 0.5 * band.area for q in polys):
            continue  # the same mouth reached from another road id
        polys.append(band)
        segs.append(np.stack(ends))
    return polys, segs
