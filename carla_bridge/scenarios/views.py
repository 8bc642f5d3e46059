"""Read-only views of a world's scenarios for agents that may look (the privileged expert) and for
reports: which scenarios exist, in which phase, what they allow, and every scenario actor with its
role, behaviour and pose.

    world.scenario_views(0)   # [ScenarioView(name='Accident_1', type='Accident', phase='running', ...)]
    world.scenario_actors(0)  # [ScenarioActorView(role='police car', group='vehicle', track_id=..., ...)]
"""

from __future__ import annotations

from dataclasses import dataclass

from carla_bridge.lite.state import WorldState
from carla_bridge.scenarios.kernel import ActorPhase, ScenarioPhase
from carla_bridge.scenarios.spec import ActorGroup, VehicleBehaviour
from carla_bridge.scenarios.tables import PackedScenarios


@dataclass(frozen=True)
class ScenarioView:
    """One scenario of a world.

    Attributes:
        name / type / family: from the route file and the catalog.
        phase: "dormant", "initialised", "running" or "ended"; timed_out / yield_failed: its verdicts.
        trigger_s: route arc length of its trigger point [m].
        allow_opposite: while running it allows driving in the opposite lane (world-wide flag).
        expert: what a driver must do to pass it.
    """

    name: str
    type: str
    family: str
    phase: str
    timed_out: bool
    yield_failed: bool
    trigger_s: float
    allow_opposite: bool
    expert: str


@dataclass(frozen=True)
class ScenarioActorView:
    """One scenario actor of a world.

    Attributes:
        scenario: its scenario's name; role: what it is there (e.g. "police car", "oncoming", "adversary").
        group: "vehicle", "walker" or "prop"; slot: its index in that agent group; track_id: its id in
            `privileged()` / `agents_world()` (vehicles: it changes when a flow slot respawns).
        behaviour: "parked", "constant" (ignores everyone), "follow" (brakes for what is ahead),
            "emergency", "sync", "walk" or "static".
        phase: "hidden", "waiting", "moving" or "done".
        xy / yaw / speed: box-centre pose in the world frame [m, rad] and speed [m/s].
    """

    scenario: str
    role: str
    group: str
    slot: int
    track_id: int
    behaviour: str
    phase: str
    xy: tuple[float, float]
    yaw: float
    speed: float


def scenario_views(state: WorldState, packed: PackedScenarios, world: int) -> list[ScenarioView]:
    sc = state.scenarios
    out = []
    for c, spec in enumerate(packed.specs):
        out.append(
            ScenarioView(
                spec.name,
                spec.type,
                spec.family,
                ScenarioPhase(int(sc.phase[world, c])).name.lower(),
                bool(sc.timed_out[world, c]),
                bool(sc.yield_failed[world, c]),
                float(spec.trigger_s),
                bool(sc.allow_opposite[world]),
                spec.expert,
            )
        )
    return out


def scenario_actors(
    state: WorldState, packed: PackedScenarios, world: int, live_only: bool = True
) -> list[ScenarioActorView]:
    sc, v, p, s = state.scenarios, state.vehicles, state.pedestrians, state.statics
    out = []
    for slot in packed.slots:
        if slot.group == ActorGroup.VEHICLE:
            phase = ActorPhase(int(sc.veh_phase[world, slot.actor]))
            behaviour = VehicleBehaviour(int(sc.veh_mode[world, slot.actor])).name.lower()
            xy, yaw, speed, tid = v.xy[world, slot.slot], v.yaw[world, slot.slot], v.speed[world, slot.slot], v.track_id
        elif slot.group == ActorGroup.WALKER:
            phase = ActorPhase(int(sc.walker_phase[world, slot.actor]))
            behaviour = slot.behaviour
            xy, yaw, speed, tid = p.xy[world, slot.slot], p.yaw[world, slot.slot], p.speed[world, slot.slot], p.track_id
        else:
            phase = ActorPhase(int(sc.prop_phase[world, slot.actor]))
            behaviour = slot.behaviour
            xy, yaw, speed, tid = s.box[world, slot.slot, :2], s.box[world, slot.slot, 2], 0.0, s.track_id
        if live_only and phase not in (ActorPhase.WAITING, ActorPhase.MOVING):
            continue
        out.append(
            ScenarioActorView(
                packed.specs[slot.scenario].name,
                slot.role,
                slot.group.name.lower(),
                slot.slot,
                int(tid[world, slot.slot]),
                behaviour,
                phase.name.lower(),
                (float(xy[0]), float(xy[1])),
                float(yaw),
                float(speed),
            )
        )
    return out
