"""Readers of drivewm's per-scene dataset extras (docs/FORMATS.md): `routes/<scene>.json` and
`lights/<scene>.json` under `DIR/drivewm/<version>/`. The dataset loader (`drivewm.data`) and the
dataset check (`carla_bridge.recorder.check`) both read them here, so a file the check passes is a
file training can read; every failure is a `CorruptFileError` naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from occupancy.reading import CorruptFileError, read_json, reading


def read_route_polyline(path: str | Path) -> np.ndarray:
    """A scene's route file → its global polyline `[P ≥ 2, 2]` float64."""
    with reading(path, "route file"):
        poly = np.asarray(read_json(path, "route file")["polyline"], dtype=np.float64)
    if poly.ndim != 2 or poly.shape[0] < 2 or poly.shape[1] != 2 or not np.isfinite(poly).all():
        raise CorruptFileError(f"route file {path}: polyline must be finite [P>=2, 2], got {list(poly.shape)}")
    return poly


def read_lights(path: str | Path) -> dict[str, tuple[int, float | None]]:
    """A scene's light file `{sample_token: [state 0|1|2, distance|null]}` → {token: (state, distance)}."""
    out = {}
    with reading(path, "light file"):
        for token, (state, distance) in read_json(path, "light file").items():
            if int(state) not in (0, 1, 2):
                raise CorruptFileError(f"light file {path}: state {state} of {token} is not 0, 1 or 2")
            out[str(token)] = (int(state), None if distance is None else float(distance))
    return out


__all__ = ["read_lights", "read_route_polyline"]
