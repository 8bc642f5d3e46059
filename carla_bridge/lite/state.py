"""The lite simulator's state: frozen dataclasses of tensors with a leading world dim W.

Every field of every group has the shape `[W, ...]`; an agent slot that holds no agent is marked by
its group's `valid` mask (never by a far-away sentinel position), so a scenario can keep slots for
actors that appear later. Continuous fields are float64 (the step integrates them), ids and lanes
int64, flags bool. The step never writes into a tensor in place: it builds a new `WorldState`, so a
state object is a snapshot by itself and branching is an index over W (`select`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor

S = TypeVar("S")


def _map(obj: S, fn) -> S:
    """A copy of a state group (or the whole state) with `fn` applied to every tensor."""
    changes = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        changes[f.name] = fn(v) if isinstance(v, Tensor) else _map(v, fn)
    return dataclasses.replace(obj, **changes)


def _flat(obj: Any, prefix: str = "") -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, Tensor):
            out[prefix + f.name] = v
        else:
            out.update(_flat(v, prefix + f.name + "."))
    return out


class _Batched:
    """Shared behaviour of the state groups (all fields `[W, ...]`)."""

    def select(self: S, worlds: Tensor) -> S:
        """The worlds `worlds [K]` (int64 indices, repeats allowed), as new tensors."""
        return _map(self, lambda t: t.index_select(0, worlds).contiguous())

    def clone(self: S) -> S:
        return _map(self, lambda t: t.clone())

    def flat(self) -> dict[str, Tensor]:
        """Every tensor keyed by its dotted field path (e.g. `vehicles.s`)."""
        return _flat(self)

    def equal(self, other: Any) -> bool:
        """Bitwise equality of every tensor (same fields, shapes, dtypes and values)."""
        a, b = self.flat(), other.flat()
        return a.keys() == b.keys() and all(
            x.dtype == b[k].dtype and x.shape == b[k].shape and torch.equal(x, b[k]) for k, x in a.items()
        )


@dataclass(frozen=True)
class EgoState(_Batched):
    """The ego (rear axle).

    Attributes:
        pose: `[W, 3]` (x, y, yaw) world frame.
        speed: `[W]` [m/s].
        control: `[W, 3]` the last applied (throttle, steer, brake).
        history: `[W, Hb, 3]` poses of the last Hb steps, oldest first, the last = now.
    """

    pose: Tensor
    speed: Tensor
    control: Tensor
    history: Tensor


@dataclass(frozen=True)
class VehicleState(_Batched):
    """Background vehicles `[W, N]`: lane following at an arc length, with IDM speed control.

    Attributes:
        lane / s: lane id and box-centre arc length on it [m]; next: the chosen successor (-1: dead end).
        lateral: offset of the box centre to the left of the lane centreline [m] (0: on the centreline).
        speed [m/s]; factor: share of the speed limit it drives at.
        key: int64 seed of its hashed choices; trans: lane transitions so far (hash counter).
        stop_done: it has stopped at the stop sign of its lane; still: seconds standing still.
        size: `[W, N, 3]` (length, width, height); cls: `AgentClass`; track_id; color `[W, N, 3]` int64.
        valid: the slot holds a vehicle.
        xy `[W, N, 2]`, yaw, z: box-centre pose derived from (lane, s, lateral).
    """

    lane: Tensor
    s: Tensor
    next: Tensor
    lateral: Tensor
    speed: Tensor
    factor: Tensor
    key: Tensor
    trans: Tensor
    stop_done: Tensor
    still: Tensor
    size: Tensor
    cls: Tensor
    track_id: Tensor
    color: Tensor
    valid: Tensor
    xy: Tensor
    yaw: Tensor
    z: Tensor


@dataclass(frozen=True)
class PedestrianState(_Batched):
    """Pedestrians `[W, P]` walking back and forth along 4-point paths.

    Attributes:
        path: `[W, P, 4, 2]` world polyline; cum `[W, P, 4]` arc length at its points; road
            `[W, P, 3]` bool (segment crosses the road).
        u: arc position [m]; direction: ±1; v0: walking speed [m/s]; speed: current speed [m/s].
        track_id; valid.
        xy `[W, P, 2]`, yaw: derived pose.
    """

    path: Tensor
    cum: Tensor
    road: Tensor
    u: Tensor
    direction: Tensor
    v0: Tensor
    speed: Tensor
    track_id: Tensor
    valid: Tensor
    xy: Tensor
    yaw: Tensor


@dataclass(frozen=True)
class StaticState(_Batched):
    """Parked cars and road-edge props `[W, S]`.

    Attributes:
        box: `[W, S, 5]` (x, y, yaw, length, width); height `[W, S]`; cls `AgentClass`; track_id;
        parked: a parked vehicle (not a prop); valid.
    """

    box: Tensor
    height: Tensor
    cls: Tensor
    track_id: Tensor
    parked: Tensor
    valid: Tensor


@dataclass(frozen=True)
class RouteState(_Batched):
    """The ego's progress on its route and the criteria's bookkeeping `[W]` (see `criteria` and
    `carla_bridge.infractions`; indices count the route's criteria waypoints).

    Attributes:
        progress: rear-axle arc length on the route polyline [m] (monotone); lateral: distance to it [m].
        in_contact: `[W, A]` bool, the ego's box touches each agent (vehicles, pedestrians, statics).
        completion_index / completion: RouteCompletionTest's waypoint and value [%]; completed: bool.
        collision_id / collision_time / collision_xy `[W, 2]` / collision_has_xy: CollisionTest's memory.
        red_light_last: head of the last red light run (-1: none).
        stop_target / stop_completed / stop_last_failed: RunningStopTest; stop_stopped `[W, Sr]`: the ego
            completed its stop at each stop sign of the route.
        ol_index / ol_total / ol_wrong / ol_wrong_lane / ol_last_road / ol_last_lane / ol_last_junction /
            ol_last_yaw / ol_direction_active: OutsideRouteLanesTest.
        dev_index / dev_out / dev_safe: InRouteTest.
        ms_index / ms_current / ms_traffic / ms_ego / ms_points: MinimumSpeedRouteTest.
        blocked_since / blocked_active: ActorBlockedTest (since: -inf before the first step).
        timeout_index / timeout_budget: RouteTimeoutBehavior.
        odometer: distance driven [m]; done: the route ended.
    """

    progress: Tensor
    lateral: Tensor
    in_contact: Tensor
    completion_index: Tensor
    completion: Tensor
    completed: Tensor
    collision_id: Tensor
    collision_time: Tensor
    collision_xy: Tensor
    collision_has_xy: Tensor
    red_light_last: Tensor
    stop_target: Tensor
    stop_completed: Tensor
    stop_last_failed: Tensor
    stop_stopped: Tensor
    ol_index: Tensor
    ol_total: Tensor
    ol_wrong: Tensor
    ol_wrong_lane: Tensor
    ol_last_road: Tensor
    ol_last_lane: Tensor
    ol_last_junction: Tensor
    ol_last_yaw: Tensor
    ol_direction_active: Tensor
    dev_index: Tensor
    dev_out: Tensor
    dev_safe: Tensor
    ms_index: Tensor
    ms_current: Tensor
    ms_traffic: Tensor
    ms_ego: Tensor
    ms_points: Tensor
    blocked_since: Tensor
    blocked_active: Tensor
    timeout_index: Tensor
    timeout_budget: Tensor
    odometer: Tensor
    done: Tensor


@dataclass(frozen=True)
class ScenarioState(_Batched):
    """The route's scenarios (`carla_bridge.scenarios`) in W worlds: C scenarios, Q conditions, K scenario
    vehicles (slots after the background vehicles), Pq walkers, Sq props, F flows, H light heads.

    Attributes:
        phase: `[W, C]` int64 `ScenarioPhase` (DORMANT, INITIALISED, RUNNING, ENDED); timed_out /
            yield_failed `[W, C]` bool: it ended by its `ScenarioTimeout` / with the ego still in front of
            its emergency vehicle.
        cond_on `[W, Q]` bool, cond_time / cond_odo `[W, Q]`: latched conditions, with the time [s] and
            the ego odometer [m] when they latched (-1 before; a DRIVE of an actor keeps its start mark there).
        veh_phase / veh_mode `[W, K]` int64: `ActorPhase` and current `VehicleBehaviour`; veh_u: arc
            length along its path [m]; veh_speed / veh_ref_speed: speed and target speed [m/s];
            veh_travel: distance driven since it moved [m]; veh_spawns: how often the slot spawned.
        walker_phase `[W, Pq]` int64, walker_walked [m], walker_clock [s] (waiting before walking);
        prop_phase `[W, Sq]` int64.
        flow_gap `[W, F]` [m] next spawn gap, flow_count / flow_last int64 (spawns so far, last slot),
            flow_contact / flow_started bool.
        light_override `[W, H]` int64: `HeadState` a scenario freezes each head at (-1: none).
        allow_opposite / blocked_off `[W]` bool: a running scenario allows driving in the opposite lane
            (`SwitchWrongDirectionTest(False)`) / switches the blocked test off (`ScenarioTimeout`).
        noise `[W, 4]`: control noise (throttle mean, std, steer mean, std) in effect (`ControlLoss`).
    """

    phase: Tensor
    timed_out: Tensor
    yield_failed: Tensor
    cond_on: Tensor
    cond_time: Tensor
    cond_odo: Tensor
    veh_phase: Tensor
    veh_mode: Tensor
    veh_u: Tensor
    veh_speed: Tensor
    veh_ref_speed: Tensor
    veh_travel: Tensor
    veh_spawns: Tensor
    walker_phase: Tensor
    walker_walked: Tensor
    walker_clock: Tensor
    prop_phase: Tensor
    flow_gap: Tensor
    flow_count: Tensor
    flow_last: Tensor
    flow_contact: Tensor
    flow_started: Tensor
    light_override: Tensor
    allow_opposite: Tensor
    blocked_off: Tensor
    noise: Tensor

    @classmethod
    def initial(cls, W: int, C: int, Q: int, K: int, Pq: int, Sq: int, F: int, H: int) -> ScenarioState:
        """The state before anything happened (all DORMANT / HIDDEN, no override)."""
        i64, f64, b = torch.int64, torch.float64, torch.bool
        return cls(
            phase=torch.zeros(W, C, dtype=i64),
            timed_out=torch.zeros(W, C, dtype=b),
            yield_failed=torch.zeros(W, C, dtype=b),
            cond_on=torch.zeros(W, Q, dtype=b),
            cond_time=torch.full((W, Q), -1.0, dtype=f64),
            cond_odo=torch.zeros(W, Q, dtype=f64),
            veh_phase=torch.zeros(W, K, dtype=i64),
            veh_mode=torch.zeros(W, K, dtype=i64),
            veh_u=torch.zeros(W, K, dtype=f64),
            veh_speed=torch.zeros(W, K, dtype=f64),
            veh_ref_speed=torch.zeros(W, K, dtype=f64),
            veh_travel=torch.zeros(W, K, dtype=f64),
            veh_spawns=torch.zeros(W, K, dtype=i64),
            walker_phase=torch.zeros(W, Pq, dtype=i64),
            walker_walked=torch.zeros(W, Pq, dtype=f64),
            walker_clock=torch.zeros(W, Pq, dtype=f64),
            prop_phase=torch.zeros(W, Sq, dtype=i64),
            flow_gap=torch.zeros(W, F, dtype=f64),
            flow_count=torch.zeros(W, F, dtype=i64),
            flow_last=torch.full((W, F), -1, dtype=i64),
            flow_contact=torch.zeros(W, F, dtype=b),
            flow_started=torch.zeros(W, F, dtype=b),
            light_override=torch.full((W, H), -1, dtype=i64),
            allow_opposite=torch.zeros(W, dtype=b),
            blocked_off=torch.zeros(W, dtype=b),
            noise=torch.zeros(W, 4, dtype=f64),
        )


@dataclass(frozen=True)
class WorldState(_Batched):
    """Everything that evolves in W worlds of one town (the map and route are shared and fixed).

    Attributes:
        time: `[W]` simulation time since reset [s].
        ego, vehicles, pedestrians, statics, route, scenarios: the groups above (scenario actors occupy
            agent slots after the background agents; `scenarios` holds their bookkeeping).
    """

    time: Tensor
    ego: EgoState
    vehicles: VehicleState
    pedestrians: PedestrianState
    statics: StaticState
    route: RouteState
    scenarios: ScenarioState

    @property
    def num_worlds(self) -> int:
        return int(self.time.shape[0])

    def validate(self) -> WorldState:
        """Check that every tensor leads with W (`ValueError` naming the field); returns self."""
        w = self.num_worlds
        for name, t in self.flat().items():
            if t.dim() == 0 or t.shape[0] != w:
                raise ValueError(f"WorldState.{name} must lead with W = {w}, got shape {list(t.shape)}")
        groups = {"vehicles": self.vehicles, "pedestrians": self.pedestrians, "statics": self.statics}
        for gname, g in groups.items():
            n = g.valid.shape[1]
            for name, t in g.flat().items():
                if t.dim() < 2 or t.shape[1] != n:
                    raise ValueError(f"WorldState.{gname}.{name} must have {n} agents, got shape {list(t.shape)}")
        a = sum(g.valid.shape[1] for g in groups.values())
        if self.route.in_contact.shape[1] != a:
            raise ValueError(
                f"WorldState.route.in_contact must have A = {a} columns, got {self.route.in_contact.shape[1]}"
            )
        return self

    def repeat(self, k: int, world: int = 0) -> WorldState:
        """`k` copies of world `world`."""
        if k < 1:
            raise ValueError(f"repeat: k must be ≥ 1, got {k}")
        if not 0 <= world < self.num_worlds:
            raise ValueError(f"repeat: world {world} is not in [0, {self.num_worlds})")
        return self.select(torch.full((k,), world, dtype=torch.int64))

    @classmethod
    def from_flat(cls, tensors: dict[str, Tensor]) -> WorldState:
        """Inverse of `flat()`; `ValueError` naming a missing or unknown field."""
        return _unflat(cls, tensors, "")


def _unflat(cls, tensors: dict[str, Tensor], prefix: str):
    kwargs = {}
    known = set()
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        sub = _GROUPS.get(f.name) if cls is WorldState else None
        if sub is not None:
            kwargs[f.name] = _unflat(sub, tensors, key + ".")
            known.update(k for k in tensors if k.startswith(key + "."))
        else:
            if key not in tensors:
                raise ValueError(f"state field {key!r} is missing")
            kwargs[f.name] = tensors[key]
            known.add(key)
    if cls is WorldState and set(tensors) - known:
        raise ValueError(f"unknown state fields: {sorted(set(tensors) - known)}")
    return cls(**kwargs)


_GROUPS = {
    "ego": EgoState,
    "vehicles": VehicleState,
    "pedestrians": PedestrianState,
    "statics": StaticState,
    "route": RouteState,
    "scenarios": ScenarioState,
}
