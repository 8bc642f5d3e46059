"""`TownMap`: a CARLA town loaded offline — lane graph, projection, spawn points, lights, stop signs,
static scene — and `load_town`, which caches one `TownMap` per (file, seed) in the process.
"""

from __future__ import annotations

import threading
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from carla_bridge.maps.lanes import Lane, LaneArrays, build_lanes, lane_arrays
from carla_bridge.maps.lights import TrafficLightGroup, lights_from_map, place_lights
from carla_bridge.maps.projection import LaneIndex
from carla_bridge.maps.stop_signs import StopSign, stop_signs_from_map
from carla_bridge.maps.xodr import load_carla_map, read_xodr, resolve_town, road_speed_limits

if TYPE_CHECKING:  # pragma: no cover
    from carla_bridge.maps.static_scene import StaticScene

SPAWN_MARGIN = 2.0  # [m] keep spawn points this far from lane ends


class TownMap:
    """A town's driving lanes and everything derived from them (world frame, right-handed).

    Attributes:
        name: town name (file stem).
        path: the .xodr file.
        carla_map: the offline `carla.Map`.
        lanes: driving lanes (`Lane.id` = index).
        seed: seed of the procedural parts (lights where the map has none, buildings, trees).
        build_seconds: time to load the map and build the lane graph [s].
    """

    def __init__(self, name: str, path: Path, seed: int = 0) -> None:
        t0 = time.perf_counter()
        text, root = read_xodr(path)
        self.name = name
        self.path = path
        self.seed = seed
        self.carla_map = load_carla_map(name, text)
        self.lanes: list[Lane] = build_lanes(self.carla_map, road_speed_limits(root))
        if not self.lanes:
            raise ValueError(f"OpenDRIVE file {path} has no driving lanes (malformed or empty map)")
        self.lane_key_to_id: dict[tuple[int, int, int], int] = {ln.key: ln.id for ln in self.lanes}
        self._index = LaneIndex(self.lanes)
        self._arrays: dict[str, LaneArrays] = {}
        self.build_seconds = time.perf_counter() - t0

    def __reduce__(self) -> tuple:
        """Pickle as (path, seed): unpickling reloads through `load_town` (the `carla.Map` itself is not picklable)."""
        return (load_town, (str(self.path), self.seed))

    def __repr__(self) -> str:
        return f"TownMap({self.name!r}, lanes={len(self.lanes)}, length={self.total_length:.0f} m)"

    @property
    def total_length(self) -> float:
        """Summed centreline length of all driving lanes [m]."""
        return float(sum(ln.length for ln in self.lanes))

    @property
    def road_length(self) -> float:
        """Summed length of non-junction driving lanes [m] (for densities per km of road)."""
        return float(sum(ln.length for ln in self.lanes if not ln.is_junction))

    def lane_arrays(self, device: torch.device | str = "cpu") -> LaneArrays:
        """Padded lane tensors on `device` (cached per device)."""
        key = str(torch.device(device))
        if key not in self._arrays:
            self._arrays[key] = lane_arrays(self.lanes, device)
        return self._arrays[key]

    def project(self, xy: np.ndarray, yaw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest driving lane of each point.

        Args:
            xy: `[M, 2]` world points [m].
            yaw: optional `[M]` headings [rad]; prefers lanes heading the same way (2 m per rad).

        Returns:
            (lane `[M]` int64, s `[M]` arc length on it [m], lateral `[M]` signed offset, + = left [m]).
        """
        lane, s, lateral, _ = self._index.project(xy, yaw)
        return lane, s, lateral

    def ground_z(self, xy: np.ndarray) -> np.ndarray:
        """Ground height [m] `[M]` at world points `[M, 2]`: the height of the nearest driving lane there."""
        lane, s, _ = self.project(xy)
        z = np.empty(len(lane))
        for li in np.unique(lane):
            m = lane == li
            z[m] = np.interp(s[m], self.lanes[li].s, self.lanes[li].z)
        return z

    def lane_candidates(
        self, xy: np.ndarray, radius: float
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Every lane within `radius` [m] of each point `[M, 2]`: per point (lane `[C]`, s `[C]`, distance `[C]`,
        lane yaw `[C]`) at the lane's closest point, sorted by distance."""
        return self._index.candidates(xy, radius)

    def spawn_points(self, spacing: float = 10.0, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Points on driving lanes outside junctions, every `spacing` m from a random offset per lane.

        Returns:
            `[S, 4]` float64 (x, y, yaw, lane_id).
        """
        if not spacing > 0:
            raise ValueError(f"spawn_points: spacing must be positive, got {spacing}")
        rng = np.random.default_rng(rng)
        rows = []
        for ln in self.lanes:
            if ln.is_junction or ln.length < 2 * SPAWN_MARGIN:
                continue
            s = SPAWN_MARGIN + rng.uniform(0.0, spacing) + spacing * np.arange(int(ln.length // spacing) + 1)
            s = s[s <= ln.length - SPAWN_MARGIN]
            if len(s) == 0:
                continue
            xy, yaw = ln.interpolate(s)
            rows.append(np.column_stack([xy, yaw, np.full(len(s), ln.id)]))
        return np.concatenate(rows) if rows else np.zeros((0, 4))

    def lane_at(self, road_id: int, section_id: int, lane_id: int) -> Lane:
        """Lane by OpenDRIVE ids (`KeyError` naming them if absent)."""
        try:
            return self.lanes[self.lane_key_to_id[(road_id, section_id, lane_id)]]
        except KeyError:
            raise KeyError(f"{self.name}: no driving lane road={road_id} section={section_id} lane={lane_id}") from None

    @cached_property
    def traffic_lights(self) -> list[TrafficLightGroup]:
        """Light groups from the map's signals, or placed procedurally (seeded) when it has none (never at
        junctions with stop signs)."""
        groups = lights_from_map(self.carla_map, self.lanes, self.lane_key_to_id)
        if groups:
            return groups
        stop_junctions = {s.junction_id for s in self.stop_signs}
        return place_lights(self.lanes, seed=self.seed, exclude_junctions=stop_junctions)

    @cached_property
    def stop_signs(self) -> list[StopSign]:
        """Stop signs from the map's signals (type 206)."""
        return stop_signs_from_map(self.carla_map, self.lanes, self.lane_key_to_id)

    @cached_property
    def static(self) -> StaticScene:
        """Static scene geometry (built on first use, then cached)."""
        from carla_bridge.maps.static_scene import build_static_scene

        return build_static_scene(self)


_CACHE: dict[tuple[str, float, int], TownMap] = {}
_LOCK = threading.Lock()


def load_town(name_or_path: str | Path, seed: int = 0) -> TownMap:
    """Load a town by name (vendored ``carla_bridge/data/towns/<Name>.xodr``) or .xodr path; cached per process.

    Raises:
        FileNotFoundError: unknown town (lists the available ones) or missing file.
        ValueError: unreadable or malformed .xodr, or a map without driving lanes.
    """
    name, path = resolve_town(name_or_path)
    key = (str(path.resolve()), path.stat().st_mtime, int(seed))
    with _LOCK:
        town = _CACHE.get(key)
        if town is None:
            town = TownMap(name, path, seed=int(seed))
            _CACHE[key] = town
    return town


def clear_cache() -> None:
    """Forget every cached `TownMap`."""
    with _LOCK:
        _CACHE.clear()
