"""Write a town as a nuScenes map expansion (`maps/expansion/<location>.json`, version 1.3) and its
basemap PNG (`maps/<token>.png`, 0.1 m/px semantic prior), in the dataset's global frame.

Layers (what `NuScenesMap` reads):
- `drivable_area`: the town's drivable surface (one record, one polygon per connected part).
- `road_segment`: one per OpenDRIVE road outside junctions (union of its lanes) and one per junction
  (`is_intersection`).
- `lane` / `lane_connector`: driving lanes outside / inside junctions, polygons from the centreline
  ± half the lane width; centrelines as **arcline paths** (`arcline_path_3`, one circular arc per
  ≈2 m of centreline, exact at the sample points) and `connectivity` from the lane graph.
- `ped_crossing` (crosswalks), `walkway` (sidewalks), `stop_line` (at traffic-light heads: type
  TRAFFIC_LIGHT, linked to the `traffic_light` records; at stop signs: STOP_SIGN), `road_divider`
  (the centre line of two-way roads), `lane_divider` (boundaries between same-direction lanes),
  `traffic_light` (a short line at each head's pole). `road_block` and `carpark_area` stay empty.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from carla_bridge.recorder.devkit_maps import canvas_edge, location_for_town, town_offset
from carla_bridge.recorder.tables import make_token
from occupancy.atomic import atomic_path, write_json_atomic

MAP_VERSION = "1.3"
BASEMAP_RESOLUTION = 0.1  # [m/px], what `NuScenes(map_resolution=0.1)` assumes
ARC_SPACING = 2.0  # [m] centreline spacing of the arcline paths
SIMPLIFY_TOLERANCE = 0.05  # [m] polygon simplification


@dataclass(frozen=True)
class MapInfo:
    """How a town sits in a dataset.

    Attributes:
        town: town name.
        location: nuScenes log location (`carla-town01`).
        offset: `(ox, oy)` world → global translation [m].
        canvas_edge: `(width, height)` [m] of the global-frame canvas.
        map_token: token of the `map` table record (basemap `maps/<token>.png`).
    """

    town: str
    location: str
    offset: tuple[float, float]
    canvas_edge: tuple[float, float]
    map_token: str

    @property
    def basemap_filename(self) -> str:
        return f"maps/{self.map_token}.png"

    def map_record(self) -> dict:
        """The map-table record (log tokens filled in when the tables are merged)."""
        return {
            "token": self.map_token,
            "location": self.location,
            "category": "semantic_prior",
            "filename": self.basemap_filename,
        }

    def to_dict(self) -> dict:
        return {
            "town": self.town,
            "location": self.location,
            "offset": list(self.offset),
            "canvas_edge": list(self.canvas_edge),
            "map_token": self.map_token,
        }

    @classmethod
    def from_dict(cls, d: dict) -> MapInfo:
        return cls(d["town"], d["location"], tuple(d["offset"]), tuple(d["canvas_edge"]), d["map_token"])  # type: ignore[arg-type]


def town_bounds(town_map: object) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) [m] of a town's lanes and static geometry, world frame."""
    pts = np.concatenate([lane.points for lane in town_map.lanes], axis=0)
    xmin, ymin = pts.min(0)
    xmax, ymax = pts.max(0)
    static = getattr(town_map, "static", None)
    for name in ("drivable", "sidewalk"):
        geom = getattr(static, name, None)
        if geom is not None and not geom.is_empty:
            b = geom.bounds
            xmin, ymin, xmax, ymax = min(xmin, b[0]), min(ymin, b[1]), max(xmax, b[2]), max(ymax, b[3])
    return float(xmin), float(ymin), float(xmax), float(ymax)


def map_info(town_map: object) -> MapInfo:
    """Location, offset, canvas and map token of a town (deterministic in its geometry)."""
    bounds = town_bounds(town_map)
    offset = town_offset(bounds)
    location = location_for_town(town_map.name)
    return MapInfo(town_map.name, location, offset, canvas_edge(bounds, offset), make_token("map", location))


