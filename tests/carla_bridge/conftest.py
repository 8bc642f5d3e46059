"""Shared fixtures for carla_bridge tests (session-scoped: each xdist worker loads a town once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from carla_bridge.maps import TownMap, load_town
from carla_bridge.maps.procedural import crossroads_xodr, write_xodr


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
