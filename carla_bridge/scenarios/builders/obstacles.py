"""Obstacles in the ego's lane that it must drive around — in the adjacent lane, or in the opposite lane
through an oncoming flow for the *TwoWays variants (srunner `route_obstacles.py`,
`construction_crash_vehicle.py`, `vehicle_opens_door.py`, `invading_turn.py`).

One shape for all of them: actors placed `distance` metres ahead of the trigger point; once the ego is
near them (and 5 s later), the oncoming flow starts and the opposite lane is allowed; the scenario ends
when the ego is past an end point (or past the last moving obstacle and 50 m on), or after the
`ScenarioTimeout` (240 s, a `scenario_timeouts` infraction).
"""

from __future__ import annotations

import math

import numpy as np

from agents import AgentClass
from carla_bridge.scenarios.builders.common import (
    BICYCLE,
    CAR,
    KMH,
    POLICE,
    SCENARIO_TIMEOUT,
    BuildContext,
    clear_path,
    clear_route,
    left_lane,
    opposite_flow,
    parked,
    roadside_prop,
    side_sign,
)
from carla_bridge.scenarios.lanes import (
    PlacementError,
    follow,
    lane_path,
    lane_pose,
    offset_of,
    side_lane_waypoint,
)
from carla_bridge.scenarios.spec import (
    EGO,
    STARTED,
    Finish,
    Flow,
    Prop,
    ScenarioSpec,
    VehicleActor,
    VehicleBehaviour,
    Window,
    WindowKind,
)

END_DISTANCE = 50.0
WAIT = 5.0
PASS = "change lane to pass the blockage and return to the route lane"
PASS_TWO_WAYS = "wait for a gap in the oncoming flow, pass the blockage in the opposite lane, return"


def _two_ways(ctx: BuildContext, spec: ScenarioSpec, ref_s: float, after: int, gap: tuple[float, float]) -> None:
    """The TwoWays part: the oncoming flow beside `ref_s` and the opposite lane allowed from `after`."""
    lane, s, _ = left_lane(ctx, ref_s)
    opposite_flow(ctx, spec, (lane, s), gap, after)
    spec.windows.append(Window(WindowKind.ALLOW_OPPOSITE, after))


def _end_when_past(ctx: BuildContext, spec: ScenarioSpec, end_s: float) -> None:
    x, y, yaw = ctx.point(end_s)
    spec.finish(spec.ahead_of_point(None, (x, y), yaw), SCENARIO_TIMEOUT)


def _blockage(
    ctx: BuildContext, kinds: list[tuple[str, tuple, float]], offset: float, expert: str
) -> tuple[ScenarioSpec, list[float]]:
    """Vehicles (role, kind, gap after the previous) displaced `offset` × half a lane width to the
    `direction` side, the first `distance` ahead of the trigger (`_move_waypoint_forward`)."""
    spec = ctx.spec(expert)
    direction = ctx.direction()
    spec.props.append(roadside_prop(ctx, ctx.trigger_s, direction, "warning sign"))
    s = ctx.route.stop_before_junction(ctx.trigger_s, ctx.cfg.value("distance", float, 120.0))
    placed = []
    for role, kind, gap in kinds:
        s = ctx.route.stop_before_junction(s, gap)
        lane, ls = ctx.lane_at(s)
        lat = side_sign(direction) * offset * 0.5 * ctx.town.lanes[lane].width
        spec.vehicles.append(parked(role, kind, lane, ls, lat))
        placed.append(s)
    clear_route(ctx, spec, ctx.trigger_s, placed[-1] + 20.0, STARTED)
    return spec, placed


def _pass_blockage(ctx: BuildContext, spec: ScenarioSpec, near_s: float, last_s: float, two_ways: bool) -> ScenarioSpec:
    """The behaviour of `Accident` / `ParkedObstacle` (and TwoWays): 5 s after the ego came within 50 m of the
    route point `near_s`, the oncoming flow beside `last_s` (TwoWays); the end 50 m past `last_s`."""
    x, y, _ = ctx.point(near_s)
    near = spec.after(spec.ego_near((x, y), 50.0), WAIT)
    if two_ways:
        _two_ways(ctx, spec, last_s, near, ctx.cfg.interval("frequency", (20.0, 100.0)))
    _end_when_past(ctx, spec, ctx.route.stop_before_junction(last_s, END_DISTANCE))
    return spec


def accident(ctx: BuildContext) -> ScenarioSpec:
    """A police car, then two crashed cars 10 m and 6 m further, 0.6 half-widths to the side."""
    two_ways = ctx.cfg.type == "AccidentTwoWays"
    cars = [("police car", POLICE, 0.0), ("crashed car", CAR, 10.0), ("crashed car", CAR, 6.0)]
    spec, placed = _blockage(ctx, cars, 0.6, PASS_TWO_WAYS if two_ways else PASS)
    return _pass_blockage(ctx, spec, placed[1], placed[-1], two_ways)