def _polygons(geom: BaseGeometry | dict | list | None) -> list[Polygon]:
    if isinstance(geom, dict):
        geom = list(geom.values())
    if isinstance(geom, (list, tuple)):
        return [p for g in geom for p in _polygons(g)]
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon) and not g.is_empty]


def _lines(geom: object) -> list[LineString]:
    if geom is None:
        return []
    if isinstance(geom, (list, tuple)):
        return [g for item in geom for g in _lines(item)]
    if isinstance(geom, LineString):
        return [] if geom.is_empty else [geom]
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, LineString) and not g.is_empty]


def _tangent_heading(pts: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """`[P]` headings of the polyline itself (central differences; one-sided at the ends), falling back
    to `yaw` where consecutive points coincide."""
    d = np.empty_like(pts)
    d[1:-1] = pts[2:] - pts[:-2]
    d[0] = pts[1] - pts[0]
    d[-1] = pts[-1] - pts[-2]
    out = np.arctan2(d[:, 1], d[:, 0])
    degenerate = np.linalg.norm(d, axis=1) < 1e-6
    out[degenerate] = yaw[degenerate]
    return out


def arcline_paths(points: np.ndarray, yaw: np.ndarray, spacing: float = ARC_SPACING) -> list[dict]:
    """A centreline `[P, 2]` (with headings `[P]`) as nuScenes arcline paths.

    Headings come from the polyline itself (central differences). Points are kept every
    ≈`spacing` metres (the last one always); between kept points i and j a
    circular arc turning by Δ = yaw_j − yaw_i passes exactly through both (start heading = chord
    direction − Δ/2), written as shape `LSL`/`RSR` with all its length in the first segment; a
    straight piece is `LSL` with its length in the middle (`S`) segment.
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        raise ValueError("a lane centreline needs at least 2 points")
    yaw = _tangent_heading(pts, np.asarray(yaw, dtype=np.float64))
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    keep = [0]
    for i in range(1, len(pts) - 1):
        if s[i] - s[keep[-1]] >= spacing - 1e-9:
            keep.append(i)
    if s[-1] - s[keep[-1]] < 0.2 and len(keep) > 1:
        keep[-1] = len(pts) - 1
    else:
        keep.append(len(pts) - 1)
    paths = []
    for i, j in itertools.pairwise(keep):
        d = pts[j] - pts[i]
        chord = float(np.hypot(*d))
        if chord < 1e-6:
            continue
        phi = math.atan2(d[1], d[0])
        delta = math.remainder(float(yaw[j] - yaw[i]), 2 * math.pi)
        end = [float(pts[j, 0]), float(pts[j, 1]), math.remainder(phi + delta / 2, 2 * math.pi)]
        if abs(delta) < 1e-3 or abs(delta) > math.pi / 2:
            paths.append(
                {
                    "start_pose": [float(pts[i, 0]), float(pts[i, 1]), phi],
                    "end_pose": [end[0], end[1], phi],
                    "shape": "LSL",
                    "radius": 999.0,
                    "segment_length": [0.0, chord, 0.0],
                }
            )
            continue
        radius = chord / (2.0 * math.sin(abs(delta) / 2.0))
        paths.append(
            {
                "start_pose": [float(pts[i, 0]), float(pts[i, 1]), math.remainder(phi - delta / 2, 2 * math.pi)],
                "end_pose": end,
                "shape": "LSL" if delta > 0 else "RSR",
                "radius": float(radius),
                "segment_length": [float(radius * abs(delta)), 0.0, 0.0],
            }
        )
    return paths


def lane_polygon(points: np.ndarray, yaw: np.ndarray, width: float) -> Polygon:
    """Lane area: the centreline `[P, 2]` offset by ± width/2 along the normals of `yaw` `[P]`."""
    n = np.stack([-np.sin(yaw), np.cos(yaw)], axis=1)
    left = points + n * (width / 2.0)
    right = points - n * (width / 2.0)
    poly = Polygon(np.concatenate([left, right[::-1]], axis=0))
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
        parts = _polygons(poly)
        poly = max(parts, key=lambda p: p.area) if parts else Polygon()
    return poly


def boundary(points: np.ndarray, yaw: np.ndarray, offset: float) -> np.ndarray:
    """`[P, 2]` centreline shifted by `offset` [m] to the left (negative: right)."""
    n = np.stack([-np.sin(yaw), np.cos(yaw)], axis=1)
    return points + n * offset


class _Builder:
    """Accumulates geometric (node/line/polygon) and semantic records with deterministic tokens."""

    def __init__(self, location: str, offset: tuple[float, float]) -> None:
        self.location = location
        self.offset = np.asarray(offset, dtype=np.float64)
        self.layers: dict[str, list] = {
            k: []
            for k in (
                "node",
                "line",
                "polygon",
                "drivable_area",
                "road_segment",
                "road_block",
                "lane",
                "ped_crossing",
                "walkway",
                "stop_line",
                "carpark_area",
                "road_divider",
                "lane_divider",
                "traffic_light",
                "lane_connector",
            )
        }
        self.counter = 0

    def token(self, kind: str) -> str:
        self.counter += 1
        return make_token("map", self.location, kind, self.counter)

    def nodes(self, xy_world: np.ndarray) -> list[str]:
        toks = []
        for x, y in np.asarray(xy_world, dtype=np.float64) + self.offset:
            t = self.token("node")
            self.layers["node"].append({"token": t, "x": round(float(x), 3), "y": round(float(y), 3)})
            toks.append(t)
        return toks

    def polygon(self, poly: Polygon) -> str | None:
        poly = poly.simplify(SIMPLIFY_TOLERANCE, preserve_topology=True)
        if poly.is_empty or poly.area < 1e-3 or not isinstance(poly, Polygon):
            return None
        ext = np.asarray(poly.exterior.coords)[:-1]
        if len(ext) < 3:
            return None
        holes = [{"node_tokens": self.nodes(np.asarray(h.coords)[:-1])} for h in poly.interiors if len(h.coords) >= 4]
        t = self.token("polygon")
        self.layers["polygon"].append({"token": t, "exterior_node_tokens": self.nodes(ext), "holes": holes})
        return t

    def line(self, xy_world: np.ndarray) -> str:
        t = self.token("line")
        self.layers["line"].append({"token": t, "node_tokens": self.nodes(xy_world)})
        return t


def build_map_expansion(town_map: object, info: MapInfo) -> dict:
    """The map expansion JSON object of a town (global frame = world + `info.offset`)."""
    b = _Builder(info.location, info.offset)
    L = b.layers
    static = getattr(town_map, "static", None)

    # drivable area
    da_polys = [t for t in (b.polygon(p) for p in _polygons(getattr(static, "drivable", None))) if t]
    da_token = b.token("drivable_area")
    L["drivable_area"].append({"token": da_token, "polygon_tokens": da_polys})

    # lanes / lane connectors
    lane_tokens: dict[int, str] = {}
    lane_polys: dict[int, Polygon] = {}
    arclines: dict[str, list[dict]] = {}
    for lane in town_map.lanes:
        if len(lane.points) < 2:
            continue
        poly = lane_polygon(lane.points, lane.yaw, lane.width)
        ptok = b.polygon(poly)
        if ptok is None:
            continue
        tok = b.token("lane")
        lane_tokens[lane.id] = tok
        lane_polys[lane.id] = poly
        arclines[tok] = arcline_paths(lane.points + info.offset, lane.yaw)
        if lane.is_junction:
            L["lane_connector"].append({"token": tok, "polygon_token": ptok})
        else:
            w = lane.width / 2.0
            start = boundary(lane.points[:1], lane.yaw[:1], w), boundary(lane.points[:1], lane.yaw[:1], -w)
            end = boundary(lane.points[-1:], lane.yaw[-1:], w), boundary(lane.points[-1:], lane.yaw[-1:], -w)
            L["lane"].append(
                {
                    "token": tok,
                    "polygon_token": ptok,
                    "lane_type": "CAR",
                    "from_edge_line_token": b.line(np.concatenate(start)),
                    "to_edge_line_token": b.line(np.concatenate(end)),
                    "left_lane_divider_segments": [],
                    "right_lane_divider_segments": [],
                }
            )
    connectivity = {
        lane_tokens[lane.id]: {
            "incoming": [lane_tokens[i] for i in lane.predecessors if i in lane_tokens],
            "outgoing": [lane_tokens[i] for i in lane.successors if i in lane_tokens],
        }
        for lane in town_map.lanes
        if lane.id in lane_tokens
    }

    # road segments: one per road outside junctions, one per junction
    groups: dict[tuple[str, int], list[Polygon]] = {}
    for lane in town_map.lanes:
        if lane.id in lane_polys:
            key = ("junction", lane.junction_id) if lane.is_junction else ("road", lane.road_id)
            groups.setdefault(key, []).append(lane_polys[lane.id].buffer(0.05))
    seg_of_road: dict[int, str] = {}
    for (kind, key), polys in sorted(groups.items()):
        union = shapely.union_all(polys)
        for part in _polygons(union):
            ptok = b.polygon(part)
            if ptok is None:
                continue
            tok = b.token("road_segment")
            L["road_segment"].append(
                {
                    "token": tok,
                    "polygon_token": ptok,
                    "is_intersection": kind == "junction",
                    "drivable_area_token": da_token,
                }
            )
            if kind == "road":
                seg_of_road.setdefault(key, tok)

    # crossings and walkways
    crossing_polys = _polygons(getattr(static, "crosswalks", None))
    for poly in crossing_polys:
        ptok = b.polygon(poly)
        if ptok:
            L["ped_crossing"].append(
                {"token": b.token("ped_crossing"), "polygon_token": ptok, "road_segment_token": ""}
            )
    for poly in _polygons(getattr(static, "sidewalk", None)):
        ptok = b.polygon(poly)
        if ptok:
            L["walkway"].append({"token": b.token("walkway"), "polygon_token": ptok})

    # dividers
    lane_records = {rec["token"]: rec for rec in L["lane"]}
    lanes_by_section: dict[tuple[int, int], set[int]] = {}
    for lane in town_map.lanes:
        lanes_by_section.setdefault((lane.road_id, lane.section_id), set()).add(lane.lane_id)
    for lane in town_map.lanes:
        if lane.is_junction or lane.id not in lane_tokens:
            continue
        left = boundary(lane.points, lane.yaw, lane.width / 2.0)
        if lane.lane_id == -1 and 1 in lanes_by_section[(lane.road_id, lane.section_id)]:
            L["road_divider"].append(
                {
                    "token": b.token("road_divider"),
                    "line_token": b.line(left),
                    "road_segment_token": seg_of_road.get(lane.road_id, ""),
                }
            )
        elif abs(lane.lane_id) > 1:
            ltok = b.line(left)
            node_tokens = L["line"][-1]["node_tokens"]
            marking = str(getattr(lane, "left_marking", "NONE")).lower()
            seg_type = (
                "SINGLE_SOLID_WHITE"
                if "solid" in marking
                else ("DOUBLE_DASHED_WHITE" if "broken" in marking else "NIL")
            )
            segs = [{"node_token": t, "segment_type": seg_type} for t in node_tokens]
            L["lane_divider"].append(
                {"token": b.token("lane_divider"), "line_token": ltok, "lane_divider_segments": segs}
            )
            lane_records[lane_tokens[lane.id]]["left_lane_divider_segments"] = segs

    # traffic lights and stop lines
    lanes_by_id = {lane.id: lane for lane in town_map.lanes}

    def stop_polygon(xy: np.ndarray, lane_id: int) -> Polygon:
        lane = lanes_by_id.get(lane_id)
        if lane is None:
            yaw, width = 0.0, 3.5
        else:
            i = int(np.argmin(np.linalg.norm(lane.points - xy, axis=1)))
            yaw, width = float(lane.yaw[i]), float(lane.width)
        c, s_ = math.cos(yaw), math.sin(yaw)
        local = np.array([[-0.25, -width / 2], [0.25, -width / 2], [0.25, width / 2], [-0.25, width / 2]])
        return Polygon(xy + local @ np.array([[c, s_], [-s_, c]]))

    for group in getattr(town_map, "traffic_lights", []) or []:
        for head in group.heads:
            pole = np.asarray(head.pole_xy, dtype=np.float64)
            d = np.array([math.cos(head.yaw), math.sin(head.yaw)]) * 0.3
            tl_tok = b.token("traffic_light")
            px, py = pole + info.offset
            L["traffic_light"].append(
                {
                    "token": tl_tok,
                    "line_token": b.line(np.stack([pole - d, pole + d])),
                    "traffic_light_type": "VERTICAL",
                    "from_road_block_token": "",
                    "items": [],
                    "pose": {"tx": float(px), "ty": float(py), "tz": 5.0, "rx": 0.0, "ry": 0.0, "rz": float(head.yaw)},
                }
            )
            stop_xy = np.asarray(head.stop_xy, dtype=np.float64).reshape(-1, 2)
            for lane_id, xy in zip(head.lane_ids, stop_xy):
                ptok = b.polygon(stop_polygon(xy, lane_id))
                if ptok:
                    L["stop_line"].append(
                        {
                            "token": b.token("stop_line"),
                            "polygon_token": ptok,
                            "stop_line_type": "TRAFFIC_LIGHT",
                            "ped_crossing_tokens": [],
                            "traffic_light_tokens": [tl_tok],
                            "road_block_token": "",
                        }
                    )
    for sign in getattr(town_map, "stop_signs", []) or []:
        ptok = b.polygon(stop_polygon(np.asarray(sign.stop_xy, dtype=np.float64), sign.lane_id))
        if ptok:
            L["stop_line"].append(
                {
                    "token": b.token("stop_line"),
                    "polygon_token": ptok,
                    "stop_line_type": "STOP_SIGN",
                    "ped_crossing_tokens": [],
                    "traffic_light_tokens": [],
                    "road_block_token": "",
                }
            )

    return {
        "version": MAP_VERSION,
        "canvas_edge": list(info.canvas_edge),
        **L,
        "arcline_path_3": arclines,
        "connectivity": connectivity,
    }


def render_basemap(town_map: object, info: MapInfo) -> np.ndarray:
    """`[H, W]` uint8 semantic prior at 0.1 m/px over the canvas: 255 on drivable area, shoulders
    and sidewalks, 0 elsewhere. Row 0 is the canvas top (y = height), as `nuscenes.utils.map_mask`."""
    from PIL import Image, ImageDraw

    w = round(info.canvas_edge[0] / BASEMAP_RESOLUTION)
    h = round(info.canvas_edge[1] / BASEMAP_RESOLUTION)
    off = np.asarray(info.offset)

    def pix(coords: np.ndarray) -> list[tuple[float, float]]:
        g = np.asarray(coords)[:, :2] + off
        return [(float(x / BASEMAP_RESOLUTION), float(h - y / BASEMAP_RESOLUTION)) for x, y in g]

    def layer(polys: list[Polygon]) -> np.ndarray:
        # one layer per geometry: a polygon's holes must not erase what another geometry covers
        img = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(img)
        for poly in polys:
            draw.polygon(pix(np.asarray(poly.exterior.coords)), fill=255)
            for hole in poly.interiors:
                draw.polygon(pix(np.asarray(hole.coords)), fill=0)
        return np.asarray(img)

    static = getattr(town_map, "static", None)
    drivable = _polygons(getattr(static, "drivable", None))
    sidewalk = _polygons(getattr(static, "sidewalk", None))
    shoulder = _polygons(getattr(static, "shoulder", None))
    if not drivable:  # no static scene: the lanes' union
        drivable = [lane_polygon(lane.points, lane.yaw, lane.width) for lane in town_map.lanes if len(lane.points) > 1]
    return np.maximum(np.maximum(layer(drivable), layer(sidewalk)), layer(shoulder))


def write_map(dataroot: str | Path, town_map: object) -> MapInfo:
    """Write `maps/expansion/<location>.json` and the basemap `maps/<token>.png` (each atomically);
    return the town's `MapInfo`."""
    from PIL import Image

    info = map_info(town_map)
    root = Path(dataroot)
    write_json_atomic(root / "maps" / "expansion" / f"{info.location}.json", build_map_expansion(town_map, info))
    with atomic_path(root / info.basemap_filename) as tmp:
        Image.fromarray(render_basemap(town_map, info)).save(tmp, format="PNG", compress_level=1)
    return info
