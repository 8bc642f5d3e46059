"""CARLA leaderboard routes: parsing both XML formats into world-frame `Route`s.

Leaderboard 1.0::

    <routes><route id="0" town="Town01"><waypoint x y z pitch roll yaw/>…</route></routes>

Leaderboard 2.0::

    <routes><route id="0" town="Town12">
      <weathers><weather route_percentage="0" cloudiness="5.0" …/>…</weathers>
      <waypoints><position x y z/>…</waypoints>
      <scenarios>
        <scenario name="Accident_1" type="Accident">
          <trigger_point x y z yaw/><distance value="120"/><frequency from="20" to="100"/>…
        </scenario>
      </scenarios>
    </route></routes>

Each `<scenario>` is read as the leaderboard's `RouteParser.parse_routes_file` reads it: its name,
type, first `<trigger_point>` (a transform), `<other_actor>` elements, and every other child element
as a parameter (tag → its attributes, e.g. ``distance → {"value": "120"}``). `<weathers>` become
`Weather`s sorted by route percentage, each on the leaderboard's base weather (sun altitude 70°,
cloudiness 50) with the given attributes of `carla.WeatherParameters`; unknown attributes are
reported and ignored, as `RouteParser.parse_weather` does. A route without `<weathers>` gets the base
weather at 0 %.

Coordinates are CARLA's (left-handed, degrees); `carla_bridge.coords` converts them. Planning a
route on a town's lane graph lives in `carla_bridge.route_planner` (`plan_route`, re-exported here);
`write_routes` writes leaderboard-2.0 files (the route generator's output).
"""

from __future__ import annotations

import os
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from carla_bridge.coords import (
    carla_points_to_world,
    carla_yaw_deg_to_world_rad,
    world_points_to_carla,
    world_yaw_rad_to_carla_deg,
)
from carla_bridge.route_planner import RoutePlan, plan_route, plan_route_for

ROUTES_DIR = Path(__file__).resolve().parent / "data" / "routes"

__all__ = [
    "ROUTES_DIR",
    "Route",
    "RoutePlan",
    "ScenarioConfig",
    "Weather",
    "parse_routes",
    "plan_route",
    "plan_route_for",
    "resolve_routes_file",
    "with_maps",
    "write_routes",
]


@dataclass(frozen=True)
class ScenarioConfig:
    """One `<scenario>` of a leaderboard-2.0 route (the leaderboard's `ScenarioConfiguration`).

    Attributes:
        name: the scenario's name attribute (unique within a route, e.g. "Accident_1").
        type: the scenario class name (e.g. "Accident"; see `carla_bridge.scenarios.catalog`).
        trigger_world: `[3]` world (x, y, z) of its first trigger point [m].
        trigger_yaw: world yaw of the trigger point [rad].
        params: every other child element: tag → its attributes (strings, as in the file), e.g.
            ``{"distance": {"value": "120"}, "frequency": {"from": "20", "to": "100"}}``.
        other_actors: attributes of each `<other_actor>` element (kept, unused by the lite types).
    """

    name: str
    type: str
    trigger_world: np.ndarray
    trigger_yaw: float
    params: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    other_actors: tuple[Mapping[str, str], ...] = ()

    def __post_init__(self) -> None:
        t = np.asarray(self.trigger_world, dtype=np.float64)
        if t.shape != (3,) or not np.isfinite(t).all() or not np.isfinite(self.trigger_yaw):
            raise ValueError(f"scenario {self.name!r}: trigger point must be 3 finite numbers and a finite yaw")
        object.__setattr__(self, "trigger_world", t)
        # copies (plain dicts: routes are pickled to worker processes)
        object.__setattr__(self, "params", {str(k): dict(v) for k, v in self.params.items()})

    def _attr(self, name: str, key: str) -> str | None:
        v = self.params.get(name)
        return None if v is None else v.get(key)

    def value(self, name: str, typ: type, default: Any) -> Any:
        """`<name value="…"/>` as `typ`, or `default` when absent (the leaderboard's `get_value_parameter`).

        Raises:
            ValueError: the element exists without a `value`, or it does not convert to `typ`.
        """
        if name not in self.params:
            return default
        raw = self._attr(name, "value")
        if raw is None:
            raise ValueError(f"scenario {self.name!r}: <{name}> lacks attribute 'value'")
        try:
            return typ(raw)
        except ValueError:
            raise ValueError(f"scenario {self.name!r}: <{name} value={raw!r}> is not a {typ.__name__}") from None

    def interval(self, name: str, default: tuple[float, float]) -> tuple[float, float]:
        """`<name from="…" to="…"/>` as floats, or `default` (the leaderboard's `get_interval_parameter`)."""
        if name not in self.params:
            return default
        out = []
        for key in ("from", "to"):
            raw = self._attr(name, key)
            try:
                out.append(float(raw))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                msg = f"scenario {self.name!r}: <{name}> needs numeric 'from' and 'to', got {raw!r}"
                raise ValueError(msg) from None
        return out[0], out[1]

    def location(self, name: str) -> np.ndarray | None:
        """`<name x="…" y="…" z="…"/>` (CARLA coordinates in the file) as world `[3]`, or None when absent."""
        if name not in self.params:
            return None
        try:
            xyz = [float(self._attr(name, k)) for k in ("x", "y", "z")]  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"scenario {self.name!r}: <{name}> needs numeric x, y and z") from None
        return carla_points_to_world(np.array(xyz))


