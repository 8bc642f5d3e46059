"""The static scene of a town: shapely geometry, a town-wide ground/marking raster, buildings and trees.

Built once per `TownMap` (``town.static``, cached):
- areas: `drivable` (driving lanes, junctions, parking), `sidewalk`, `shoulder` (shoulders, borders,
  medians, curbs …), `junctions` (per junction id, holes filled), `crosswalks`;
- lines: `lane_markings` (painted lines; broken ones as dashes) with `marking_types`, `stop_lines`
  (at every light head and stop sign); `sidewalk_paths` and `crosswalk_segments` for pedestrians;
- structures: `buildings` and `trees` as `Box3D` (seeded by the town's seed);
- rasters: Occ3D ground classes and marking codes on a `GROUND_RES` grid over the whole town, drawn
  with PIL's polygon fill (fast, C), so `raster(center_xy, yaw, grid)` for any BEV grid pose is one
  vectorized lookup (nearest cell).

A town without sidewalk lanes gets a sidewalk ring of `FALLBACK_SIDEWALK` metres around its roads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from PIL import Image, ImageDraw
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from carla_bridge.maps.crosswalks import map_crosswalks, procedural_crosswalks
from carla_bridge.maps.geometry import dashed, offset_line, segment_across, strip_polygon
from carla_bridge.maps.side_lanes import SideStrip, side_strips
from carla_bridge.maps.structures import Box3D, boxes_to_array, place_structures

if TYPE_CHECKING:  # pragma: no cover
    from carla_bridge.maps.town import TownMap

# Occ3D ground classes (DESIGN.md §3).
DRIVEABLE, OTHER_FLAT, SIDEWALK, TERRAIN = 11, 12, 13, 14
MANMADE, VEGETATION = 15, 16
# Marking codes of `marking_raster`.
MARK_NONE, MARK_LANE, MARK_CROSSWALK, MARK_STOP = 0, 1, 2, 3

GROUND_RES = 0.2  # [m] town raster cell
MARGIN = 40.0  # [m] raster extent beyond the outermost lane
FALLBACK_SIDEWALK = 3.0  # [m]
STOP_LINE_WIDTH = 0.4  # [m]
MARKING_WIDTH = 0.15  # [m]
DRIVABLE_SIDE = {"Parking", "Bidirectional"}
SIDEWALK_SIDE = {"Sidewalk"}
PAINTED = ("Solid", "Broken", "SolidSolid", "SolidBroken", "BrokenSolid", "BrokenBroken", "BottsDots")


@dataclass
class StaticScene:
    """Static geometry of one town (world frame). See the module docstring for the fields."""

    town: str
    drivable: BaseGeometry
    sidewalk: BaseGeometry
    shoulder: BaseGeometry
    junctions: dict[int, Polygon]
    crosswalks: list[Polygon]
    crosswalk_segments: np.ndarray
    lane_markings: list[LineString]
    marking_types: list[str]
    stop_lines: list[LineString]
    buildings: list[Box3D]
    trees: list[Box3D]
    sidewalk_paths: list[np.ndarray]
    ground: np.ndarray
    markings: np.ndarray
    origin: np.ndarray
    res: float
    build_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ rasters
    def _lookup(self, image: np.ndarray, xy: np.ndarray, outside: int) -> np.ndarray:
        ij = np.floor((xy - self.origin) / self.res).astype(np.int64)
        r, c = ij[..., 1], ij[..., 0]
        ok = (r >= 0) & (c >= 0) & (r < image.shape[0]) & (c < image.shape[1])
        out = np.full(xy.shape[:-1], outside, np.uint8)
        out[ok] = image[r[ok], c[ok]]
        return out

    def ground_at(self, xy: np.ndarray) -> np.ndarray:
        """`[..., 2]` world points → `[...]` uint8 Occ3D ground class (11 driveable, 12 other_flat, 13 sidewalk,
        14 terrain)."""
        return self._lookup(self.ground, np.asarray(xy, np.float64), TERRAIN)

    def marking_at(self, xy: np.ndarray) -> np.ndarray:
        """`[..., 2]` world points → `[...]` uint8 marking code (0 none, 1 lane line, 2 crosswalk stripe, 3 stop line)."""
        return self._lookup(self.markings, np.asarray(xy, np.float64), MARK_NONE)

    @staticmethod
    def grid_to_world(center_xy: Any, yaw: float, grid: Any) -> np.ndarray:
        """BEV cell centres of `grid` (an `occupancy.GridSpec`, ego frame) placed at pose (center_xy, yaw) →
        `[X, Y, 2]` world points."""
        lo, vox = np.asarray(grid.lower[:2], float), np.asarray(grid.voxel[:2], float)
        nx, ny = grid.shape[0], grid.shape[1]
        xs = lo[0] + (np.arange(nx) + 0.5) * vox[0]
        ys = lo[1] + (np.arange(ny) + 0.5) * vox[1]
        ex, ey = np.meshgrid(xs, ys, indexing="ij")
        c, s = np.cos(yaw), np.sin(yaw)
        cx, cy = float(center_xy[0]), float(center_xy[1])
        return np.stack([cx + c * ex - s * ey, cy + s * ex + c * ey], -1)

    def raster(self, center_xy: Any, yaw: float, grid: Any) -> np.ndarray:
        """Occ3D ground classes `[X, Y]` uint8 for the BEV grid `grid` whose frame sits at world pose
        (center_xy `[2]`, yaw [rad]) — e.g. the ego pose and `GridSpec.occ3d()`."""
        return self.ground_at(self.grid_to_world(center_xy, yaw, grid))

    def marking_raster(self, center_xy: Any, yaw: float, grid: Any) -> np.ndarray:
        """Marking codes `[X, Y]` uint8 for the BEV grid at that pose (for renderers)."""
        return self.marking_at(self.grid_to_world(center_xy, yaw, grid))

    def structures(self) -> tuple[np.ndarray, np.ndarray]:
        """(boxes `[S, 7]` (x, y, z_centre, yaw, l, w, h), labels `[S]` uint8: 15 manmade, 16 vegetation)."""
        boxes = boxes_to_array(self.buildings + self.trees)
        labels = np.array([MANMADE] * len(self.buildings) + [VEGETATION] * len(self.trees), np.uint8)
        return boxes, labels

    def structures_near(self, center_xy: Any, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """`structures()` whose centres lie within `radius` [m] (+ half their diagonal) of `center_xy`."""
        boxes, labels = self.structures()
        if len(boxes) == 0:
            return boxes, labels
        reach = radius + 0.5 * np.hypot(boxes[:, 4], boxes[:, 5])
        keep = np.linalg.norm(boxes[:, :2] - np.asarray(center_xy, float)[:2], axis=1) <= reach
        return boxes[keep], labels[keep]


def _parts(geom: BaseGeometry) -> list[Polygon]:
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon) and not g.is_empty]


class _Canvas:
    """A PIL 'L' image over the town; world → pixel with pixel centres on integer coordinates."""

    def __init__(self, origin: np.ndarray, res: float, shape: tuple[int, int], fill: int) -> None:
        self.origin, self.res = origin, res
        self.img = Image.new("L", (shape[1], shape[0]), fill)
        self.draw = ImageDraw.Draw(self.img)

    def _px(self, xy: np.ndarray) -> list[tuple[float, float]]:
        p = (np.asarray(xy, float) - self.origin) / self.res - 0.5
        return [tuple(q) for q in p]

    def polygon(self, geom: BaseGeometry, value: int, hole_value: int | None = None) -> None:
        for poly in _parts(geom):
            if len(poly.exterior.coords) >= 3:
                self.draw.polygon(self._px(np.asarray(poly.exterior.coords)[:, :2]), fill=value)
            if hole_value is not None:
                for ring in poly.interiors:
                    self.draw.polygon(self._px(np.asarray(ring.coords)[:, :2]), fill=hole_value)

    def line(self, line: LineString, value: int, width_m: float) -> None:
        w = max(1, round(width_m / self.res))
        self.draw.line(self._px(np.asarray(line.coords)[:, :2]), fill=value, width=w)

    def array(self) -> np.ndarray:
        return np.asarray(self.img, dtype=np.uint8).copy()


def _lane_markings(town: TownMap) -> tuple[list[LineString], list[str]]:
    """Painted lines of non-junction lanes: every lane's right edge, and the centre line once per road."""
    lines: list[LineString] = []
    types: list[str] = []
    keys = town.lane_key_to_id
    for ln in town.lanes:
        if ln.is_junction or ln.length < 1.0:
            continue
        half = 0.5 * (ln.widths if ln.widths is not None else ln.width)
        edges = [(ln.right_marking, -half)]
        # The centre line is reported by both directions: lane -1 draws it, a positive lane only if -1 is absent.
        if abs(ln.lane_id) == 1 and (ln.lane_id == -1 or (ln.road_id, ln.section_id, -1) not in keys):
            edges.append((ln.left_marking, half))
        for kind, off in edges:
            if kind not in PAINTED:
                continue
            pts = offset_line(ln.points, off)
            if kind.startswith("Broken") or kind == "BottsDots":
                pieces = dashed(pts)
            else:
                pieces = [LineString(pts)]
            lines.extend(pieces)
            types.extend([kind] * len(pieces))
    return lines, types


