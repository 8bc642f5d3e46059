"""Leaderboard-2.0 / Bench2Drive scenarios in the lite simulator.

`build_scenarios(town, map_data, plan, configs, seed)` turns a route's `ScenarioConfig`s
(`carla_bridge.routes.Route.scenarios`) into `ScenarioSpec`s (actors with typed behaviours, a
latched-condition graph, light freezes, flags) and a `ScenarioRecord` per config (built, or why not);
`pack` lays them out in agent slots and flat tables for the compiled step (`kernel.scenario_step`),
which `carla_bridge.lite.step.advance` calls every step; `scenario_events` turns scenario endings into
`scenario_timeouts` / `yield_emergency_vehicle_infractions` events. The catalog of every type, its
family and Bench2Drive abilities is `catalog.SCENARIO_TYPES`.
"""

from carla_bridge.scenarios.build import ScenarioRecord, build_scenarios
from carla_bridge.scenarios.catalog import SCENARIO_TYPES, Ability, Family, ScenarioType, abilities_of
from carla_bridge.scenarios.spec import ScenarioSpec
from carla_bridge.scenarios.tables import ActorSlot, PackedScenarios, pack

__all__ = [
    "SCENARIO_TYPES",
    "Ability",
    "ActorSlot",
    "Family",
    "PackedScenarios",
    "ScenarioRecord",
    "ScenarioSpec",
    "ScenarioType",
    "abilities_of",
    "build_scenarios",
    "pack",
]
