"""The ONE adapter between our towns and the nuScenes devkit's map API.

`nuscenes.map_expansion.map_api.NuScenesMap` only accepts the four nuScenes locations (a module
list `locations` that it asserts against). A recorded dataset's logs name their town by a
*location* `carla-<town lower-case>` (e.g. `carla-town01`); this module appends those names to
the devkit's list — in place, so every devkit module that imported the list (the prediction
helper's static layers too) sees them — and is the only place in the project that touches it.

Usage::

    from carla_bridge.recorder.devkit_maps import load_nuscenes_map
    nmap = load_nuscenes_map(dataroot, "carla-town01")   # a genuine NuScenesMap

The devkit's explorer also hard-codes the four maps' sizes in `get_map_mask` (used when the whole
map is requested); `_patch_explorer` makes it read our maps' `canvas_edge` instead, for our
locations only. And `descartes.PolygonPatch`, which the map renderers use, predates shapely 2
(`_patch_descartes` feeds it ring coordinates). `register_town_locations()` (every vendored town,
Town01…Town06) and the two patches run at import; datasets recorded on other .xodr files register their
location with `register_location(name)`.

The dataset's **global frame** is the simulator's world frame shifted by a per-town offset
(`town_offset`): the devkit rasterizes maps on a canvas `[0, canvas_edge]` and the basemap PNG
(`MapMask`) indexes pixels from the origin, so map coordinates must be non-negative.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

LOCATION_PREFIX = "carla-"
TOWNS_DIR = Path(__file__).resolve().parents[1] / "data" / "towns"
MAP_MARGIN = 100.0  # [m] free border around a town's geometry in the global frame
OFFSET_QUANTUM = 50.0  # [m] offsets are rounded to multiples of this (readable coordinates)


def location_for_town(town: str) -> str:
    """nuScenes log location of a town name (`Town01` → `carla-town01`)."""
    if not town or any(c in town for c in "/\\ "):
        raise ValueError(f"town name {town!r} cannot name a map location")
    return LOCATION_PREFIX + town.lower()


def register_location(location: str) -> None:
    """Let `NuScenesMap` accept `location` (idempotent)."""
    from nuscenes.map_expansion import map_api

    if not location.startswith(LOCATION_PREFIX):
        raise ValueError(f"map location {location!r} must start with {LOCATION_PREFIX!r}")
    if location not in map_api.locations:
        map_api.locations.append(location)


def vendored_towns() -> list[str]:
    """Names of the towns shipped in `carla_bridge/data/towns/`."""
    return sorted(p.stem for p in TOWNS_DIR.glob("*.xodr"))


def register_town_locations() -> list[str]:
    """Register the locations of all vendored towns; return them."""
    locs = [location_for_town(t) for t in vendored_towns()]
    for loc in locs:
        register_location(loc)
    return locs


def load_nuscenes_map(dataroot: str | Path, location: str):
    """A devkit `NuScenesMap` for one of our locations (registered first).

    Raises:
        FileNotFoundError: the dataset has no map expansion file for `location`.
    """
    from nuscenes.map_expansion.map_api import NuScenesMap

    path = Path(dataroot) / "maps" / "expansion" / f"{location}.json"
    if not path.is_file():
        raise FileNotFoundError(f"map expansion file not found: {path}")
    register_location(location)
    return NuScenesMap(dataroot=str(dataroot), map_name=location)


def town_offset(bounds: tuple[float, float, float, float]) -> tuple[float, float]:
    """World → global translation `(ox, oy)` [m] for a town whose geometry spans `bounds`
    (xmin, ymin, xmax, ymax) in the world frame: the geometry lands at ≥ `MAP_MARGIN` from the
    origin, offsets rounded up to multiples of `OFFSET_QUANTUM`."""
    xmin, ymin = bounds[0], bounds[1]
    if not all(math.isfinite(v) for v in bounds):
        raise ValueError(f"town bounds must be finite, got {bounds}")
    ox = math.ceil((MAP_MARGIN - xmin) / OFFSET_QUANTUM) * OFFSET_QUANTUM
    oy = math.ceil((MAP_MARGIN - ymin) / OFFSET_QUANTUM) * OFFSET_QUANTUM
    return float(ox), float(oy)


def canvas_edge(bounds: tuple[float, float, float, float], offset: tuple[float, float]) -> tuple[float, float]:
    """Map canvas `(width, height)` [m] in the global frame: the shifted geometry plus the margin."""
    return (
        float(math.ceil(bounds[2] + offset[0] + MAP_MARGIN)),
        float(math.ceil(bounds[3] + offset[1] + MAP_MARGIN)),
    )


def world_to_global(xy: np.ndarray, offset: tuple[float, float]) -> np.ndarray:
    """`[..., 2]` world-frame points → global frame."""
    return np.asarray(xy, dtype=np.float64) + np.asarray(offset, dtype=np.float64)


def _patch_explorer() -> None:
    """`NuScenesMapExplorer.get_map_mask` hard-codes the four nuScenes map sizes (needed when
    `patch_box` is None); for our locations it takes them from the map's `canvas_edge`."""
    from nuscenes.map_expansion.map_api import NuScenesMapExplorer

    original = NuScenesMapExplorer.get_map_mask
    if getattr(original, "_drivewm_patched", False):
        return

    def get_map_mask(self, patch_box, patch_angle, layer_names=None, canvas_size=(100, 100)):  # type: ignore[no-untyped-def]
        if not str(self.map_api.map_name).startswith(LOCATION_PREFIX):
            return original(self, patch_box, patch_angle, layer_names=layer_names, canvas_size=canvas_size)
        width, height = self.map_api.canvas_edge
        if patch_box is None:
            patch_box = [width / 2, height / 2, height, width]
        if layer_names is None:
            layer_names = self.map_api.non_geometric_layers
        if canvas_size is None:
            canvas_size = tuple(np.round(np.array((patch_box[2], patch_box[3])) * 10).astype(np.int32))
        map_geom = self.get_map_geom(patch_box, patch_angle, layer_names)
        return self.map_geom_to_mask(map_geom, (0.0, 0.0, patch_box[2], patch_box[3]), canvas_size)

    get_map_mask._drivewm_patched = True  # type: ignore[attr-defined]
    NuScenesMapExplorer.get_map_mask = get_map_mask


