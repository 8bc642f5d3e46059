"""The criteria scenarios add (srunner `atomic_criteria.py`), judged when a scenario ends:

- `ScenarioTimeoutTest`: the scenario ended by its `ScenarioTimeout` → `scenario_timeouts`;
- `YieldToEmergencyVehicleTest`: when the scenario ends, the ego is still in front of the emergency
  vehicle (`ev_forward · (ego − ev) > 0`) → `yield_emergency_vehicle_infractions`.

The verdicts are taken by the compiled step at the ending (`ScenarioState.timed_out` / `yield_failed`);
here they become `Event`s, once, in worlds whose route had not ended before the step.
"""

from __future__ import annotations

import math

from torch import Tensor

from agents import EGO
from carla_bridge.backend import Event
from carla_bridge.lite.state import WorldState
from carla_bridge.scenarios.kernel import ScenarioPhase
from carla_bridge.scenarios.tables import PackedScenarios
from carla_bridge.scoring import InfractionKind


def scenario_events(prev: WorldState, state: WorldState, packed: PackedScenarios, active: Tensor) -> list[Event]:
    """Events of the scenarios that ended during the step from `prev` to `state` (worlds where `active [W]`)."""
    ended = (state.scenarios.phase == int(ScenarioPhase.ENDED)) & (prev.scenarios.phase != int(ScenarioPhase.ENDED))
    ended &= active[:, None]
    if not bool(ended.any()):
        return []
    events = []
    pose = state.ego.pose
    for w, c in ended.nonzero().tolist():
        spec = packed.specs[c]
        yaw = float(pose[w, 2])
        loc = (
            float(pose[w, 0]) + EGO.rear_axle_to_center * math.cos(yaw),
            float(pose[w, 1]) + EGO.rear_axle_to_center * math.sin(yaw),
        )
        details = {"scenario": spec.name, "type": spec.type}
        t = float(state.time[w])
        if bool(state.scenarios.timed_out[w, c]):
            events.append(Event(InfractionKind.SCENARIO_TIMEOUT.value, t, loc, (), dict(details), world=w))
        if bool(state.scenarios.yield_failed[w, c]):
            k = int(packed.tables.sc_emergency[c])
            other = (int(state.vehicles.track_id[w, packed.tables.first_vehicle + k]),)
            events.append(Event(InfractionKind.YIELD_EMERGENCY.value, t, loc, other, dict(details), world=w))
    return events