def _stop_lines(town: TownMap) -> list[LineString]:
    out = []
    for g in town.traffic_lights:
        for h in g.heads:
            for lane_id, s in zip(h.lane_ids, h.stop_s):
                xy, yaw = town.lanes[lane_id].interpolate(s)
                out.append(segment_across(xy[0], float(yaw[0]), town.lanes[lane_id].width))
    for sign in town.stop_signs:
        xy, yaw = town.lanes[sign.lane_id].interpolate(sign.stop_s)
        out.append(segment_across(xy[0], float(yaw[0]), town.lanes[sign.lane_id].width))
    return out


def _stripes(cw: Polygon, stripe: float = 0.5, gap: float = 0.5) -> list[Polygon]:
    """Zebra stripes (parallel to the traffic, spaced along the crossing) clipped to a crosswalk polygon."""
    rect = np.asarray(cw.minimum_rotated_rectangle.exterior.coords)[:4]
    e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
    long_, short = (e1, e2) if np.linalg.norm(e1) >= np.linalg.norm(e2) else (e2, e1)
    start = rect[0] if np.linalg.norm(e1) >= np.linalg.norm(e2) else rect[1]
    length = np.linalg.norm(long_)
    u = long_ / max(length, 1e-9)
    out = []
    for t in np.arange(0.25, length - stripe / 2, stripe + gap):
        a = start + u * t
        strip = Polygon([a, a + u * stripe, a + u * stripe + short, a + short])
        piece = strip.intersection(cw)
        if not piece.is_empty:
            out.append(piece)
    return out


