"""Every scenario type of the leaderboard-2.0 routes and of Bench2Drive, with the family (shared
mechanism) that implements it in the lite simulator and its Bench2Drive abilities.

A route's scenario whose type is not in `SCENARIO_TYPES`, or whose entry says `implemented=False`, is
never dropped silently: `carla_bridge.scenarios.build_scenarios` reports it with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Family(str, Enum):
    """Shared mechanisms: one parameterized builder per family (`carla_bridge.scenarios.builders`)."""

    OBSTACLE = "obstacle in lane (pass it, in the opposite lane for *TwoWays)"
    CROSSING = "crossing actor triggered by the ego's time to arrival"
    JUNCTION_CROSSER = "vehicle crossing a junction against priority"
    JUNCTION_FLOW = "actor flow at a junction the ego turns through"
    FLOW = "actor flow at a merge / highway entry or exit"
    CUT_IN = "vehicle cutting in front of the ego"
    EMERGENCY = "emergency vehicle approaching from behind"
    ROUTE_EVENT = "event on the route (hard brake ahead, control loss, manoeuvre check)"
    SIGNALS = "junction with frozen lights / signs, no actors"


class Ability(str, Enum):
    """Bench2Drive's abilities (`tools/ability_benchmark.py`)."""

    OVERTAKING = "Overtaking"
    MERGING = "Merging"
    EMERGENCY_BRAKE = "Emergency_Brake"
    GIVE_WAY = "Give_Way"
    TRAFFIC_SIGNS = "Traffic_Signs"


@dataclass(frozen=True)
class ScenarioType:
    """One scenario type.

    Attributes:
        name: the class name used as `type` in route files.
        family: its `Family`.
        abilities: its Bench2Drive abilities.
        source: "leaderboard-2.0" (scenario_runner) or "bench2drive" (its fork's extra scenarios).
        implemented: the lite simulator runs it; reason: why not, when it does not.
    """

    name: str
    family: Family
    abilities: tuple[Ability, ...]
    source: str = "leaderboard-2.0"
    implemented: bool = True
    reason: str = ""


_O, _M, _E, _G, _T = (
    Ability.OVERTAKING,
    Ability.MERGING,
    Ability.EMERGENCY_BRAKE,
    Ability.GIVE_WAY,
    Ability.TRAFFIC_SIGNS,
)
_B2D = "bench2drive"

_TYPES = [
    ScenarioType("Accident", Family.OBSTACLE, (_O,)),
    ScenarioType("AccidentTwoWays", Family.OBSTACLE, (_O,)),
    ScenarioType("ConstructionObstacle", Family.OBSTACLE, (_O,)),
    ScenarioType("ConstructionObstacleTwoWays", Family.OBSTACLE, (_O,)),
    ScenarioType("HazardAtSideLane", Family.OBSTACLE, (_O,)),
    ScenarioType("HazardAtSideLaneTwoWays", Family.OBSTACLE, (_O,)),
    ScenarioType("ParkedObstacle", Family.OBSTACLE, (_O,)),
    ScenarioType("ParkedObstacleTwoWays", Family.OBSTACLE, (_O,)),
    ScenarioType("VehicleOpensDoorTwoWays", Family.OBSTACLE, (_O,)),
    ScenarioType("InvadingTurn", Family.OBSTACLE, (_G,)),
    ScenarioType("DynamicObjectCrossing", Family.CROSSING, (_E,)),
    ScenarioType("ParkingCrossingPedestrian", Family.CROSSING, (_E,)),
    ScenarioType("PedestrianCrossing", Family.CROSSING, (_E, _T)),
    ScenarioType("VehicleTurningRoute", Family.CROSSING, (_E, _T)),
    ScenarioType("VehicleTurningRoutePedestrian", Family.CROSSING, (_E, _T)),
    ScenarioType("OppositeVehicleTakingPriority", Family.JUNCTION_CROSSER, (_E, _T)),
    ScenarioType("OppositeVehicleRunningRedLight", Family.JUNCTION_CROSSER, (_E, _T)),
    ScenarioType("BlockedIntersection", Family.JUNCTION_CROSSER, (_E, _T)),
    ScenarioType("SignalizedJunctionLeftTurn", Family.JUNCTION_FLOW, (_M, _T)),
    ScenarioType("SignalizedJunctionRightTurn", Family.JUNCTION_FLOW, (_M, _T)),
    ScenarioType("NonSignalizedJunctionLeftTurn", Family.JUNCTION_FLOW, (_M, _T)),
    ScenarioType("NonSignalizedJunctionRightTurn", Family.JUNCTION_FLOW, (_M, _T)),
    ScenarioType("SignalizedJunctionLeftTurnEnterFlow", Family.JUNCTION_FLOW, (_M, _T), _B2D),
    ScenarioType("NonSignalizedJunctionLeftTurnEnterFlow", Family.JUNCTION_FLOW, (_M, _T), _B2D),
    ScenarioType("CrossingBicycleFlow", Family.JUNCTION_FLOW, (_M, _T)),
    ScenarioType("EnterActorFlow", Family.FLOW, (_M, _T)),
    ScenarioType("EnterActorFlowV2", Family.FLOW, (_M,)),
    ScenarioType("HighwayExit", Family.FLOW, (_M,)),
    ScenarioType("MergerIntoSlowTraffic", Family.FLOW, (_M,)),
    ScenarioType("MergerIntoSlowTrafficV2", Family.FLOW, (_M,)),
    ScenarioType("InterurbanActorFlow", Family.FLOW, (_M,)),
    ScenarioType("InterurbanAdvancedActorFlow", Family.FLOW, (_M,)),
    ScenarioType("ParkingCutIn", Family.CUT_IN, (_E,)),
    ScenarioType("StaticCutIn", Family.CUT_IN, (_E,)),
    ScenarioType("HighwayCutIn", Family.CUT_IN, (_M,)),
    ScenarioType("ParkingExit", Family.CUT_IN, (_M,)),
    ScenarioType("YieldToEmergencyVehicle", Family.EMERGENCY, (_G,)),
    ScenarioType("HardBreakRoute", Family.ROUTE_EVENT, (_E,)),
    ScenarioType("ControlLoss", Family.ROUTE_EVENT, (_E,)),
    ScenarioType("SequentialLaneChange", Family.ROUTE_EVENT, (_M,), _B2D),
    ScenarioType("T_Junction", Family.ROUTE_EVENT, (_T,), _B2D),
    ScenarioType("PriorityAtJunction", Family.SIGNALS, ()),
    ScenarioType("VanillaNonSignalizedTurn", Family.SIGNALS, (_T,), _B2D),
    ScenarioType("VanillaNonSignalizedTurnEncounterStopsign", Family.SIGNALS, (_T,), _B2D),
    ScenarioType("VanillaSignalizedTurnEncounterGreenLight", Family.SIGNALS, (_T,), _B2D),
    ScenarioType("VanillaSignalizedTurnEncounterRedLight", Family.SIGNALS, (_T,), _B2D),
]

SCENARIO_TYPES: dict[str, ScenarioType] = {t.name: t for t in _TYPES}
"""Type name → `ScenarioType`."""


def scenario_type(name: str) -> ScenarioType | None:
    """The catalog entry of a type name, None when the type is unknown."""
    return SCENARIO_TYPES.get(name)


def abilities_of(name: str) -> tuple[str, ...]:
    """Bench2Drive ability names of a scenario type (empty for unknown types)."""
    t = SCENARIO_TYPES.get(name)
    return tuple(a.value for a in t.abilities) if t else ()
