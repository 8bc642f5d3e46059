"""Crosswalks: the map's own (``carla.Map.get_crosswalks()``, present in Town04/Town06) or placed at
junction approaches that have sidewalks on both sides.

A procedural crosswalk lies just inside the junction (beyond the stop line, which is 1 m before the
junction entry), spans the drivable cross-section and is `CROSSWALK_WIDTH` wide. Each crosswalk has a
pedestrian segment from sidewalk to sidewalk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from carla_bridge.coords import location_to_world
from carla_bridge.maps.lanes import Lane

CROSSWALK_WIDTH = 3.0  # [m] along the road
CROSSWALK_INSET = 2.0  # [m] from the junction entry into the junction (centre of the band)
MAX_CROSSING = 30.0  # [m] longer cross-sections are open areas, not crossings
SIDEWALK_REACH = 4.0  # [m] a sidewalk must lie this close beyond each end of the crossing


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


def _junction_mouths(lanes: list[Lane]) -> list[tuple[int, int, np.ndarray, float]]:
    """(junction id, road id, point at the junction entry, heading into the junction), one per road and junction."""
    seen: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
    for ln in lanes:
        if not ln.is_junction:
            continue
        for p in ln.predecessors:
            a = lanes[p]
            if not a.is_junction:
                seen.setdefault((ln.junction_id, a.road_id), (a.points[-1], float(a.yaw[-1])))
        for k in ln.successors:
            b = lanes[k]
            if not b.is_junction:
                seen.setdefault((ln.junction_id, b.road_id), (b.points[0], float(b.yaw[0]) + np.pi))
    return [(j, r, p, h) for (j, r), (p, h) in sorted(seen.items(), key=lambda kv: kv[0])]


def _reach_sidewalk(end: np.ndarray, u: np.ndarray, sidewalk: BaseGeometry) -> np.ndarray | None:
    """The point 0.5 m inside the first sidewalk met going from `end` along `u` (within SIDEWALK_REACH), or None."""
    hit = LineString([end, end + SIDEWALK_REACH * u]).intersection(sidewalk)
    if hit.is_empty:
        return None
    d = float(np.min((shapely.get_coordinates(hit) - end) @ u))
    return end + u * (max(d, 0.0) + 0.5)


def procedural_crosswalks(
    lanes: list[Lane], drivable: BaseGeometry, sidewalk: BaseGeometry
) -> tuple[list[Polygon], list[np.ndarray]]:
    """Crosswalks at junction mouths with sidewalks on both sides → (polygons, `[2, 2]` pedestrian segments)."""
    polys: list[Polygon] = []
    segs: list[np.ndarray] = []
    if sidewalk.is_empty:
        return polys, segs
    shapely.prepare(drivable)
    for _, _, p, heading in _junction_mouths(lanes):
        d = np.array([np.cos(heading), np.sin(heading)])
        n = np.array([-d[1], d[0]])
        c = p + CROSSWALK_INSET * d
        across = LineString([c - MAX_CROSSING * n, c + MAX_CROSSING * n])
        cut = across.intersection(drivable)
        pieces = [g for g in getattr(cut, "geoms", [cut]) if isinstance(g, LineString) and not g.is_empty]
        if not pieces:
            continue
        piece = min(pieces, key=lambda g: g.distance(Point(c)))
        if piece.length > MAX_CROSSING or piece.distance(Point(c)) > 0.5:
            continue
        a, b = np.array(piece.coords[0]), np.array(piece.coords[-1])
        u = (b - a) / max(np.linalg.norm(b - a), 1e-9)
        ea, eb = _reach_sidewalk(a, -u, sidewalk), _reach_sidewalk(b, u, sidewalk)
        if ea is None or eb is None:
            continue
        band = LineString([a, b]).buffer(CROSSWALK_WIDTH / 2.0, cap_style="flat")
        if any(band.intersects(q) and band.intersection(q).area > 0.5 * band.area for q in polys):
            continue  # the same mouth reached from another road id
        polys.append(band)
        segs.append(np.stack([ea, eb]))
    return polys, segs
