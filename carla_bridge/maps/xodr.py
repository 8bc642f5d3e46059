"""OpenDRIVE files: finding vendored towns, reading and validating .xodr text, loading `carla.Map`.

Towns are given by name (``Town01`` → ``carla_bridge/data/towns/Town01.xodr``) or by a path to any
``.xodr``. The OpenDRIVE header's ``name`` is empty in real CARLA files, so a town's name is the file
stem. `carla.Map` accepts any XML without complaint (it then has no lanes), so the text is parsed with
ElementTree first and a map without driving lanes is rejected by the caller.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

TOWNS_DIR = Path(__file__).resolve().parent.parent / "data" / "towns"

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
    if not path.is_file():
        raise FileNotFoundError(
            f"unknown town {s!r}: no map {path.name} in {TOWNS_DIR}; available towns: {', '.join(available_towns())}"
        )
    return s, path


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
