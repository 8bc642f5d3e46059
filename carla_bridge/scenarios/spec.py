"""What a built scenario is: its actors (typed behaviours on fixed paths), the conditions that drive it
(a small latched-condition graph that plays the part of srunner's behaviour tree), light freezes,
flags and cleared lanes — plain Python, built once per route at reset and packed into tables for the
compiled step (`carla_bridge.scenarios.tables`).

Vocabulary (each mirrors an srunner atomic; builders in `carla_bridge.scenarios.builders` compose them):

- `Cond`: a condition that latches once true (with the time and ego odometer at latching):
  `STARTED` (the scenario was triggered), `EGO_NEAR` (`InTriggerDistanceToLocation` or
  `InTimeToArrivalToLocation`), `AHEAD_OF_POINT` (`WaitUntilInFrontPosition`), `AHEAD_OF_ACTOR`
  (`WaitUntilInFront`), `EGO_PAST_S` (the ego's route progress passed an arc length:
  `WaitEndIntersection`), `ACTOR_DONE` (destroyed), `ACTOR_TRAVELLED` (`DriveDistance` of an actor),
  `ACTOR_NEAR_EGO` (`InTriggerDistanceToVehicle`), `AFTER` (`Idle` after another condition), `DRIVE`
  (`DriveDistance` of the ego or of a vehicle actor after another condition), `EGO_FAR` (after another
  condition, the ego farther than a distance from a point: `InTriggerDistanceToLocation(…, operator.gt)`),
  `ANY` / `ALL`.
- Actors: `VehicleActor` (a vehicle slot; `VehicleBehaviour` PARKED, CONSTANT — constant velocity
  ignoring everyone, FOLLOW — IDM toward whatever is ahead, EMERGENCY — FOLLOW at the ego's speed +
  25 km/h, SYNC — arrive at a point with the ego, then FOLLOW), `Walker` (a pedestrian slot walking a
  straight line at constant speed, `KeepVelocity`), `Prop` (a static slot), `Flow` (`ActorFlow`: vehicles
  spawned at a source every `gap` metres, destroyed at the sink). Vehicles move along a `PathSegment`
  list: each segment runs on one lane from s0 to s1 with a lateral offset going from lat0 to lat1 (lane
  changes, cut-ins and crossings are segments too).
- `LightFreeze` (`TrafficLightFreezer`), `Window` (an effect active from one condition until another:
  `ALLOW_OPPOSITE` — `SwitchWrongDirectionTest(False)`, `BLOCKED_OFF` — the `ScenarioTimeout` switching
  off the blocked test, `NOISE` — `AddNoiseToRouteEgo`, `CLEAR` — the background activity leaving a lane
  stretch free).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from agents import AgentClass

INIT = -1
"""`appear` value: the actor exists as soon as its scenario is initialised (ego within 500 m)."""
NEVER = -2
"""`vanish` value: the actor only disappears when its scenario ends."""
EGO = -1
"""Actor reference for the ego in `AHEAD_OF_ACTOR` conditions."""
STARTED = 0
"""Index of every scenario's first condition, `STARTED` (the scenario was triggered)."""


class CondKind(IntEnum):
    STARTED = 0
    EGO_NEAR = 1
    AHEAD_OF_POINT = 2
    AHEAD_OF_ACTOR = 3
    EGO_PAST_S = 4
    ACTOR_DONE = 5
    ACTOR_TRAVELLED = 6
    ACTOR_NEAR_EGO = 7
    AFTER = 8
    DRIVE = 9
    ANY = 10
    ALL = 11
    EGO_FAR = 12


class ActorGroup(IntEnum):
    VEHICLE = 0
    WALKER = 1
    PROP = 2


class VehicleBehaviour(IntEnum):
    PARKED = 0
    CONSTANT = 1
    FOLLOW = 2
    EMERGENCY = 3
    SYNC = 4


class Finish(IntEnum):
    """What a moving vehicle does at the end of its path."""

    STOP = 0
    DESTROY = 1


class WindowKind(IntEnum):
    ALLOW_OPPOSITE = 0
    BLOCKED_OFF = 1
    NOISE = 2
    CLEAR = 3


@dataclass(frozen=True)
class Cond:
    """One condition (see the module docstring); `ints` / `floats` hold its arguments by kind."""

    kind: CondKind
    ints: tuple[int, ...] = ()
    floats: tuple[float, ...] = ()


@dataclass(frozen=True)
class PathSegment:
    """A piece of an actor's path on lane `lane` from arc length s0 to s1 [m] (s1 ≥ s0; s1 = s0 for a
    crossing), the box centre `lat0 → lat1` metres left of the centreline, heading = lane heading +
    `yaw_offset` [rad]."""

    lane: int
    s0: float
    s1: float
    lat0: float = 0.0
    lat1: float = 0.0
    yaw_offset: float = 0.0

    @property
    def length(self) -> float:
        return math.hypot(self.s1 - self.s0, self.lat1 - self.lat0)


