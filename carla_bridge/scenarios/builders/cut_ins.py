"""Vehicles that move into the ego's lane in front of it, and the ego leaving a parking spot (srunner
`parking_cut_in.py`, `cut_in_with_static_vehicle.py`, `highway_cut_in.py`, `parking_exit.py`).

A cut-in is a path that starts beside the ego's lane (lateral offset) and blends into it (lateral → 0):
parked cars pulling out (`ParkingCutIn`), a car leaving a queue in the next lane (`StaticCutIn`), a car
from an on-ramp timed to arrive with the ego (`HighwayCutIn`, `SyncArrivalWithAgent` then `CutIn`).
"""

from __future__ import annotations

import math

from agents import EGO
from carla_bridge.scenarios.builders.common import (
    CAR,
    KMH,
    SCENARIO_TIMEOUT,
    BuildContext,
    clear_route,
    parked,
    side_sign,
)
from carla_bridge.scenarios.lanes import (
    PlacementError,
    follow,
    lane_path,
    lane_pose,
    offset_of,
    side_lane,
    side_lane_waypoint,
    through_junction,
)
from carla_bridge.scenarios.spec import (
    STARTED,
    ActorGroup,
    Finish,
    PathSegment,
    ScenarioSpec,
    VehicleActor,
    VehicleBehaviour,
)

CUT_LENGTH = 12.0
"""[m] over which a pulling-out car blends into the lane."""


def _parking_lateral(ctx: BuildContext, lane: int, s: float, direction: str, inward: bool) -> float:
    """Lateral offset of a car in the lane beside (lane, s) on `direction`, displaced by (width − half car
    width)/4 outwards (`_get_displaced_location`; `inward`: towards the road instead)."""
    wp = side_lane_waypoint(ctx.town, lane, s, direction)
    if wp is None:
        raise PlacementError(f"couldn't find a parking position ({direction} of the lane)")
    disp = (wp.lane_width - 0.5 * CAR[1][1]) / 4.0
    sign = side_sign(direction) * (-1.0 if inward else 1.0)
    return offset_of(ctx.town, lane, s, wp) + sign * disp


def _blend(lane: int, s: float, lat: float, length: float, extra: float) -> list[PathSegment]:
    """Pull out from `lat` at (lane, s) to the centreline over `length`, then `extra` metres along it."""
    return [PathSegment(lane, s, s + length, lat, 0.0), PathSegment(lane, s + length, s + length + extra)]


def parking_cut_in(ctx: BuildContext) -> ScenarioSpec:
    """A parked car 35 m ahead pulls out in front of the ego (the one 28 m ahead stays) when the ego is
    2.35 s or 10 m from it, drives 30 m at 20 km/h, then both go."""
    spec = ctx.spec("brake for the car pulling out of the parking lane ahead")
    direction = ctx.direction()
    bl, bs = ctx.lane_at(min(ctx.trigger_s + 28.0, ctx.route.length))
    spec.vehicles.append(parked("parked car", CAR, bl, bs, _parking_lateral(ctx, bl, bs, direction, False)))
    cs = min(ctx.trigger_s + 35.0, ctx.route.length)
    cl, cs_l = ctx.lane_at(cs)
    lat = _parking_lateral(ctx, cl, cs_l, direction, False)
    room = ctx.town.lanes[cl].length - cs_l
    if room < CUT_LENGTH + 5.0:
        raise PlacementError("no room for the car to pull out before the lane ends")
    path = _blend(cl, cs_l, lat, CUT_LENGTH, min(room - CUT_LENGTH, 30.0))
    x, y, _ = lane_pose(ctx.town, cl, cs_l)
    car = VehicleActor("cut-in", *CAR, path, VehicleBehaviour.FOLLOW, 20.0 * KMH, finish=Finish.STOP)
    car.move = spec.ego_near((x, y), 10.0, 2.35)
    spec.vehicles.append(car)
    clear_route(ctx, spec, ctx.trigger_s, cs + 10.0, STARTED)
    done = spec.drive(car.move, 30.0, who=1)
    spec.vehicles[0].vanish = spec.vehicles[1].vanish = done
    spec.finish(done)
    return spec


def static_cut_in(ctx: BuildContext) -> ScenarioSpec:
    """A queue of stopped cars in the lane beside the ego's (2 behind, 3 in front of the adversary, 11 m
    apart, `distance` ahead); the adversary cuts in when the ego is 2.7 s or 15 m away, then drives 70 m
    at 60 km/h (or 30 s), and all go."""
    spec = ctx.spec("brake for the car cutting in from the queue in the next lane")
    direction = ctx.direction()
    s0 = ctx.trigger_s + ctx.cfg.value("distance", float, 100.0)
    if s0 + 6 * 11.0 > ctx.route.length:
        raise PlacementError("couldn't find a proper position for the cut in vehicle (route too short)")
    gap = 11.0
    slots = []
    for i in range(6):
        lane, s = ctx.lane_at(s0 + i * gap)
        side = side_lane(ctx.town, lane, s, direction)
        if side is None or not side[2]:
            raise PlacementError("couldn't find a proper position for the cut in vehicle (no lane beside)")
        slots.append((lane, s, side))
    adv_i = 2
    for i, (_, _, side) in enumerate(slots):
        if i != adv_i:
            spec.vehicles.append(parked("queued car", CAR, side[0], side[1], 0.0, appear=STARTED))
    lane, s, side = slots[adv_i]
    lat = offset_of(ctx.town, lane, s, side_lane_waypoint(ctx.town, lane, s, direction))
    room = ctx.town.lanes[lane].length - s
    path = _blend(lane, s, lat, min(15.0, room), 0.0)
    rest = follow(ctx.town, lane, s + min(15.0, room), 70.0, stop_at_junction=False, prefer=ctx.route.lanes)
    path = path[:1] + lane_path(ctx.town, (lane, s + min(15.0, room)), rest, 0.0, prefer=ctx.route.lanes)
    x, y, _ = lane_pose(ctx.town, lane, s)
    adv = VehicleActor("cut-in", *CAR, path, VehicleBehaviour.FOLLOW, 60.0 * KMH, appear=STARTED, finish=Finish.DESTROY)
    adv.move = spec.ego_near((x, y), 15.0, 2.7)
    k = len(spec.vehicles)
    spec.vehicles.append(adv)
    clear_route(ctx, spec, ctx.trigger_s, s0 + 6 * gap, STARTED)
    end = spec.any(spec.actor_done(ActorGroup.VEHICLE, k), spec.after(adv.move, 30.0))
    for v in spec.vehicles:
        v.vanish = end
    spec.finish(end)
    return spec


