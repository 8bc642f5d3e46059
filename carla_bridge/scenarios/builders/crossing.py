"""Pedestrians and bicycles crossing in front of the ego, started by its time to arrival at the
crossing point (srunner `object_crash_vehicle.py`, `object_crash_intersection.py`,
`pedestrian_crossing.py`): they wait on the sidewalk (often hidden behind a blocker) and, once the ego
would reach the crossing point within a reaction time (or is within a few metres of it), cross at
constant speed without looking (`KeepVelocity`), then disappear; the scenario ends after the ego drove
40 m more. The route's collision criterion does the judging (no scenario criteria).
"""

from __future__ import annotations

import math

import numpy as np

from agents import AgentClass
from carla_bridge.scenarios.builders.common import BICYCLE, CAR, BuildContext, clear_route, side_sign
from carla_bridge.scenarios.lanes import (
    PlacementError,
    follow,
    lane_pose,
    offset_of,
    sidewalk_offset,
    walk_out,
)
from carla_bridge.scenarios.spec import (
    STARTED,
    ActorGroup,
    Finish,
    PathSegment,
    Prop,
    ScenarioSpec,
    VehicleActor,
    VehicleBehaviour,
    Walker,
)

END_DISTANCE = 40.0
STOP_FOR = "slow down near the occluded sidewalk and stop for the crossing {}"
BLOCKERS = {
    "static.prop.container": (AgentClass.BARRIER, (6.1, 2.4), 2.6),
    "static.prop.haybalelb": (AgentClass.BARRIER, (1.4, 1.2), 1.2),
    "static.prop.vendingmachine": (AgentClass.BARRIER, (0.9, 0.8), 2.0),
    "static.prop.advertisement": (AgentClass.BARRIER, (0.4, 2.6), 2.4),
    "static.prop.busstoplb": (AgentClass.BARRIER, (4.0, 1.6), 2.6),
    "static.prop.foodcart": (AgentClass.BARRIER, (2.2, 1.3), 2.0),
}
"""Footprints (class, (length, width), height) of srunner's blocker props; any other prop is 1 × 1 m."""


def _blocker(model: str, role: str, xy, yaw: float):
    """A blocker of `blocker_model` at `xy`: a parked car for `vehicle.*`, a prop otherwise."""
    if model.startswith("vehicle."):
        return None
    cls, (length, width), height = BLOCKERS.get(model, (AgentClass.BARRIER, (1.0, 1.0), 1.5))
    return Prop(role, cls, (float(xy[0]), float(xy[1]), yaw, length, width), height)


def _walker_heading(lane_yaw: float, direction: str, angle_deg: float) -> float:
    """srunner's walker yaw `lane + 270 − angle` (right side; `90 + angle` left) in the world frame."""
    return lane_yaw + side_sign(direction) * -math.radians(90.0 + angle_deg)


def _end_after(spec: ScenarioSpec, done: int) -> None:
    spec.finish(spec.drive(done, END_DISTANCE))


def dynamic_object_crossing(ctx: BuildContext) -> ScenarioSpec:
    """A pedestrian steps out from behind a blocker on the sidewalk `distance` ahead and crosses the whole
    road at 2 m/s (twice its distance to the lane centre) when the ego is 2.1 s (+0.1 s per 5° of
    `crossing_angle`) or 6 m from the crossing point."""
    spec = ctx.spec(STOP_FOR.format("pedestrian"))
    direction = ctx.direction()
    angle = ctx.cfg.value("crossing_angle", float, 0.0)
    if abs(angle) > 90:
        raise PlacementError("'crossing_angle' must be between -90 and 90º for the pedestrian to cross the road")
    model = ctx.cfg.value("blocker_model", str, "static.prop.vendingmachine")
    cs = min(ctx.trigger_s + ctx.cfg.value("distance", float, 12.0), ctx.route.length - 1.0)
    lane, s = ctx.lane_at(cs)
    off, _ = sidewalk_offset(ctx.town, lane, s, direction)
    bx, by, yaw = lane_pose(ctx.town, lane, s, off)
    is_vehicle = model.startswith("vehicle.")
    blocker_yaw = yaw + (0.0 if is_vehicle else side_sign(direction) * -math.pi / 2)
    blocker = _blocker(model, "blocker", (bx, by), blocker_yaw)
    half = 0.5 * (CAR[1][0] if is_vehicle else (blocker.box[3] if blocker else 1.0))
    if blocker is not None:
        spec.props.append(blocker)
    else:
        spec.vehicles.append(VehicleActor("blocker", *CAR, [PathSegment(lane, s, s, off, off)]))
    ws = s + half + 0.5
    wx, wy, wyaw = lane_pose(ctx.town, lane, min(ws, ctx.town.lanes[lane].length), off)
    cx, cy, _ = lane_pose(ctx.town, lane, min(ws, ctx.town.lanes[lane].length))
    dist = math.hypot(wx - cx, wy - cy)
    heading = _walker_heading(wyaw, direction, angle)
    reaction = 2.1 + 0.1 * math.floor(angle / 5.0)
    go = spec.ego_near((cx, cy), 6.0, reaction)
    spec.walkers.append(Walker("pedestrian", np.array([wx, wy]), heading, 2.0, 2.0 * dist, appear=STARTED, move=go))
    clear_route(ctx, spec, ctx.trigger_s, cs + 10.0, STARTED)
    done = spec.actor_done(ActorGroup.WALKER, 0)
    if blocker is not None:
        blocker.vanish = done
    else:
        spec.vehicles[0].vanish = done
    _end_after(spec, done)
    return spec