def _base_weather() -> dict[str, float]:
    """The leaderboard's base weather, `carla.WeatherParameters(sun_altitude_angle=70, cloudiness=50)`, as a dict."""
    import carla

    w = carla.WeatherParameters(sun_altitude_angle=70, cloudiness=50)
    return {k: float(getattr(w, k)) for k in dir(w) if not k.startswith("_") and isinstance(getattr(w, k), float)}


@dataclass(frozen=True)
class Weather:
    """The weather from a share of the route on (`RouteParser.parse_weather`).

    Attributes:
        route_percentage: where along the route it applies [%].
        params: every `carla.WeatherParameters` attribute (the base weather with the file's values).
    """

    route_percentage: float
    params: Mapping[str, float]

    @classmethod
    def base(cls, route_percentage: float = 0.0) -> Weather:
        return cls(float(route_percentage), _base_weather())


@dataclass(frozen=True)
class Route:
    """One leaderboard route in the world frame.

    Attributes:
        id: the route's id attribute.
        town: town name (resolve with `carla_bridge.maps.load_town`) or a path to a .xodr file.
        waypoints_world: `[W, 3]` (x, y, z) world-frame waypoints [m].
        yaw: `[W]` world yaw [rad] of each waypoint (NaN where the file gives none, e.g. format 2.0).
        format: "1.0" or "2.0".
        source: the file it was read from (None if built in code).
        scenarios: its `<scenarios>` in file order.
        weathers: its `<weathers>`, sorted by route percentage (the base weather if none).
    """

    id: str
    town: str
    waypoints_world: np.ndarray
    yaw: np.ndarray
    format: str = "1.0"
    source: Path | None = None
    scenarios: tuple[ScenarioConfig, ...] = ()
    weathers: tuple[Weather, ...] = ()

    def __post_init__(self) -> None:
        w = np.asarray(self.waypoints_world)
        if w.ndim != 2 or w.shape[1] != 3 or len(w) < 1:
            raise ValueError(f"Route {self.id}: waypoints_world must have shape [W>=1, 3], got {list(w.shape)}")
        if not np.isfinite(w).all():
            raise ValueError(f"Route {self.id}: waypoints_world contains NaN or inf")
        if np.shape(self.yaw) != (len(w),):
            raise ValueError(f"Route {self.id}: yaw must have shape [{len(w)}], got {list(np.shape(self.yaw))}")
        names = [s.name for s in self.scenarios]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"Route {self.id}: duplicate scenario names {dup}")
        object.__setattr__(self, "scenarios", tuple(self.scenarios))
        object.__setattr__(self, "weathers", tuple(self.weathers) or (Weather.base(),))

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


def _parse_scenario(el: ET.Element, where: str) -> ScenarioConfig:
    name, typ = el.get("name"), el.get("type")
    if not name or not typ:
        raise ValueError(f"{where}: a <scenario> lacks its 'name' or 'type' attribute")
    where = f"{where} scenario {name!r}"
    trigger = None
    params: dict[str, dict[str, str]] = {}
    others: list[dict[str, str]] = []
    for child in el:
        if child.tag == "trigger_point":
            if trigger is None:  # the leaderboard uses the first one
                xyz = [_float(child, k, where) for k in ("x", "y", "z")]
                yaw = float(carla_yaw_deg_to_world_rad(_float(child, "yaw", where)))
                trigger = (carla_points_to_world(np.array(xyz)), yaw)
        elif child.tag == "other_actor":
            others.append(dict(child.attrib))
        else:
            params[child.tag] = dict(child.attrib)
    if trigger is None:
        raise ValueError(f"{where}: no <trigger_point>")
    return ScenarioConfig(name, typ, trigger[0], trigger[1], params, tuple(others))


