"""OpenDRIVE files: finding vendored towns, reading and validating .xodr text, loading `carla.Map`.

Towns are given by name (``Town01`` → ``carla_bridge/data/towns/Town01.xodr``), by a path to any
``.xodr``, or as a procedural grid town ``Grid<nx>x<ny>[s<seed>]`` (e.g. ``Grid3x3s7``: 3 × 3 junctions,
lights at ~60 % and stop signs at ~25 % of them, seed 7), generated once into `procedural_cache_dir()`.
The OpenDRIVE header's ``name`` is empty in real CARLA files, so a town's name is the file
stem. `carla.Map` accepts any XML without complaint (it then has no lanes), so the text is parsed with
ElementTree first and a map without driving lanes is rejected by the caller.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

TOWNS_DIR = Path(__file__).resolve().parent.parent / "data" / "towns"
PROCEDURAL_NAME = re.compile(r"Grid(\d+)x(\d+)(?:s(\d+))?")
MAX_GRID = 12

# m/s per unit of OpenDRIVE <speed unit=...>.
_SPEED_UNITS = {"m/s": 1.0, "km/h": 1.0 / 3.6, "mph": 0.44704}


def available_towns() -> list[str]:
    """Names of the vendored towns (sorted)."""
    return sorted(p.stem for p in TOWNS_DIR.glob("*.xodr"))


def resolve_town(name_or_path: str | Path) -> tuple[str, Path]:
    """Town name or .xodr path → (town name, path to the .xodr).

    Raises:
        FileNotFoundError: unknown town name (the message lists the vendored ones) or missing file.
    """
    s = str(name_or_path)
    if s.endswith(".xodr") or "/" in s or "\\" in s:
        path = Path(s).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"OpenDRIVE map file not found: {path}")
        return path.stem, path
    path = TOWNS_DIR / f"{s}.xodr"
    if path.is_file():
        return s, path
    m = PROCEDURAL_NAME.fullmatch(s)
    if m:
        return s, _procedural_path(s, int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    raise FileNotFoundError(
        f"unknown town {s!r}: no map {path.name} in {TOWNS_DIR}; available towns: {', '.join(available_towns())} "
        "(or a procedural grid town 'Grid<nx>x<ny>[s<seed>]', e.g. Grid3x3s7)"
    )


def find_town(name: str, maps_dir: str | Path) -> Path:
    """The .xodr file of town `name` in the folder `maps_dir` (the file whose stem is `name`, compared
    case-insensitively, searched recursively), for `--maps DIR`.

    Raises:
        FileNotFoundError: `maps_dir` is not a folder, or holds no such map (the message lists the maps there).
    """
    folder = Path(maps_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"--maps {folder}: not a folder")
    stem = Path(str(name)).stem if str(name).endswith(".xodr") else str(name)
    found = sorted(p for p in folder.rglob("*.xodr") if p.stem.lower() == stem.lower())
    if not found:
        have = sorted({p.stem for p in folder.rglob("*.xodr")})
        raise FileNotFoundError(
            f"town {name!r} not found in --maps {folder} (maps there: {', '.join(have) if have else 'none'})"
        )
    if len(found) > 1:
        raise FileNotFoundError(f"town {name!r} is ambiguous in --maps {folder}: {', '.join(map(str, found))}")
    return found[0]


def _procedural_path(name: str, nx: int, ny: int, seed: int) -> Path:
    """Write (once) the procedural grid town `name` into the cache folder and return its path."""
    from carla_bridge.maps.procedural import grid_town_xodr, write_xodr

    if not (1 <= nx <= MAX_GRID and 1 <= ny <= MAX_GRID and nx * ny >= 2):
        raise FileNotFoundError(f"procedural town {name!r}: need 1 ≤ nx, ny ≤ {MAX_GRID} and nx·ny ≥ 2")
    path = procedural_cache_dir() / f"{name}.xodr"
    if not path.is_file():
        text = grid_town_xodr(nx, ny, stubs=False, light_prob=0.6, stop_sign_prob=0.25, seed=seed, name=name)
        write_xodr(text, path)
    return path


def procedural_cache_dir() -> Path:
    """Where procedural towns are written: $DRIVEWM_CACHE/towns, else <tmp>/drivewm_towns."""
    root = os.environ.get("DRIVEWM_CACHE")
    return Path(root) / "towns" if root else Path(tempfile.gettempdir()) / "drivewm_towns"


def read_xodr(path: Path) -> tuple[str, ET.Element]:
    """Read and parse an .xodr file → (text, XML root).

    Raises:
        ValueError: the file is not readable text, not XML, or its root is not <OpenDRIVE>.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read OpenDRIVE file {path}: {e}") from e
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f"malformed OpenDRIVE file {path}: not valid XML ({e})") from e
    if root.tag != "OpenDRIVE":
        raise ValueError(f"malformed OpenDRIVE file {path}: root element is <{root.tag}>, expected <OpenDRIVE>")
    if root.find("road") is None:
        raise ValueError(f"malformed OpenDRIVE file {path}: no <road> elements")
    return text, root


def load_carla_map(name: str, text: str) -> Any:
    """`carla.Map(name, text)` (offline)."""
    import carla

    return carla.Map(name, text)


def road_speed_limits(root: ET.Element) -> dict[int, float]:
    """road id → speed limit [m/s] from the first ``<road><type><speed max unit>`` of each road (if any)."""
    out: dict[int, float] = {}
    for road in root.iter("road"):
        for t in road.findall("type"):
            sp = t.find("speed")
            if sp is None or sp.get("max") in (None, "", "no limit", "undefined"):
                continue
            try:
                v = float(sp.get("max", "")) * _SPEED_UNITS.get(sp.get("unit", "m/s"), 1.0)
                out[int(road.get("id", "-1"))] = v
            except ValueError:
                continue
            break
    return out
