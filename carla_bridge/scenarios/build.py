"""Build a route's scenarios as the leaderboard's `RouteScenario` does: keep those whose trigger point
lies on the route (`RouteParser.is_scenario_at_route`: within 2 m and 10° of a route point), build each
with its family's builder, and report — never drop silently — every one that is unknown, not
implemented here, off the route, or whose actors cannot be placed (srunner's "Skipping scenario …
due to setup error").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from carla_bridge.coords import wrap_angle_np
from carla_bridge.scenarios.builders import BUILDERS, BuildContext
from carla_bridge.scenarios.catalog import scenario_type
from carla_bridge.scenarios.lanes import PlacementError, RouteView
from carla_bridge.scenarios.spec import ScenarioSpec

ROUTE_DISTANCE = 2.0
"""[m] a trigger point farther from every route point is not on the route (`DIST_THRESHOLD`)."""
ROUTE_ANGLE = math.radians(10.0)
"""A trigger point heading farther from the route's is not on the route (`ANGLE_THRESHOLD`)."""


@dataclass(frozen=True)
class ScenarioRecord:
    """What became of one scenario of a route file.

    Attributes:
        name / type: from the file; family: its catalog family ("" for an unknown type).
        built: it runs in the simulator; reason: why not, when it does not.
        trigger_s: route arc length of its trigger point [m] (None when it is not on the route).
        expert: what a driver must do to pass it (built scenarios).
    """

    name: str
    type: str
    family: str
    built: bool
    reason: str = ""
    trigger_s: float | None = None
    expert: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "family": self.family,
            "built": self.built,
            "reason": self.reason,
            "trigger_s": None if self.trigger_s is None else round(self.trigger_s, 2),
        }


def build_scenarios(
    town, map_data, plan, configs: Sequence, seed: int = 0
) -> tuple[list[ScenarioSpec], list[ScenarioRecord]]:
    """Build the scenarios `configs` (`carla_bridge.routes.ScenarioConfig`) of a route.

    Args:
        town: the `TownMap`; map_data: its lite `MapData`; plan: the route's `RoutePlan`.
        seed: the run's seed (srunner's `CarlaDataProvider` random choices).

    Returns:
        (the built specs in file order, one `ScenarioRecord` per config).
    """
    route = RouteView(town, plan)
    specs: list[ScenarioSpec] = []
    records: list[ScenarioRecord] = []
    for i, cfg in enumerate(configs):
        st = scenario_type(cfg.type)
        family = st.family.name.lower() if st else ""
        if st is None:
            records.append(ScenarioRecord(cfg.name, cfg.type, "", False, "unknown scenario type"))
            continue
        if not st.implemented or cfg.type not in BUILDERS:
            records.append(ScenarioRecord(cfg.name, cfg.type, family, False, st.reason or "not implemented"))
            continue
        s, dist, yaw = route.project(cfg.trigger_world[:2])
        if dist > ROUTE_DISTANCE or abs(float(wrap_angle_np(yaw - cfg.trigger_yaw))) > ROUTE_ANGLE:
            why = f"trigger point is not on the route ({dist:.1f} m from it)"
            records.append(ScenarioRecord(cfg.name, cfg.type, family, False, why))
            continue
        ctx = BuildContext(town=town, md=map_data, route=route, cfg=cfg, trigger_s=s, seed=seed * 1000 + i)
        try:
            spec = BUILDERS[cfg.type](ctx)
        except PlacementError as err:
            records.append(ScenarioRecord(cfg.name, cfg.type, family, False, f"setup error: {err}", s))
            continue
        specs.append(spec)
        records.append(ScenarioRecord(cfg.name, cfg.type, family, True, "", s, spec.expert))
    return specs, records
