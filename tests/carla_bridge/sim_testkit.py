"""Shared pieces of the lite-simulator tests."""

from __future__ import annotations

from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.random_route import random_route
from carla_bridge.lite.world import LiteWorld


def make_world(town, md, config: LiteConfig | None = None, seed: int = 0, route=None, num_worlds: int = 1) -> LiteWorld:
    """A `LiteWorld` of `town` reset on `route` (default: a random 200 m route of `seed`)."""
    w = LiteWorld(town, config or LiteConfig(), map_data=md)
    w.reset(route if route is not None else random_route(town, seed, 200.0), seed, num_worlds=num_worlds)
    return w
