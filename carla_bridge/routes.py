"""CARLA leaderboard routes: parsing both XML formats into world-frame `Route`s.

Leaderboard 1.0::

    <routes><route id="0" town="Town01"><waypoint x y z pitch roll yaw/>…</route></routes>

Leaderboard 2.0::

    <routes><route id="0" town="Town12"><waypoints><position x y z/>…</waypoints>…</route></routes>

Coordinates are CARLA's (left-handed, degrees); `carla_bridge.coords` converts them. Planning a
route on a town's lane graph lives in `carla_bridge.route_planner` (`plan_route`, re-exported here).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carla_bridge.coords import carla_points_to_world, carla_yaw_deg_to_world_rad
from carla_bridge.route_planner import RoutePlan, plan_route, plan_route_for

ROUTES_DIR = Path(__file__).resolve().parent / "data" / "routes"

__all__ = ["ROUTES_DIR", "Route", "RoutePlan", "parse_routes", "plan_route", "plan_route_for", "resolve_routes_file"]


@dataclass(frozen=True)
class Route:
    """One leaderboard route in the world frame.

    Attributes:
        id: the route's id attribute.
        town: town name (resolve with `carla_bridge.maps.load_town`).
        waypoints_world: `[W, 3]` (x, y, z) world-frame waypoints [m].
        yaw: `[W]` world yaw [rad] of each waypoint (NaN where the file gives none, e.g. format 2.0).
        format: "1.0" or "2.0".
        source: the file it was read from (None if built in code).
    """

    id: str
    town: str
    waypoints_world: np.ndarray
    yaw: np.ndarray
    format: str = "1.0"
    source: Path | None = None

    def __post_init__(self) -> None:
        w = np.asarray(self.waypoints_world)
        if w.ndim != 2 or w.shape[1] != 3 or len(w) < 1:
            raise ValueError(f"Route {self.id}: waypoints_world must have shape [W>=1, 3], got {list(w.shape)}")
        if not np.isfinite(w).all():
            raise ValueError(f"Route {self.id}: waypoints_world contains NaN or inf")
        if np.shape(self.yaw) != (len(w),):
            raise ValueError(f"Route {self.id}: yaw must have shape [{len(w)}], got {list(np.shape(self.yaw))}")

    @property
    def num_waypoints(self) -> int:
        return len(self.waypoints_world)


def resolve_routes_file(path_or_name: str | Path) -> Path:
    """A path, or the name of a vendored routes file (``routes_devtest.xml`` / ``routes_devtest``)."""
    p = Path(path_or_name).expanduser()
    if p.is_file():
        return p
    for cand in (ROUTES_DIR / str(path_or_name), ROUTES_DIR / f"{path_or_name}.xml"):
        if cand.is_file():
            return cand
    vendored = ", ".join(sorted(x.name for x in ROUTES_DIR.glob("*.xml")))
    raise FileNotFoundError(f"routes file not found: {path_or_name} (vendored: {vendored})")


def _float(el: ET.Element, key: str, where: str, default: float | None = None) -> float:
    v = el.get(key)
    if v is None:
        if default is not None:
            return default
        raise ValueError(f"{where}: <{el.tag}> lacks attribute {key!r}")
    try:
        f = float(v)
    except ValueError:
        raise ValueError(f"{where}: <{el.tag}> attribute {key}={v!r} is not a number") from None
    if not np.isfinite(f):
        raise ValueError(f"{where}: <{el.tag}> attribute {key}={v!r} is not finite")
    return f


def _parse_route(el: ET.Element, path: Path) -> Route:
    rid = el.get("id")
    town = el.get("town") or el.get("map")
    where = f"{path} route id={rid}"
    if rid is None:
        raise ValueError(f"{path}: a <route> lacks the 'id' attribute")
    if not town:
        raise ValueError(f"{where}: <route> lacks the 'town' attribute")
    old = el.findall("waypoint")
    container = el.find("waypoints")
    new = container.findall("position") if container is not None else []
    if old and new:
        raise ValueError(f"{where}: mixes <waypoint> (format 1.0) and <waypoints><position> (format 2.0)")
    if not old and not new:
        raise ValueError(f"{where}: no <waypoint> or <waypoints><position> elements (empty route)")
    els, fmt = (old, "1.0") if old else (new, "2.0")
    xyz = np.array([[_float(e, k, where) for k in ("x", "y", "z")] for e in els], dtype=np.float64)
    if fmt == "1.0":
        yaw = np.array([carla_yaw_deg_to_world_rad(_float(e, "yaw", where, default=np.nan)) for e in els])
    else:
        yaw = np.full(len(els), np.nan)
    return Route(str(rid), str(town), carla_points_to_world(xyz), np.asarray(yaw, np.float64), fmt, path)


def parse_routes(path: str | Path) -> list[Route]:
    """Parse a leaderboard 1.0 or 2.0 routes XML file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not XML, no <route>, a route without id/town/waypoints, or a non-numeric coordinate.
    """
    p = resolve_routes_file(path)
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as e:
        raise ValueError(f"malformed routes file {p}: not valid XML ({e})") from e
    except OSError as e:
        raise ValueError(f"cannot read routes file {p}: {e}") from e
    routes = [_parse_route(el, p) for el in root.iter("route")]
    if not routes:
        raise ValueError(f"routes file {p} contains no <route> elements")
    ids = [r.id for r in routes]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"routes file {p}: duplicate route ids {dup}")
    return routes