def build_static_scene(town: TownMap) -> StaticScene:
    """Build the static scene of `town` (a few seconds for the largest CARLA towns)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def tick(name: str, since: list[float] = [t0]) -> None:  # noqa: B006 (a running clock)
        now = time.perf_counter()
        timings[name] = now - since[0]
        since[0] = now

    lane_polys = [strip_polygon(ln.points, ln.widths if ln.widths is not None else ln.width) for ln in town.lanes]
    strips: list[SideStrip] = side_strips(town.carla_map, town.lanes)
    strip_polys = [strip_polygon(st.points, st.widths) for st in strips]
    tick("polygons")
    junctions: dict[int, Polygon] = {}
    by_j: dict[int, list[Polygon]] = {}
    for ln, poly in zip(town.lanes, lane_polys):
        if ln.junction_id >= 0:
            by_j.setdefault(ln.junction_id, []).append(poly)
    for j, polys in sorted(by_j.items()):
        u = shapely.union_all(polys, grid_size=0.01).buffer(0.3).buffer(-0.3)
        filled = shapely.union_all([Polygon(p.exterior) for p in _parts(u)])
        junctions[j] = filled
    drivable = shapely.union_all(
        lane_polys + [p for st, p in zip(strips, strip_polys) if st.kind in DRIVABLE_SIDE] + list(junctions.values()),
        grid_size=0.01,
    )
    sidewalk = shapely.union_all([p for st, p in zip(strips, strip_polys) if st.kind in SIDEWALK_SIDE], grid_size=0.01)
    other = [p for st, p in zip(strips, strip_polys) if st.kind not in SIDEWALK_SIDE | DRIVABLE_SIDE]
    shoulder = shapely.union_all(other, grid_size=0.01).difference(drivable) if other else Polygon()
    sidewalk_paths = [st.points.copy() for st in strips if st.kind in SIDEWALK_SIDE]
    if sidewalk.is_empty:  # no sidewalk lanes in this map: a ring around the roads
        road = drivable.union(shoulder) if not shoulder.is_empty else drivable
        ring_outer = road.buffer(FALLBACK_SIDEWALK, join_style="mitre")
        sidewalk = ring_outer.difference(road)
        mid = road.buffer(FALLBACK_SIDEWALK / 2, join_style="mitre")
        sidewalk_paths = [np.asarray(r.coords)[:, :2] for p in _parts(mid) for r in [p.exterior, *p.interiors]]
    tick("union")
    crosswalks = map_crosswalks(town.carla_map)
    cw_segments: list[np.ndarray] = []
    if not crosswalks:
        crosswalks, cw_segments = procedural_crosswalks(town.lanes, drivable, sidewalk)
    else:
        for cw in crosswalks:  # the long axis of the map's polygon, extended into the sidewalks
            rect = np.asarray(cw.minimum_rotated_rectangle.exterior.coords)[:4]
            e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
            long_, short = (e1, e2) if np.linalg.norm(e1) >= np.linalg.norm(e2) else (e2, e1)
            c = rect.mean(0)
            u = long_ / max(np.linalg.norm(long_), 1e-9)
            half = np.linalg.norm(long_) / 2 + 1.0
            cw_segments.append(np.stack([c - u * half, c + u * half]))
            del short
    markings, marking_types = _lane_markings(town)
    stop_lines = _stop_lines(town)
    tick("markings")
    # Town rasters.
    allpts = np.concatenate([ln.points for ln in town.lanes])
    origin = allpts.min(0) - MARGIN
    extent = allpts.max(0) + MARGIN - origin
    shape = (int(np.ceil(extent[1] / GROUND_RES)), int(np.ceil(extent[0] / GROUND_RES)))
    g = _Canvas(origin, GROUND_RES, shape, TERRAIN)
    g.polygon(shoulder, OTHER_FLAT)
    g.polygon(sidewalk, SIDEWALK, hole_value=TERRAIN)
    for poly in lane_polys + [p for st, p in zip(strips, strip_polys) if st.kind in DRIVABLE_SIDE]:
        g.polygon(poly, DRIVEABLE)
    for poly in junctions.values():
        g.polygon(poly, DRIVEABLE)
    for cw in crosswalks:
        g.polygon(cw, DRIVEABLE)
    ground = g.array()
    m = _Canvas(origin, GROUND_RES, shape, MARK_NONE)
    for line in markings:
        m.line(line, MARK_LANE, MARKING_WIDTH)
    for cw in crosswalks:
        for stripe in _stripes(cw):
            m.polygon(stripe, MARK_CROSSWALK)
    for line in stop_lines:
        m.polygon(line.buffer(STOP_LINE_WIDTH / 2, cap_style="flat"), MARK_STOP)
    marks = m.array()
    tick("raster")
    buildings, trees = _structures(town, ground, origin)
    tick("structures")
    return StaticScene(
        town=town.name,
        drivable=drivable,
        sidewalk=sidewalk,
        shoulder=shoulder,
        junctions=junctions,
        crosswalks=crosswalks,
        crosswalk_segments=np.stack(cw_segments) if cw_segments else np.zeros((0, 2, 2)),
        lane_markings=markings,
        marking_types=marking_types,
        stop_lines=stop_lines,
        buildings=buildings,
        trees=trees,
        sidewalk_paths=sidewalk_paths,
        ground=ground,
        markings=marks,
        origin=origin,
        res=GROUND_RES,
        build_seconds=time.perf_counter() - t0,
        timings=timings,
    )


def _structures(town: TownMap, ground: np.ndarray, origin: np.ndarray) -> tuple[list[Box3D], list[Box3D]]:
    """Buildings and trees on a 1 m road mask derived from the ground raster."""
    f = int(round(1.0 / GROUND_RES))
    r, c = (ground.shape[0] // f) * f, (ground.shape[1] // f) * f
    road = (ground[:r, :c] != TERRAIN).reshape(r // f, f, c // f, f).any(axis=(1, 3))

    def ground_z(xy: np.ndarray) -> np.ndarray:
        lane, s, _ = town.project(xy)
        return np.array([np.interp(si, town.lanes[li].s, town.lanes[li].z) for li, si in zip(lane, s)])

    return place_structures(road, origin, f * GROUND_RES, ground_z, seed=town.seed)


__all__ = [
    "DRIVEABLE",
    "MANMADE",
    "MARK_CROSSWALK",
    "MARK_LANE",
    "MARK_NONE",
    "MARK_STOP",
    "OTHER_FLAT",
    "SIDEWALK",
    "TERRAIN",
    "VEGETATION",
    "Box3D",
    "MultiPolygon",
    "StaticScene",
    "build_static_scene",
]