def _parse_weathers(el: ET.Element | None, where: str) -> tuple[Weather, ...]:
    if el is None:
        return (Weather.base(),)
    base = _base_weather()
    out = []
    for w in el.iter("weather"):
        pct = _float(w, "route_percentage", where)
        params = dict(base)
        for key in w.attrib:
            if key in base:
                params[key] = _float(w, key, where)
            elif key != "route_percentage":
                msg = f"{where}: ignoring weather attribute {key!r} (not a carla.WeatherParameters field)"
                warnings.warn(msg, stacklevel=3)
        out.append(Weather(pct, params))
    return tuple(sorted(out, key=lambda x: x.route_percentage)) or (Weather.base(),)


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
    scen_el = el.find("scenarios")
    scenarios = tuple(_parse_scenario(s, where) for s in scen_el.iter("scenario")) if scen_el is not None else ()
    weathers = _parse_weathers(el.find("weathers"), where)
    return Route(
        str(rid), str(town), carla_points_to_world(xyz), np.asarray(yaw, np.float64), fmt, path, scenarios, weathers
    )


def parse_routes(path: str | Path) -> list[Route]:
    """Parse a leaderboard 1.0 or 2.0 routes XML file (with the 2.0 scenarios and weathers).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not XML, no <route>, a route without id/town/waypoints, a non-numeric coordinate, a
            scenario without name, type or trigger point, or duplicate route ids / scenario names.
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


def with_maps(routes: Sequence[Route], maps_dir: str | Path | None) -> list[Route]:
    """`--maps DIR`: each route with its town resolved to the .xodr of that name in `maps_dir` (a path the
    loaders accept); a town not there falls back to the vendored towns. `maps_dir` None: unchanged.

    Raises:
        FileNotFoundError: a town is neither in `maps_dir` nor vendored (the message lists both).
    """
    import dataclasses

    from carla_bridge.maps.xodr import available_towns, find_town

    if maps_dir is None:
        return list(routes)
    if not Path(maps_dir).expanduser().is_dir():
        raise FileNotFoundError(f"--maps {maps_dir}: not a folder")
    out = []
    for r in routes:
        try:
            path = find_town(r.town, maps_dir)
        except FileNotFoundError as err:
            if r.town in available_towns():
                out.append(r)
                continue
            raise FileNotFoundError(f"route {r.id}: {err}; vendored towns: {', '.join(available_towns())}") from None
        out.append(dataclasses.replace(r, town=str(path)))
    return out


def _fmt(v: float) -> str:
    return f"{float(v):.2f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else repr(float(v))


def _route_element(route: Route) -> ET.Element:
    r = ET.Element("route", id=str(route.id), town=str(route.town))
    ws = ET.SubElement(r, "weathers")
    base = _base_weather()
    for w in route.weathers:
        attrs = {"route_percentage": _fmt(w.route_percentage)}
        attrs.update({k: f"{float(v):.6g}" for k, v in sorted(w.params.items()) if k in base})
        ET.SubElement(ws, "weather", attrs)
    wp = ET.SubElement(r, "waypoints")
    for x, y, z in world_points_to_carla(np.asarray(route.waypoints_world, dtype=np.float64)):
        ET.SubElement(wp, "position", x=_fmt(x), y=_fmt(y), z=_fmt(z))
    sc = ET.SubElement(r, "scenarios")
    for s in route.scenarios:
        e = ET.SubElement(sc, "scenario", name=s.name, type=s.type)
        x, y, z = world_points_to_carla(s.trigger_world)
        ET.SubElement(
            e, "trigger_point", x=_fmt(x), y=_fmt(y), z=_fmt(z), yaw=_fmt(world_yaw_rad_to_carla_deg(s.trigger_yaw))
        )
        for tag, attrs in s.params.items():
            ET.SubElement(e, tag, dict(attrs))
        for actor in s.other_actors:
            ET.SubElement(e, "other_actor", dict(actor))
    return r


def write_routes(path: str | Path, routes: Sequence[Route]) -> Path:
    """Write `routes` as one leaderboard-2.0 routes file (CARLA coordinates), atomically (temp file + rename).

    Raises:
        ValueError: no routes, or duplicate route ids.
    """
    if not routes:
        raise ValueError("write_routes: no routes to write")
    ids = [str(r.id) for r in routes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"write_routes: duplicate route ids {sorted({i for i in ids if ids.count(i) > 1})}")
    root = ET.Element("routes")
    for r in routes:
        root.append(_route_element(r))
    ET.indent(root, space="   ")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            ET.ElementTree(root).write(f, encoding="utf-8", xml_declaration=True)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