@dataclass
class VehicleActor:
    """A scenario vehicle (see the module docstring).

    Attributes:
        role: what it is in its scenario (e.g. "obstacle", "adversary", "emergency").
        cls / size: `AgentClass` and (length, width, height) [m].
        path: its path; it stands at `start_u` along it until it moves.
        behaviour: `VehicleBehaviour`; speed: target speed [m/s] (EMERGENCY: the increment over the ego's).
        appear / move / vanish: condition indices (`INIT`, `NEVER` allowed for appear / vanish).
        finish: at the end of its path (`Finish`).
        brake / release: FOLLOW brakes hard to a stop from `brake` until `release` (HardBreakRoute).
        appear_ahead: > 0: when it appears it is placed this far ahead of the ego's route progress,
            at the ego's speed (its path must be the route, path u = route s).
        door: extra width [m] when it moves (an opened door, on the `door_side`: +1 left, -1 right).
        sync_u / sync_ref_s: SYNC: reach path u = sync_u when the ego reaches route s = sync_ref_s, then
            FOLLOW at `speed` × the ego's speed then.
    """

    role: str
    cls: AgentClass
    size: tuple[float, float, float]
    path: list[PathSegment]
    behaviour: VehicleBehaviour = VehicleBehaviour.PARKED
    speed: float = 0.0
    appear: int = INIT
    move: int = NEVER
    vanish: int = NEVER
    finish: Finish = Finish.STOP
    start_u: float = 0.0
    brake: int = NEVER
    release: int = NEVER
    appear_ahead: float = 0.0
    door: float = 0.0
    door_side: float = -1.0
    sync_u: float = 0.0
    sync_ref_s: float = 0.0

    @property
    def path_length(self) -> float:
        return float(sum(seg.length for seg in self.path))


@dataclass
class Walker:
    """A scenario pedestrian: stands at `start` [2] heading `yaw` once it appears; from `move` (+ `delay`
    seconds) walks `distance` metres straight at `speed`, then disappears."""

    role: str
    start: np.ndarray
    yaw: float
    speed: float
    distance: float
    appear: int = INIT
    move: int = NEVER
    delay: float = 0.0


@dataclass
class Prop:
    """A static prop or object: box (x, y, yaw, length, width), height; exists from `appear` until `vanish`."""

    role: str
    cls: AgentClass
    box: tuple[float, float, float, float, float]
    height: float
    appear: int = INIT
    vanish: int = NEVER


@dataclass
class Flow:
    """`ActorFlow`: while `active` holds, a vehicle starts at the path's start whenever the last one is more
    than a gap (uniform in `gap`) along; vehicles drive at `speed` ignoring others (CONSTANT) until one of
    the flow touches the ego, then with IDM (FOLLOW); they vanish `sink_dist` before the path's end.
    `initial`: the path is populated when the flow starts (`initial_actors`; junction lanes too when
    `initial_junction`)."""

    role: str
    path: list[PathSegment]
    speed: float
    gap: tuple[float, float]
    active: int
    cls: AgentClass = AgentClass.CAR
    size: tuple[float, float, float] = (4.6, 1.9, 1.5)
    initial: bool = False
    initial_junction: bool = False
    sink_dist: float = 2.0
    follow: bool = False

    @property
    def path_length(self) -> float:
        return float(sum(seg.length for seg in self.path))

    @property
    def capacity(self) -> int:
        """Vehicle slots the flow needs (all alive at once at the smallest gap)."""
        return int(min(40, math.ceil(self.path_length / max(self.gap[0], 1.0)) + 2))


@dataclass(frozen=True)
class LightFreeze:
    """`TrafficLightFreezer`: head `head` shows `state` (a `HeadState`) from `start` until `stop` (`NEVER`:
    until the scenario ends)."""

    head: int
    state: int
    start: int
    stop: int = NEVER


@dataclass(frozen=True)
class Window:
    """An effect from `start` until `stop` (`NEVER`: until the scenario ends): see `WindowKind`. CLEAR
    uses lane / s0 / s1; NOISE uses params (throttle mean, throttle std, steer mean, steer std)."""

    kind: WindowKind
    start: int
    stop: int = NEVER
    lane: int = -1
    s0: float = 0.0
    s1: float = 0.0
    params: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