def parking_crossing_pedestrian(ctx: BuildContext) -> ScenarioSpec:
    """A pedestrian steps out between a parked car (one lane width to the side, `distance` ahead) and
    crosses 8 m at 2 m/s when the ego is 2.15 s (+0.1 s per 5°) or 6 m away."""
    spec = ctx.spec(STOP_FOR.format("pedestrian behind the parked car"))
    direction = ctx.direction()
    angle = ctx.cfg.value("crossing_angle", float, 0.0)
    if abs(angle) > 90:
        raise PlacementError("'crossing_angle' must be between -90 and 90º for the pedestrian to cross the road")
    bs = min(ctx.trigger_s + ctx.cfg.value("distance", float, 12.0), ctx.route.length - 1.0)
    lane, s = ctx.lane_at(bs)
    w = ctx.town.lanes[lane].width
    lat = side_sign(direction) * w
    spec.vehicles.append(VehicleActor("parked car", *CAR, [PathSegment(lane, s, s, lat, lat)]))
    ws = min(s + 0.5 * CAR[1][0] + 0.5, ctx.town.lanes[lane].length)
    wx, wy, wyaw = lane_pose(ctx.town, lane, ws, lat)
    cx, cy, _ = lane_pose(ctx.town, lane, ws)
    go = spec.ego_near((cx, cy), 6.0, 2.15 + 0.1 * math.floor(angle / 5.0))
    heading = _walker_heading(wyaw, direction, angle)
    spec.walkers.append(Walker("pedestrian", np.array([wx, wy]), heading, 2.0, 8.0, appear=STARTED, move=go))
    clear_route(ctx, spec, ctx.trigger_s, bs + 15.0, STARTED)
    done = spec.actor_done(ActorGroup.WALKER, 0)
    spec.vehicles[0].vanish = done
    _end_after(spec, done)
    return spec


def pedestrian_crossing(ctx: BuildContext) -> ScenarioSpec:
    """Three pedestrians cross from the right sidewalk at the junction ahead (each after 0–1.5 s, at
    1.3–2 m/s, 2.3 × their distance to the crossing point) when the ego is 3.5 s or 12 m away. (srunner's
    behaviour never ends — its walkers wait forever in a SUCCESS_ON_ALL parallel —; here it ends once the
    walkers are gone and the ego drove 40 m.)"""
    spec = ctx.spec("stop at the crossing until the pedestrians have crossed")
    jp = ctx.route.junction_after(ctx.trigger_s)
    lane, s = ctx.lane_at(jp.entry_s - 0.5)
    end, _start = walk_out(ctx.town, lane, s, "right", lambda kind: kind == "Sidewalk")
    if str(end.lane_type) != "Sidewalk":
        raise PlacementError("couldn't find a waypoint to start the flow (no sidewalk on the right)")
    off = offset_of(ctx.town, lane, s, end)
    cx, cy, yaw = lane_pose(ctx.town, lane, s)
    rng = ctx.rng
    fwd, right = np.array([math.cos(yaw), math.sin(yaw)]), np.array([math.sin(yaw), -math.cos(yaw)])
    sx, sy, _ = lane_pose(ctx.town, lane, s, off)
    go = spec.ego_near((cx, cy), 12.0, 3.5)
    for dx, dy in ((0.4, 1.5), (1.0, 2.5), (1.6, 0.5)):
        p = np.array([sx, sy]) + dx * fwd + dy * right
        dist = 2.3 * math.hypot(p[0] - cx, p[1] - cy)
        idle, speed = rng.uniform(0.0, 1.5), rng.uniform(1.3, 2.0)
        spec.walkers.append(Walker("pedestrian", p, yaw + math.pi / 2, speed, dist, STARTED, go, idle))
    clear_route(ctx, spec, max(ctx.trigger_s, jp.entry_s - 30.0), jp.entry_s, STARTED)
    done = spec.all(spec.actor_done(ActorGroup.WALKER, 0), spec.actor_done(ActorGroup.WALKER, 1))
    done = spec.all(done, spec.actor_done(ActorGroup.WALKER, 2))
    spec.finish(spec.all(done, spec.drive(go, END_DISTANCE)))
    return spec