def _patch_descartes() -> None:
    """`descartes.PolygonPatch` (used by every `NuScenesMap.render_*`) reads `numpy.asarray(polygon.exterior)`,
    which shapely 2 no longer supports; give it the ring coordinates instead (same output)."""
    try:
        from descartes import patch
    except ImportError:  # pragma: no cover - descartes is a devkit dependency
        return
    if getattr(patch.PolygonPath, "_drivewm_patched", False):
        return
    from matplotlib.path import Path as MplPath

    original = patch.PolygonPath

    def coding(n: int) -> np.ndarray:
        vals = np.full(n, MplPath.LINETO, dtype=MplPath.code_type)
        vals[0] = MplPath.MOVETO
        return vals

    def polygon_path(polygon):  # type: ignore[no-untyped-def]
        ptype = getattr(polygon, "geom_type", None)
        if ptype not in ("Polygon", "MultiPolygon"):
            return original(polygon)  # GeoJSON input: descartes' own code works
        parts = [polygon] if ptype == "Polygon" else list(polygon.geoms)
        rings = [
            [np.asarray(p.exterior.coords)[:, :2]] + [np.asarray(r.coords)[:, :2] for r in p.interiors] for p in parts
        ]
        vertices = np.concatenate([np.concatenate(r) for r in rings])
        codes = np.concatenate([np.concatenate([coding(len(x)) for x in r]) for r in rings])
        return MplPath(vertices, codes)

    polygon_path._drivewm_patched = True  # type: ignore[attr-defined]
    patch.PolygonPath = polygon_path


register_town_locations()
_patch_explorer()
_patch_descartes()