def highway_cut_in(ctx: BuildContext) -> ScenarioSpec:
    """A car from the on-ramp at `other_actor_location`, timed to reach a point 10 m past its merge when
    the ego reaches its own junction exit, then changes into the ego's lane at 80 % of the ego's speed
    (0.3 s, a 2 s change, 3 s on) and goes."""
    spec = ctx.spec("let the car merging from the on-ramp in: brake or change lane")
    loc = ctx.cfg.location("other_actor_location")
    if loc is None:
        raise PlacementError("HighwayCutIn needs <other_actor_location>")
    lane, s, lat = ctx.town.project(loc[None, :2])
    lane, s = int(lane[0]), float(s[0])
    if abs(float(lat[0])) > 10.0:
        raise PlacementError("<other_actor_location> is not on a driving lane")
    chain = through_junction(ctx.town, lane, 0)
    exit_lane = chain[-1]
    jp = ctx.route.junction_after(ctx.trigger_s)
    target = follow(ctx.town, exit_lane, 0.0, 10.0, stop_at_junction=False)
    v = 0.8 * ctx.speed_limit()
    same, change, on = 0.3 * v, max(2.0 * v, 10.0), 3.0 * v
    approach = lane_path(ctx.town, (lane, s), (target[0], target[1] + same), 0.0, prefer=chain)
    # the lane change: onto the lane left of the merge lane (the ego's lane after its junction)
    left = side_lane(ctx.town, target[0], target[1] + same, "left")
    if left is None or not left[2]:
        raise PlacementError("no lane to cut into beside the merge lane")
    w = ctx.town.lanes[left[0]].width
    if left[1] + change > ctx.town.lanes[left[0]].length:
        raise PlacementError("no room for the cut in before the lane ends")
    end = follow(ctx.town, left[0], left[1] + change, on, stop_at_junction=False)
    path = [*approach, PathSegment(left[0], left[1], left[1] + change, -w, 0.0)]
    path += lane_path(ctx.town, (left[0], left[1] + change), end)
    sync_u = sum(seg.length for seg in approach) - same
    car = VehicleActor(
        "cut-in", *CAR, path, VehicleBehaviour.SYNC, 0.8, appear=STARTED, move=STARTED, finish=Finish.DESTROY
    )
    car.sync_u, car.sync_ref_s = sync_u, jp.exit_s
    spec.vehicles.append(car)
    clear_route(ctx, spec, jp.exit_s, jp.exit_s + 170.0, STARTED)
    spec.finish(spec.actor_done(ActorGroup.VEHICLE, 0))
    return spec


def parking_exit(ctx: BuildContext) -> ScenarioSpec:
    """The ego starts in the parking spot beside the route's first metres, between cars `front_` /
    `behind_vehicle_distance` ahead and behind; a car drives by in the lane next to it (50 m); the
    scenario ends when the ego drove `front_vehicle_distance` + 15 m, or after the timeout."""
    spec = ctx.spec("wait for the passing car, then pull out of the parking spot into the lane")
    if ctx.trigger_s > 10.0:
        raise PlacementError("ParkingExit must trigger at the route's start (the ego starts parked)")
    direction = ctx.direction()
    front = ctx.cfg.value("front_vehicle_distance", float, 20.0)
    behind = ctx.cfg.value("behind_vehicle_distance", float, 10.0)
    lane, s = ctx.lane_at(ctx.trigger_s)
    x, y, yaw = lane_pose(ctx.town, lane, s, _parking_lateral(ctx, lane, s, direction, False))
    axle = EGO.rear_axle_to_center
    spec.ego_start = (x - axle * math.cos(yaw), y - axle * math.sin(yaw), yaw)
    fl, fs = follow(ctx.town, lane, s, front, stop_at_junction=False, prefer=ctx.route.lanes)
    spec.vehicles.append(parked("parked car", CAR, fl, fs, _parking_lateral(ctx, fl, fs, direction, False)))
    bs = max(s - behind, 0.0)
    spec.vehicles.append(parked("parked car", CAR, lane, bs, _parking_lateral(ctx, lane, bs, direction, False)))
    by = follow(ctx.town, lane, s, 50.0, stop_at_junction=False, prefer=ctx.route.lanes)
    side = VehicleActor(
        "passing car",
        *CAR,
        lane_path(ctx.town, (lane, s), by, prefer=ctx.route.lanes),
        VehicleBehaviour.FOLLOW,
        ctx.speed_limit(),
        appear=STARTED,
        move=STARTED,
        finish=Finish.DESTROY,
    )
    spec.vehicles.append(side)
    spec.finish(spec.drive(STARTED, front + 15.0), SCENARIO_TIMEOUT)
    return spec


BUILDERS = {
    "ParkingCutIn": parking_cut_in,
    "StaticCutIn": static_cut_in,
    "HighwayCutIn": highway_cut_in,
    "ParkingExit": parking_exit,
}
