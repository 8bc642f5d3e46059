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
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry

from carla_bridge.maps.crosswalks import map_crosswalks, procedural_crosswalks
from carla_bridge.maps.geometry import dashed, offset_line, segment_across, strip_polygon
from carla_bridge.maps.side_lanes import SideStrip, side_strips
from carla_bridge.maps.structures import Box3D, boxes_to_array, place_structures
from occupancy.classes import GROUND_CLASSES, Occ3DClass

if TYPE_CHECKING:  # pragma: no cover
    from carla_bridge.maps.town import TownMap

# Occ3D classes of the static scene (DESIGN.md §3), short names for the rasterisers below.
DRIVEABLE, OTHER_FLAT, SIDEWALK, TERRAIN = GROUND_CLASSES
MANMADE, VEGETATION = Occ3DClass.MANMADE, Occ3DClass.VEGETATION
# Marking codes of `marking_raster`.
MARK_NONE, MARK_LANE, MARK_CROSSWALK, MARK_STOP = 0, 1, 2, 3

GROUND_RES = 0.2  # [m] town raster cell
MARGIN = 40.0  # [m] raster extent beyond the outermost lane
FALLBACK_SIDEWALK = 3.0  # [m]
CORNER_SIDEWALK = 3.0  # [m] width of the sidewalk band filled in around junction corners
STOP_LINE_WIDTH = 0.4  # [m]
MARKING_WIDTH = 0.15  # [m]
DRIVABLE_SIDE = {"Parking", "Bidirectional"}
SIDEWALK_SIDE = {"Sidewalk"}
PAINTED = ("Solid", "Broken", "SolidSolid", "SolidBroken", "BrokenSolid", "BrokenBroken", "BottsDots")