def parked_obstacle(ctx: BuildContext) -> ScenarioSpec:
    """One car parked badly, 0.7 half-widths to the side."""
    two_ways = ctx.cfg.type == "ParkedObstacleTwoWays"
    spec, (s,) = _blockage(ctx, [("parked car", CAR, 0.0)], 0.7, PASS_TWO_WAYS if two_ways else PASS)
    return _pass_blockage(ctx, spec, s, s, two_ways)


def construction(ctx: BuildContext) -> ScenarioSpec:
    """`_create_construction_setup`: a traffic-warning board 5 m before the construction point, a line of
    cones along the lane's passing side (4 cones every 2 m) closed by 3 cones every 1 m across it; the
    dirt debris (a flat decal) is not modelled."""
    two_ways = ctx.cfg.type == "ConstructionObstacleTwoWays"
    spec = ctx.spec(PASS_TWO_WAYS if two_ways else PASS)
    direction = ctx.direction()
    spec.props.append(roadside_prop(ctx, ctx.trigger_s, direction, "warning sign"))
    cs = min(ctx.trigger_s + ctx.cfg.value("distance", float, 100.0), ctx.route.length - 1.0)
    lane, ls = ctx.lane_at(cs)
    w = ctx.town.lanes[lane].width
    x, y, yaw = lane_pose(ctx.town, lane, ls)
    fwd, left = np.array([math.cos(yaw), math.sin(yaw)]), np.array([-math.sin(yaw), math.cos(yaw)])
    pass_side = -side_sign(direction)  # the cone line runs on the side the ego passes
    start = np.array([x, y]) + pass_side * 0.85 * w / 2.0 * left
    cones = [start + fwd * 2.0 * i for i in range(1, 5)]
    corner = start + fwd * 8.0
    cones += [corner - pass_side * left * 1.0 * i for i in range(1, 4)]
    for c in cones:
        spec.props.append(
            Prop("construction cone", AgentClass.TRAFFIC_CONE, (c[0], c[1], yaw, 0.4, 0.4), 0.7, appear=STARTED)
        )
    b = np.array([x, y]) - 5.0 * fwd
    spec.props.append(Prop("traffic warning", AgentClass.BARRIER, (b[0], b[1], yaw, 0.8, 2.4), 2.4, appear=STARTED))
    clear_route(ctx, spec, ctx.trigger_s, cs + 10.0, STARTED)
    near = spec.after(spec.ego_near((x, y), 30.0), WAIT)
    if two_ways:
        _two_ways(ctx, spec, cs, near, ctx.cfg.interval("frequency", (20.0, 100.0)))
    _end_when_past(ctx, spec, ctx.route.stop_before_junction(cs, END_DISTANCE))
    return spec


def hazard_at_side_lane(ctx: BuildContext) -> ScenarioSpec:
    """Two bicycles 9 m apart riding at the lane's right edge (0.55 half-widths) at `bicycle_speed` for
    `bicycle_drive_distance`, then stopping; ends 50 m after the ego is past the second one."""
    two_ways = ctx.cfg.type == "HazardAtSideLaneTwoWays"
    spec = ctx.spec(
        "overtake the bicycles "
        + ("through a gap in the oncoming traffic" if two_ways else "in the adjacent lane")
        + ", or follow them at their speed"
    )
    speed = ctx.cfg.value("bicycle_speed", float, 10.0) * KMH
    drive = ctx.cfg.value("bicycle_drive_distance", float, 50.0)
    s1 = ctx.route.stop_before_junction(ctx.trigger_s, ctx.cfg.value("distance", float, 100.0))
    s2 = ctx.route.stop_before_junction(s1, 9.0)
    lat = -0.55 * 0.5 * ctx.width(ctx.trigger_s)
    start = STARTED
    bikes = []
    for s in (s1, s2):
        path = ctx.route.path(s, min(s + drive, ctx.route.length), lat)
        bikes.append(len(spec.vehicles))
        spec.vehicles.append(
            VehicleActor("bicycle", *BICYCLE, path, VehicleBehaviour.FOLLOW, speed, move=start, finish=Finish.STOP)
        )
    clear_route(ctx, spec, ctx.trigger_s, s2 + 20.0, start)
    passed = spec.ahead_of_actor(EGO, bikes[-1], 0.5 * (BICYCLE[1][0] + 4.6))
    end = spec.drive(passed, END_DISTANCE)
    near = spec.after(spec.actor_near_ego(bikes[0], 50.0), WAIT)
    if two_ways:
        f = ctx.cfg.value("frequency", float, 100.0)
        _two_ways(ctx, spec, s1, near, (f, f))
    spec.finish(end, SCENARIO_TIMEOUT)
    return spec