def _after_turn(ctx: BuildContext, beyond: float) -> tuple[int, float]:
    """(lane, s) `beyond` metres past the route's junction exit (`generate_target_waypoint_in_route`)."""
    jp = ctx.route.junction_after(ctx.trigger_s)
    lane, s = ctx.lane_at(jp.exit_s)
    return follow(ctx.town, lane, s, beyond, stop_at_junction=False, prefer=ctx.route.lanes)


def vehicle_turning_route(ctx: BuildContext) -> ScenarioSpec:
    """A bicycle on the right sidewalk 11 m past the junction exit crosses the road at 1.8 m/s (twice its
    distance to the lane centre) when the ego, turning, is 1.8 s or 6 m from the crossing point."""
    spec = ctx.spec(STOP_FOR.format("bicycle after the turn"))
    lane, s = _after_turn(ctx, 11.0)
    off, _ = sidewalk_offset(ctx.town, lane, s, "right")
    cx, cy, _ = lane_pose(ctx.town, lane, s)
    path = [PathSegment(lane, s, s, off, -off, math.pi / 2)]
    go = spec.ego_near((cx, cy), 6.0, 1.8)
    spec.vehicles.append(
        VehicleActor("bicycle", *BICYCLE, path, VehicleBehaviour.CONSTANT, 1.8, move=go, finish=Finish.DESTROY)
    )
    done = spec.actor_done(ActorGroup.VEHICLE, 0)
    _end_after(spec, done)
    return spec


def vehicle_turning_route_pedestrian(ctx: BuildContext) -> ScenarioSpec:
    """A pedestrian crosses the road the ego turns into, 0.5 m past the junction exit, from the sidewalk on
    the inside of the turn (right sidewalk for a left turn), sidewalk to sidewalk at 1.8 m/s, when the ego
    is 2.2 s or 6 m from the crossing point."""
    spec = ctx.spec(STOP_FOR.format("pedestrian after the turn"))
    jp = ctx.route.junction_after(ctx.trigger_s)
    lane, s = _after_turn(ctx, 0.5)
    right, _ = sidewalk_offset(ctx.town, lane, s, "right")
    left, _ = sidewalk_offset(ctx.town, lane, s, "left")  # across the opposite lanes, if any
    from_right = jp.turn <= 0  # srunner: cross(entry, exit).z < 0 in CARLA's frame (a left turn) → right sidewalk
    lat0, lat1 = (right, left) if from_right else (left, right)
    x, y, yaw = lane_pose(ctx.town, lane, s, lat0)
    cx, cy, _ = lane_pose(ctx.town, lane, s)
    heading = yaw + (math.pi / 2 if from_right else -math.pi / 2)
    go = spec.ego_near((cx, cy), 6.0, 2.2)
    spec.walkers.append(Walker("pedestrian", np.array([x, y]), heading, 1.8, abs(lat1 - lat0), appear=STARTED, move=go))
    _end_after(spec, spec.actor_done(ActorGroup.WALKER, 0))
    return spec


BUILDERS = {
    "DynamicObjectCrossing": dynamic_object_crossing,
    "ParkingCrossingPedestrian": parking_crossing_pedestrian,
    "PedestrianCrossing": pedestrian_crossing,
    "VehicleTurningRoute": vehicle_turning_route,
    "VehicleTurningRoutePedestrian": vehicle_turning_route_pedestrian,
}
