"""One builder per scenario family: a function `ScenarioType name → (BuildContext) → ScenarioSpec`.

Each family module places its actors where srunner's `_initialize_actors` puts them and composes the
conditions of srunner's `_create_behavior` / `_create_test_criteria`; see each module's docstring.
"""

from __future__ import annotations

from collections.abc import Callable

from carla_bridge.scenarios.builders import crossing, cut_ins, flows, junctions, obstacles, route_events
from carla_bridge.scenarios.builders.common import BuildContext
from carla_bridge.scenarios.spec import ScenarioSpec

BUILDERS: dict[str, Callable[[BuildContext], ScenarioSpec]] = {}
for _module in (obstacles, crossing, junctions, flows, cut_ins, route_events):
    BUILDERS.update(_module.BUILDERS)

__all__ = ["BUILDERS", "BuildContext"]
