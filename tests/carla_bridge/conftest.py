"""Shared fixtures for carla_bridge tests (towns are session-scoped: each xdist worker loads a town once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.map_data import build_map_data
from carla_bridge.lite.random_route import random_route
from carla_bridge.maps import TownMap, load_town
from carla_bridge.maps.procedural import crossroads_xodr, write_xodr
from tests.carla_bridge.sim_testkit import make_world


@pytest.fixture(scope="session")
def town01() -> TownMap:
    """The real CARLA Town01 (vendored .xodr), loaded offline through `carla.Map`."""
    return load_town("Town01")


@pytest.fixture(scope="session")
def crossroads_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated four-way crossroads .xodr with a stop sign on every approach."""
    return write_xodr(crossroads_xodr(stop_signs=True), tmp_path_factory.mktemp("xodr") / "Crossroads.xodr")


@pytest.fixture(scope="session")
def crossroads(crossroads_path: Path) -> TownMap:
    """The generated crossroads, loaded through `carla.Map` like a CARLA town."""
    return load_town(crossroads_path)


@pytest.fixture(scope="session")
def town01_map_data(town01):
    return build_map_data(town01, seed=town01.seed)


@pytest.fixture(scope="session")
def long_lane(town01) -> int:
    """A long, straight, non-junction Town01 lane."""
    best = None
    for ln in town01.lanes:
        if ln.is_junction or ln.length < 120:
            continue
        turn = np.abs(np.angle(np.exp(1j * np.diff(ln.yaw)))).sum()
        if turn < 0.05 and (best is None or ln.length > town01.lanes[best].length):
            best = ln.id
    assert best is not None
    return best


@pytest.fixture
def empty_world(town01, town01_map_data, long_lane):
    """Town01 with no background agents; the ego's route runs along `long_lane`."""
    route = random_route(town01, 0, 100.0, start_lane=long_lane, start_s=5.0)
    cfg = LiteConfig(num_vehicles=0, num_pedestrians=0, num_parked=0, num_props=0)
    return make_world(town01, town01_map_data, cfg, route=route)