def vehicle_opens_door(ctx: BuildContext) -> ScenarioSpec:
    """A car parked beside the lane (in the lane to its `direction`, pushed towards the road) opens its
    road-side door (+1 m) when the ego is 3 s / 10 m away; 5 s later the oncoming flow runs and the
    opposite lane is allowed. (srunner's `reference_wp` for the flow is the parked car's left lane,
    i.e. the ego's own lane — an evident slip: the flow runs in the opposite lane here, as the
    scenario's docstring intends.)"""
    spec = ctx.spec(PASS_TWO_WAYS + " (the opened door narrows the lane)")
    direction = ctx.direction()
    fs = min(ctx.trigger_s + ctx.cfg.value("distance", float, 50.0), ctx.route.length - 1.0)
    lane, ls = ctx.lane_at(fs)
    side = side_lane_waypoint(ctx.town, lane, ls, direction)
    if side is None:
        raise PlacementError(f"couldn't find a spot to place the adversary vehicle ({direction} of the lane)")
    disp = (side.lane_width - 0.5 * CAR[1][1]) / 4.0
    lat = offset_of(ctx.town, lane, ls, side) - side_sign(direction) * disp
    car = parked("parked car", CAR, lane, ls, lat)
    car.door, car.door_side = 1.0, -side_sign(direction)
    x, y, _ = lane_pose(ctx.town, lane, ls)
    car.move = spec.ego_near((x, y), 10.0, 3.0)
    spec.vehicles.append(car)
    clear_route(ctx, spec, ctx.trigger_s, fs + 20.0, STARTED)
    after = spec.after(car.move, WAIT)
    _two_ways(ctx, spec, fs, after, ctx.cfg.interval("frequency", (20.0, 100.0)))
    _end_when_past(ctx, spec, ctx.route.stop_before_junction(fs, END_DISTANCE))
    return spec


def invading_turn(ctx: BuildContext) -> ScenarioSpec:
    """Oncoming vehicles every 40 m invading the ego's lane by `offset` metres (cones narrow their lane
    on its outer side), from `distance` + 30 m ahead to the trigger point; ends when the ego is past
    that far point (within 50 m of it) or after the timeout."""
    spec = ctx.spec("keep to the right edge of the lane while oncoming vehicles invade it; stay out of their way")
    distance = ctx.cfg.value("distance", float, 100.0)
    offset = ctx.cfg.value("offset", float, 0.25)
    fwd_s = min(ctx.trigger_s + distance + 30.0, ctx.route.length - 1.0)
    src = left_lane(ctx, fwd_s)
    sink = left_lane(ctx, ctx.trigger_s)
    if src[2] or sink[2]:
        raise PlacementError("the lane to the left is not an opposite-direction lane")
    w = ctx.town.lanes[sink[0]].width
    true_offset = offset + 0.5 * w - 0.7
    start = STARTED
    path = lane_path(ctx.town, (src[0], src[1]), (sink[0], sink[1]), true_offset)
    spec.flows.append(Flow("invading oncoming", path, ctx.speed_limit(), (40.0, 40.0), start, *CAR, follow=True))
    # cones on the oncoming lane's outer side, from 10 m past its source over half the distance
    lane, s = follow(ctx.town, src[0], src[1], 10.0, stop_at_junction=False)
    d = 0.0
    while d < 0.5 * distance:
        lane, s = follow(ctx.town, lane, s, 5.0, stop_at_junction=False)
        cw = ctx.town.lanes[lane].width
        x, y, yaw = lane_pose(ctx.town, lane, s, -0.8 * cw / 2.0)
        spec.props.append(Prop("construction cone", AgentClass.TRAFFIC_CONE, (x, y, yaw, 0.4, 0.4), 0.7, appear=start))
        d += 5.0
    clear_route(ctx, spec, ctx.trigger_s, fwd_s, start)
    clear_path(spec, path, start)
    x, y, yaw = ctx.point(fwd_s)
    spec.finish(spec.ahead_of_point(None, (x, y), yaw, 50.0), SCENARIO_TIMEOUT)
    return spec


BUILDERS = {
    "Accident": accident,
    "AccidentTwoWays": accident,
    "ParkedObstacle": parked_obstacle,
    "ParkedObstacleTwoWays": parked_obstacle,
    "ConstructionObstacle": construction,
    "ConstructionObstacleTwoWays": construction,
    "HazardAtSideLane": hazard_at_side_lane,
    "HazardAtSideLaneTwoWays": hazard_at_side_lane,
    "VehicleOpensDoorTwoWays": vehicle_opens_door,
    "InvadingTurn": invading_turn,
}
