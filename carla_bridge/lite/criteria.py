"""The closed-loop criteria of the lite simulator, judged after each step for all W worlds under the
world's rule set (`LiteConfig.rules`), as the leaderboard's criteria tree ticks them: route completion,
outside route lanes, collisions, red lights, stop signs, minimum speed, route deviation, agent
blocked and the route timeout. Each criterion's rule is a function of `carla_bridge.infractions`;
here they read the new `WorldState`, keep their bookkeeping in `RouteState` and turn into `Event`s
(located at the ego's box centre, the actor location the criteria use).

When a route ends (completed, deviated, blocked, timed out — or `finish` for a run stopped from
outside) the criteria terminate: the last min-speed checkpoint is judged when the route got beyond
its final fraction, the distance outside the route lanes becomes one event, and a `route_completion`
event carries the completion. A world whose route ended keeps its bookkeeping frozen.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from agents import EGO, AgentClass
from carla_bridge.backend import Event
from carla_bridge.infractions.blocked import blocked_update
from carla_bridge.infractions.collision import collision_update, contacts, hit_from_behind
from carla_bridge.infractions.completion import completion_update
from carla_bridge.infractions.min_speed import (
    MinSpeedState,
    emits,
    min_speed_finish,
    min_speed_update,
    traffic_mean_speed,
)
from carla_bridge.infractions.outside_lanes import (
    FAST_LATERAL,
    LaneFacts,
    OutsideLanesState,
    lane_facts,
    outside_lanes_update,
)
from carla_bridge.infractions.red_light import red_light_candidates, tail_point
from carla_bridge.infractions.route_deviation import route_deviation_update
from carla_bridge.infractions.route_points import closest_index, ego_centre, lateral_distance
from carla_bridge.infractions.route_timeout import route_timeout_update
from carla_bridge.infractions.stop_sign import check_waypoints, near_stop, stop_sign_step
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.lights import HeadState
from carla_bridge.lite.population import PED_SIZE
from carla_bridge.lite.route import RouteData
from carla_bridge.lite.state import RouteState, WorldState
from carla_bridge.lite.step import StepInfo
from carla_bridge.lite.views import agent_boxes
from carla_bridge.progress import project_progress
from carla_bridge.scoring import ROUTE_COMPLETION, InfractionKind

_HALF_LENGTH = 0.5 * EGO.length
_F64, _I64, _BOOL = torch.float64, torch.int64, torch.bool


def update_progress(
    route: RouteData, state: RouteState, ego_pose: Tensor, first: bool = False
) -> tuple[RouteState, Tensor]:
    """Project the egos `ego_pose [W, 3]` on the route polyline (`carla_bridge.progress`, the rear-axle
    progress the views and the autopilot use); returns the new route state and the index `[W]` of the
    segment each projects on."""
    prog, lat, seg = project_progress(
        route.xy.numpy(), route.s.numpy(), ego_pose[:, :2].contiguous().numpy(), state.progress.numpy(), not first
    )
    return replace(state, progress=torch.from_numpy(prog), lateral=torch.from_numpy(lat)), torch.from_numpy(seg)


def initial_route_state(route: RouteData, town, ego_pose: Tensor, agents: int, cfg: LiteConfig) -> RouteState:
    """The route bookkeeping of egos starting at `ego_pose [W, 3]` (the criteria start at the route
    waypoint before the nearest one; the nearest driving lane seeds the wrong-lane state machine).

    Args:
        agents: A, the number of agent slots (vehicles + pedestrians + statics).
        cfg: the simulator's settings (its rule set).
    """
    W = ego_pose.shape[0]
    pts = route.criteria.points
    loc = ego_centre(ego_pose.numpy())
    nearest, _ = closest_index(pts.xy, loc, np.zeros(W, dtype=np.int64), len(pts))
    start = torch.from_numpy(np.maximum(nearest - 1, 0))
    facts = lane_facts(town, route.criteria.parking, loc, cfg.rules.outside_lanes)
    z = torch.zeros(W, dtype=_F64)
    f, t = torch.zeros(W, dtype=_BOOL), torch.ones(W, dtype=_BOOL)
    none = torch.full((W,), -1, dtype=_I64)
    sr = route.stop_s.shape[0]
    rs = RouteState(
        progress=z,
        lateral=z,
        in_contact=torch.zeros(W, agents, dtype=_BOOL),
        completion_index=start,
        completion=torch.from_numpy(np.round(pts.accum[start.numpy()] / pts.length * 100.0, 2)),
        completed=f,
        collision_id=none,
        collision_time=z,
        collision_xy=torch.zeros(W, 2, dtype=_F64),
        collision_has_xy=f,
        red_light_last=none,
        stop_target=none,
        stop_completed=f,
        stop_last_failed=none,
        stop_stopped=torch.zeros(W, sr, dtype=_BOOL),
        ol_index=start,
        ol_total=z,
        ol_wrong=z,
        ol_wrong_lane=f,
        ol_last_road=none,
        ol_last_lane=none,
        ol_last_junction=torch.from_numpy(facts.junction.copy()),
        ol_last_yaw=torch.from_numpy(facts.yaw.copy()),
        ol_direction_active=t,
        dev_index=start,
        dev_out=z,
        dev_safe=t,
        ms_index=start,
        ms_current=torch.from_numpy(pts.accum[start.numpy()].copy()),
        ms_traffic=z,
        ms_ego=z,
        ms_points=z,
        blocked_since=torch.full((W,), -math.inf, dtype=_F64),
        blocked_active=t,
        timeout_index=start,
        timeout_budget=torch.full((W,), cfg.rules.route_timeout.min_timeout, dtype=_F64),
        odometer=z,
        done=f,
    )
    rs, _ = update_progress(route, rs, ego_pose, first=True)
    return rs


def switch_tests(
    state: WorldState, worlds: Tensor, blocked: bool | None = None, wrong_direction: bool | None = None
) -> WorldState:
    """Switch the agent-blocked and the wrong-direction tests on or off in `worlds [W]` (bool), as the
    scenarios' `AC_SwitchActorBlockedTest` / `SwitchWrongDirectionTest` do; switching the blocked test
    restarts its clock."""
    rs = state.route
    changes = {}
    if blocked is not None:
        changes["blocked_active"] = torch.where(worlds, torch.tensor(bool(blocked)), rs.blocked_active)
        changes["blocked_since"] = torch.where(worlds, state.time, rs.blocked_since)
    if wrong_direction is not None:
        changes["ol_direction_active"] = torch.where(
            worlds, torch.tensor(bool(wrong_direction)), rs.ol_direction_active
        )
    return replace(state, route=replace(rs, **changes))


class _Emitter:
    """Collects the events of one step, for worlds whose route had not ended before it."""

    def __init__(self, active: np.ndarray, time: np.ndarray, location: np.ndarray) -> None:
        self.active, self.time, self.location = active, time, location
        self.events: list[Event] = []

    def __call__(self, kind: str, w: int, others: tuple[int, ...] = (), details: dict | None = None) -> None:
        if self.active[w]:
            loc = (round(float(self.location[w, 0]), 3), round(float(self.location[w, 1]), 3))
            self.events.append(Event(kind, float(self.time[w]), loc, others, details or {}, world=int(w)))


def _collisions(state, info, rs, loc, speed, time, active, cfg, emit) -> dict[str, Tensor]:
    contact = contacts(info.ego_box.numpy(), state.vehicles, state.pedestrians, state.statics, PED_SIZE[:2])
    ids = np.zeros(contact.shape, dtype=np.int64)
    if contact.any():
        boxes, _, cls, ids_t, is_static = agent_boxes(state)
        ids = ids_t.numpy()
    counted, last_id, last_time, last_xy, has_xy = collision_update(
        contact & active[:, None],
        ids,
        loc,
        speed,
        time,
        rs.collision_id.numpy(),
        rs.collision_time.numpy(),
        rs.collision_xy.numpy(),
        rs.collision_has_xy.numpy(),
        cfg.rules.collision,
    )
    for w, a in zip(*np.nonzero(counted)):  # only where boxes were computed (a count needs a contact)
        c = AgentClass(int(cls[w, a]))
        if c == AgentClass.PEDESTRIAN:
            kind = InfractionKind.COLLISION_PEDESTRIAN
        elif bool(is_static[w, a]):
            kind = InfractionKind.COLLISION_STATIC
        else:
            kind = InfractionKind.COLLISION_VEHICLE
        other = boxes[w, a].numpy()
        centre_pose = np.array([loc[w, 0], loc[w, 1], float(state.ego.pose[w, 2])])
        emit(
            kind.value,
            int(w),
            (int(ids[w, a]),),
            {
                "other_class": c.name.lower(),
                "other_xy": [round(float(other[0]), 3), round(float(other[1]), 3)],
                "ego_speed": round(float(speed[w]), 3),
                "hit_from_behind": bool(hit_from_behind(centre_pose, other[:2], EGO.length)),
            },
        )
    return {
        "in_contact": torch.from_numpy(contact),
        "collision_id": torch.from_numpy(last_id),
        "collision_time": torch.from_numpy(last_time),
        "collision_xy": torch.from_numpy(last_xy),
        "collision_has_xy": torch.from_numpy(has_xy),
    }


def _red_lights(info, rs, route, town, loc, yaw, cfg, emit) -> dict[str, Tensor]:
    lines = route.criteria.lines
    last = rs.red_light_last.numpy().copy()
    red = info.lights.numpy() == int(HeadState.RED)
    rule = cfg.rules.red_light
    for w, m in red_light_candidates(loc, yaw, red, last, lines, _HALF_LENGTH, rule):
        h = int(lines.head[m])
        if h == last[w]:
            continue  # this light was run already this step through another of its lanes
        tail = tail_point(loc[w], float(yaw[w]), _HALF_LENGTH, rule)
        lane, _, _ = town.project(tail[None])
        ln = town.lanes[int(lane[0])]
        if (ln.road_id, ln.lane_id) != tuple(int(x) for x in lines.road_lane[m]):
            continue
        last[w] = h
        centre = lines.centre[h]
        emit(
            InfractionKind.RED_LIGHT.value,
            int(w),
            details={"light": h, "light_xy": [round(float(centre[0]), 3), round(float(centre[1]), 3)]},
        )
    return {"red_light_last": torch.from_numpy(last)}


def _stop_signs(rs, route, town, loc, yaw, speed, active, cfg, emit) -> dict[str, Tensor]:
    boxes, rule = route.criteria.boxes, cfg.rules.stop_sign
    target = rs.stop_target.numpy().copy()
    if not len(boxes.half):
        return {}
    completed, last_failed = rs.stop_completed.numpy().copy(), rs.stop_last_failed.numpy().copy()
    stopped = rs.stop_stopped.clone()
    route_index = {int(k): i for i, k in enumerate(route.stop_sign.tolist())}
    for w in np.flatnonzero(active & (near_stop(loc, boxes, rule) | (target >= 0))):
        pts, lane_dir = check_waypoints(town, loc[w], rule)
        target[w], completed[w], last_failed[w], ran = stop_sign_step(
            pts,
            lane_dir,
            float(yaw[w]),
            float(speed[w]),
            int(target[w]),
            bool(completed[w]),
            int(last_failed[w]),
            boxes,
            rule,
        )
        if target[w] >= 0 and completed[w] and int(target[w]) in route_index:
            stopped[w, route_index[int(target[w])]] = True
        if ran >= 0:
            c = boxes.centre[ran]
            emit(
                InfractionKind.STOP_SIGN.value,
                int(w),
                details={"stop": int(boxes.sign[ran]), "stop_xy": [round(float(c[0]), 3), round(float(c[1]), 3)]},
            )
    return {
        "stop_target": torch.from_numpy(target),
        "stop_completed": torch.from_numpy(completed),
        "stop_last_failed": torch.from_numpy(last_failed),
        "stop_stopped": stopped,
    }


def _lane_facts(
    route: RouteData, town, loc: np.ndarray, index: np.ndarray, active: np.ndarray, cfg: LiteConfig
) -> LaneFacts:
    """Nearest-lane facts: from the route's own waypoint when the ego is within `FAST_LATERAL` of the
    route, else from the town's lane projection (only where the route is still running: the others'
    bookkeeping is frozen anyway)."""
    pts = route.criteria.points
    rule = cfg.rules.outside_lanes
    near = lateral_distance(pts.xy, loc, index, 2, rule.window + 2) <= FAST_LATERAL
    k, _ = closest_index(pts.xy, loc, np.maximum(index - 1, 0), rule.window + 2)
    road_lane = pts.road_lane[k]
    facts = LaneFacts(np.zeros(len(loc), dtype=bool), road_lane[:, 0], road_lane[:, 1], pts.junction[k], pts.yaw[k])
    far = np.flatnonzero(~near & active)
    if len(far):
        slow = lane_facts(town, route.criteria.parking, loc[far], rule)
        for name in ("outside", "road", "lane", "junction", "yaw"):
            getattr(facts, name)[far] = getattr(slow, name)
    return facts


def _outside_lanes(rs, route, town, loc, yaw, active, cfg) -> dict[str, Tensor]:
    facts = _lane_facts(route, town, loc, rs.ol_index.numpy(), active, cfg)
    ol = outside_lanes_update(route.criteria.points, loc, yaw, facts, _ol_state(rs), cfg.rules.outside_lanes)
    return {f"ol_{k}": torch.from_numpy(np.asarray(getattr(ol, k))) for k in _OL_FIELDS}


_OL_FIELDS = (
    "index",
    "total",
    "wrong",
    "wrong_lane",
    "last_road",
    "last_lane",
    "last_junction",
    "last_yaw",
    "direction_active",
)


def _ol_state(rs: RouteState) -> OutsideLanesState:
    return OutsideLanesState(**{k: getattr(rs, f"ol_{k}").numpy() for k in _OL_FIELDS})


def _ms_state(rs: RouteState) -> MinSpeedState:
    return MinSpeedState(
        index=rs.ms_index.numpy(),
        current=rs.ms_current.numpy(),
        traffic_sum=rs.ms_traffic.numpy(),
        ego_sum=rs.ms_ego.numpy(),
        points=rs.ms_points.numpy(),
    )


def _ms_fields(ms: MinSpeedState) -> dict[str, Tensor]:
    return {
        "ms_index": torch.from_numpy(np.asarray(ms.index)),
        "ms_current": torch.from_numpy(np.asarray(ms.current, dtype=np.float64)),
        "ms_traffic": torch.from_numpy(np.asarray(ms.traffic_sum, dtype=np.float64)),
        "ms_ego": torch.from_numpy(np.asarray(ms.ego_sum, dtype=np.float64)),
        "ms_points": torch.from_numpy(np.asarray(ms.points, dtype=np.float64)),
    }


def _min_speed_event(emit, w: int, value: float, at: float, cfg: LiteConfig) -> None:
    """A min-speed checkpoint of world `w` judged `value` [%] at route distance `at` [m]."""
    if emits(value, cfg.rules.min_speed):
        emit(InfractionKind.MIN_SPEED.value, w, details={"percentage": value, "route_m": round(at, 1)})


def _terminate(rs: RouteState, route: RouteData, ending: np.ndarray, cfg: LiteConfig, emit) -> RouteState:
    """The criteria's terminate() for the `ending [W]` worlds: the last min-speed checkpoint, the
    outside-route-lanes event, the route completion event; marks them done."""
    pts = route.criteria.points
    ms = _ms_state(rs)
    for w, value in min_speed_finish(pts, ms, np.flatnonzero(ending), cfg.rules.min_speed).items():
        _min_speed_event(emit, w, value, float(pts.accum[ms.index[w]]), cfg)
    ol = _ol_state(rs)
    pct = ol.percentage()
    for w in np.flatnonzero(ending):
        if ol.wrong[w] > 0:
            emit(
                InfractionKind.OUTSIDE_ROUTE_LANES.value,
                int(w),
                details={"distance": round(float(ol.wrong[w]), 3), "percentage": float(pct[w])},
            )
        emit(ROUTE_COMPLETION, int(w), details={"percentage": float(rs.completion[w])})
    return replace(rs, done=rs.done | torch.from_numpy(ending))


def judge(
    prev: WorldState, state: WorldState, info: StepInfo, route: RouteData, cfg: LiteConfig, town
) -> tuple[WorldState, list[Event]]:
    """Judge one step: update the route bookkeeping of `state` (after the step from `prev`) and emit
    the step's events (see the module docstring)."""
    r0 = prev.route
    active = ~r0.done.numpy()
    if not active.any():  # every route ended: its bookkeeping stays frozen
        return replace(state, route=r0), []
    rules = cfg.rules
    pts = route.criteria.points
    pose = state.ego.pose.numpy()
    speed, time = state.ego.speed.numpy(), state.time.numpy()
    loc, yaw = ego_centre(pose), pose[:, 2]
    emit = _Emitter(active, time, loc)
    rs, _ = update_progress(route, r0, state.ego.pose)
    changes: dict[str, Tensor] = {}
    # RouteCompletionTest
    c_index, c_value, completed = completion_update(
        pts, loc, r0.completion_index.numpy(), r0.completed.numpy(), rules.completion
    )
    changes.update(
        completion_index=torch.from_numpy(c_index),
        completion=torch.from_numpy(c_value),
        completed=torch.from_numpy(completed),
    )
    changes.update(_outside_lanes(r0, route, town, loc, yaw, active, cfg))
    changes.update(_collisions(state, info, r0, loc, speed, time, active, cfg, emit))
    if len(route.criteria.lines.head):
        changes.update(_red_lights(info, r0, route, town, loc, yaw, cfg, emit))
    changes.update(_stop_signs(r0, route, town, loc, yaw, speed, active, cfg, emit))
    # MinimumSpeedRouteTest (all background vehicles, stopped ones at 0)
    v = state.vehicles
    traffic, has_traffic = traffic_mean_speed(v.speed.numpy(), v.valid.numpy())
    ms, judged = min_speed_update(pts, loc, speed, traffic, has_traffic, _ms_state(r0), rules.min_speed)
    for w, value in judged.items():
        _min_speed_event(emit, w, value, float(pts.accum[ms.index[w]]), cfg)
    changes.update(_ms_fields(ms))
    # InRouteTest, ActorBlockedTest, RouteTimeoutBehavior
    d_index, d_out, d_safe, deviated = route_deviation_update(
        pts, loc, r0.dev_index.numpy(), r0.dev_out.numpy(), r0.dev_safe.numpy(), rules.route_deviation
    )
    since, blocked = blocked_update(speed, time, r0.blocked_since.numpy(), r0.blocked_active.numpy(), rules.blocked)
    t_index, budget, timed_out = route_timeout_update(
        pts, loc, time, r0.timeout_index.numpy(), r0.timeout_budget.numpy(), rules.route_timeout
    )
    changes.update(
        dev_index=torch.from_numpy(d_index),
        dev_out=torch.from_numpy(d_out),
        dev_safe=torch.from_numpy(d_safe),
        blocked_since=torch.from_numpy(since),
        timeout_index=torch.from_numpy(t_index),
        timeout_budget=torch.from_numpy(budget),
        odometer=r0.odometer + info.step_distance,
    )
    rs = replace(rs, **changes)
    rs = _frozen_where_done(r0, rs, active)
    for w in np.flatnonzero(deviated):
        emit(InfractionKind.ROUTE_DEVIATION.value, int(w))
    for w in np.flatnonzero(blocked):
        emit(InfractionKind.AGENT_BLOCKED.value, int(w))
    for w in np.flatnonzero(timed_out):
        emit(InfractionKind.ROUTE_TIMEOUT.value, int(w))
    ending = active & (completed | deviated | blocked | timed_out)
    if ending.any():
        rs = _terminate(rs, route, ending, cfg, emit)
    return replace(state, route=rs), emit.events


def finish(state: WorldState, route: RouteData, cfg: LiteConfig) -> tuple[WorldState, list[Event]]:
    """End the routes of every world still running (a run stopped from outside): the criteria's
    terminate() events (see `_terminate`); the worlds are then done."""
    rs = state.route
    ending = ~rs.done.numpy()
    emit = _Emitter(ending, state.time.numpy(), ego_centre(state.ego.pose.numpy()))
    if ending.any():
        rs = _terminate(rs, route, ending, cfg, emit)
    return replace(state, route=rs), emit.events


def _frozen_where_done(old: RouteState, new: RouteState, active: np.ndarray) -> RouteState:
    """`new` in the `active [W]` worlds, `old` (frozen) where the route had ended."""
    if active.all():
        return new
    act = torch.from_numpy(active)
    out = {}
    for f in dataclasses.fields(RouteState):
        a, b = getattr(old, f.name), getattr(new, f.name)
        out[f.name] = torch.where(act.view(-1, *([1] * (b.dim() - 1))), b, a)
    return RouteState(**out)