@dataclass
class ScenarioSpec:
    """One built scenario.

    Attributes:
        name / type / family: from the route file and the catalog.
        trigger_s: route arc length of its trigger point [m]; trigger_xy: its world position.
        conds: its conditions (indices local to the scenario; each refers only to earlier ones).
        end: the condition that ends it; timeout: the `ScenarioTimeout` condition (or None: none).
        emergency: index of the emergency vehicle whose overtaking `YieldToEmergencyVehicleTest` judges.
        ego_start: (x, y, yaw) where the ego starts instead of the route start (ParkingExit), or None.
        expert: what a driver must do to pass it (for the expert and the report).
    """

    name: str
    type: str
    family: str
    trigger_s: float
    trigger_xy: np.ndarray
    conds: list[Cond] = field(default_factory=list)
    end: int = -1
    timeout: int | None = None
    vehicles: list[VehicleActor] = field(default_factory=list)
    walkers: list[Walker] = field(default_factory=list)
    props: list[Prop] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    lights: list[LightFreeze] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    emergency: int | None = None
    ego_start: tuple[float, float, float] | None = None
    expert: str = ""

    # ------------------------------------------------------------------ condition constructors
    def add(self, kind: CondKind, ints: tuple[int, ...] = (), floats: tuple[float, ...] = ()) -> int:
        refs = (
            ints[:1]
            if kind in (CondKind.AFTER, CondKind.DRIVE)
            else ints
            if kind in (CondKind.ANY, CondKind.ALL)
            else ()
        )
        for q in refs:
            if not 0 <= q < len(self.conds):
                raise ValueError(f"{self.name}: condition refers to {q}, not an earlier condition")
        self.conds.append(Cond(kind, tuple(int(i) for i in ints), tuple(float(f) for f in floats)))
        return len(self.conds) - 1

    def started(self) -> int:
        return self.add(CondKind.STARTED)

    def ego_near(self, xy: np.ndarray, dist: float, tta: float = 0.0) -> int:
        """The ego centre within `dist` of `xy`, or reaching it within `tta` seconds at its speed."""
        return self.add(CondKind.EGO_NEAR, floats=(xy[0], xy[1], dist, tta))

    def ahead_of_point(self, who: tuple[ActorGroup, int] | None, xy, yaw: float, max_dist: float = math.inf) -> int:
        """`who` (None: the ego) is in front of the point `xy` facing `yaw` (within `max_dist` of it)."""
        g, i = (-1, EGO) if who is None else (int(who[0]), who[1])
        return self.add(CondKind.AHEAD_OF_POINT, (g, i), (xy[0], xy[1], yaw, max_dist))

    def ahead_of_actor(self, who: int, of: int, margin: float, max_dist: float = math.inf) -> int:
        """Vehicle actor `who` (`EGO`: the ego) is `margin` metres in front of vehicle actor `of` (`EGO`: the ego)."""
        return self.add(CondKind.AHEAD_OF_ACTOR, (who, of), (margin, max_dist))

    def ego_past_s(self, s: float) -> int:
        return self.add(CondKind.EGO_PAST_S, floats=(s,))

    def actor_done(self, group: ActorGroup, index: int) -> int:
        return self.add(CondKind.ACTOR_DONE, (int(group), index))

    def actor_travelled(self, index: int, dist: float) -> int:
        """Vehicle actor `index` is `dist` metres along its path."""
        return self.add(CondKind.ACTOR_TRAVELLED, (index,), (dist,))

    def actor_near_ego(self, index: int, dist: float) -> int:
        return self.add(CondKind.ACTOR_NEAR_EGO, (index,), (dist,))

    def after(self, q: int, seconds: float) -> int:
        return self.add(CondKind.AFTER, (q,), (seconds,))

    def drive(self, q: int, meters: float, who: int = EGO) -> int:
        """The ego (or vehicle actor `who`) drove `meters` since condition `q` latched."""
        return self.add(CondKind.DRIVE, (q, who), (meters,))

    def ego_far(self, q: int, xy, dist: float) -> int:
        """After condition `q` latched, the ego centre is farther than `dist` from `xy`."""
        return self.add(CondKind.EGO_FAR, (q,), (xy[0], xy[1], dist))

    def any(self, a: int, b: int) -> int:
        return self.add(CondKind.ANY, (a, b))

    def all(self, a: int, b: int) -> int:
        return self.add(CondKind.ALL, (a, b))

    # ------------------------------------------------------------------ end conditions
    def finish(self, end: int, timeout_seconds: float | None = None) -> None:
        """Set the end condition, with a `ScenarioTimeout` of `timeout_seconds` (from the start) as an
        alternative end that emits `scenario_timeouts` and switches the blocked test off meanwhile."""
        if timeout_seconds is None:
            self.end = end
            return
        start = next(i for i, c in enumerate(self.conds) if c.kind == CondKind.STARTED)
        self.timeout = self.after(start, timeout_seconds)
        self.end = self.any(end, self.timeout)
        self.windows.append(Window(WindowKind.BLOCKED_OFF, start))