@dataclass
class StaticScene:
    """Static geometry of one town (world frame). See the module docstring for the fields; `parts` holds the
    polygons behind the lazily unioned `drivable`, `sidewalk` and `shoulder` areas."""

    town: str
    parts: dict[str, list[Polygon]]
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
    _unions: dict[str, BaseGeometry] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ areas (lazy unions)
    def _union(self, name: str) -> BaseGeometry:
        if name not in self._unions:
            parts = shapely.simplify(self.parts[name], 0.02)
            u = shapely.union_all(parts, grid_size=0.01) if len(parts) else Polygon()
            if name == "shoulder" and not u.is_empty:
                u = u.difference(self.drivable)
            self._unions[name] = u
        return self._unions[name]

    @property
    def drivable(self) -> BaseGeometry:
        """Union of driving lanes, junctions and parking/bidirectional lanes (shapely, built on first use)."""
        return self._union("drivable")

    @property
    def sidewalk(self) -> BaseGeometry:
        """Union of sidewalk lanes (or the fallback ring)."""
        return self._union("sidewalk")

    @property
    def shoulder(self) -> BaseGeometry:
        """Union of shoulders, borders, medians, curbs … minus the drivable area (Occ3D other_flat)."""
        return self._union("shoulder")

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
        """`[..., 2]` world points → `[...]` uint8 marking code (0 none, 1 lane line, 2 crosswalk stripe,
        3 stop line)."""
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
    start = rect[0]  # the rectangle is rect[0] + α e1 + β e2, α, β ∈ [0, 1]
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
    """Build the static scene of `town` (a few seconds for the largest CARLA towns; the shapely unions
    `drivable`/`sidewalk`/`shoulder` are computed on first access)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    clock = [t0]

    def tick(name: str) -> None:
        now = time.perf_counter()
        timings[name] = now - clock[0]
        clock[0] = now

    lane_polys = [strip_polygon(ln.points, ln.widths if ln.widths is not None else ln.width) for ln in town.lanes]
    strips: list[SideStrip] = side_strips(town.carla_map, town.lanes)
    strip_polys = [strip_polygon(st.points, st.widths) for st in strips]
    tick("polygons")
    junctions = _junction_polygons(town, lane_polys)
    parts = {
        "drivable": lane_polys + [p for st, p in zip(strips, strip_polys) if st.kind in DRIVABLE_SIDE],
        "sidewalk": [p for st, p in zip(strips, strip_polys) if st.kind in SIDEWALK_SIDE],
        "shoulder": [p for st, p in zip(strips, strip_polys) if st.kind not in SIDEWALK_SIDE | DRIVABLE_SIDE],
    }
    parts["drivable"] += list(junctions.values())
    corners = _corner_sidewalks(junctions, parts)
    parts["sidewalk"] += corners
    sidewalk_paths = [st.points.copy() for st in strips if st.kind in SIDEWALK_SIDE]
    if not parts["sidewalk"]:  # no sidewalk lanes in this map: a ring around the roads
        road = shapely.union_all(parts["drivable"] + parts["shoulder"], grid_size=0.01)
        parts["sidewalk"] = _parts(road.buffer(FALLBACK_SIDEWALK, join_style="mitre").difference(road))
        mid = road.buffer(FALLBACK_SIDEWALK / 2, join_style="mitre")
        sidewalk_paths = [np.asarray(r.coords)[:, :2] for p in _parts(mid) for r in [p.exterior, *p.interiors]]
    tick("junctions")
    markings, marking_types = _lane_markings(town)
    stop_lines = _stop_lines(town)
    tick("markings")
    # Town rasters: shoulders, then sidewalks, then everything drivable on top.
    allpts = np.concatenate([ln.points for ln in town.lanes])
    origin = allpts.min(0) - MARGIN
    extent = allpts.max(0) + MARGIN - origin
    shape = (int(np.ceil(extent[1] / GROUND_RES)), int(np.ceil(extent[0] / GROUND_RES)))
    g = _Canvas(origin, GROUND_RES, shape, TERRAIN)
    for poly in parts["shoulder"]:
        g.polygon(poly, OTHER_FLAT)
    for poly in parts["sidewalk"]:
        g.polygon(poly, SIDEWALK, hole_value=TERRAIN)
    for poly in parts["drivable"]:
        g.polygon(poly, DRIVEABLE)
    ground = g.array()
    tick("raster")
    crosswalks = map_crosswalks(town.carla_map)
    if crosswalks:
        cw_segments = [_long_axis(cw) for cw in crosswalks]
    else:
        origin_, res_ = origin.copy(), GROUND_RES

        def ground_at(xy: np.ndarray) -> np.ndarray:
            ij = np.floor((xy - origin_) / res_).astype(np.int64)
            ok = (ij[:, 1] >= 0) & (ij[:, 0] >= 0) & (ij[:, 1] < ground.shape[0]) & (ij[:, 0] < ground.shape[1])
            out = np.full(len(xy), TERRAIN, np.uint8)
            out[ok] = ground[ij[ok, 1], ij[ok, 0]]
            return out

        crosswalks, cw_segments = procedural_crosswalks(town.lanes, ground_at, DRIVEABLE, SIDEWALK)
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
    tick("crosswalks+markings raster")
    buildings, trees = _structures(town, ground, origin)
    tick("structures")
    return StaticScene(
        town=town.name,
        parts=parts,
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


def _junction_polygons(town: TownMap, lane_polys: list[Polygon]) -> dict[int, Polygon]:
    """Per junction id: the union of its connecting lanes, small gaps closed and holes filled."""
    by_j: dict[int, list[Polygon]] = {}
    for ln, poly in zip(town.lanes, lane_polys):
        if ln.junction_id >= 0:
            by_j.setdefault(ln.junction_id, []).append(poly)
    out: dict[int, Polygon] = {}
    for j, polys in sorted(by_j.items()):
        u = shapely.union_all(shapely.simplify(polys, 0.05)).buffer(0.3, quad_segs=2).buffer(-0.3, quad_segs=2)
        out[j] = shapely.union_all([Polygon(p.exterior) for p in _parts(u)])
    return out


def _corner_sidewalks(junctions: dict[int, Polygon], parts: dict[str, list[Polygon]]) -> list[Polygon]:
    """Sidewalk around junction corners: a `CORNER_SIDEWALK` band around each junction, minus the road, kept
    where it touches the sidewalks of the roads meeting there (CARLA junctions rarely carry sidewalk lanes)."""
    if not parts["sidewalk"]:
        return []
    sides = np.array(parts["sidewalk"], dtype=object)
    roads = np.array(parts["drivable"] + parts["shoulder"], dtype=object)
    side_tree, road_tree = shapely.STRtree(sides), shapely.STRtree(roads)
    out: list[Polygon] = []
    for poly in junctions.values():
        band = poly.buffer(CORNER_SIDEWALK, quad_segs=4)
        near_side = side_tree.query(band)
        if len(near_side) == 0:
            continue
        ring = band.difference(shapely.union_all(shapely.simplify(roads[road_tree.query(band)], 0.02)))
        touch = shapely.union_all(sides[near_side]).buffer(0.3)
        out.extend(p for p in _parts(ring) if p.area > 1.0 and p.intersects(touch))
    return out


def _long_axis(cw: Polygon) -> np.ndarray:
    """`[2, 2]` pedestrian segment along a crosswalk polygon's long axis, 1 m beyond each end."""
    rect = np.asarray(cw.minimum_rotated_rectangle.exterior.coords)[:4]
    e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
    long_ = e1 if np.linalg.norm(e1) >= np.linalg.norm(e2) else e2
    u = long_ / max(np.linalg.norm(long_), 1e-9)
    half = np.linalg.norm(long_) / 2 + 1.0
    c = rect.mean(0)
    return np.stack([c - u * half, c + u * half])


def _structures(town: TownMap, ground: np.ndarray, origin: np.ndarray) -> tuple[list[Box3D], list[Box3D]]:
    """Buildings and trees on a 1 m road mask derived from the ground raster."""
    f = round(1.0 / GROUND_RES)
    r, c = (ground.shape[0] // f) * f, (ground.shape[1] // f) * f
    road = (ground[:r, :c] != TERRAIN).reshape(r // f, f, c // f, f).any(axis=(1, 3))

    return place_structures(road, origin, f * GROUND_RES, town.ground_z, seed=town.seed)


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
    "StaticScene",
    "build_static_scene",
]
