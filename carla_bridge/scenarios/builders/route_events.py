"""Events on the route itself (srunner `yield_to_emergency_vehicle.py`, `hard_break.py`,
`control_loss.py`; Bench2Drive `sequentially_lane_change.py`, `t_junction.py`)."""

from __future__ import annotations

from carla_bridge.scenarios.builders.common import (
    CAR,
    EMERGENCY_VEHICLE,
    KMH,
    SCENARIO_TIMEOUT,
    BuildContext,
    clear_route,
)
from carla_bridge.scenarios.lanes import PlacementError, back, lane_path
from carla_bridge.scenarios.spec import (
    EGO,
    STARTED,
    Finish,
    ScenarioSpec,
    VehicleActor,
    VehicleBehaviour,
    Window,
    WindowKind,
)

EV_SPEED_INCREMENT = 25.0 * KMH
LEAD_IN = 30.0
"""[m] HardBreakRoute: the vehicle ahead appears this far before the trigger point."""
LEAD_GAP = 25.0
"""[m] … this far ahead of the ego, at its speed."""


def yield_to_emergency_vehicle(ctx: BuildContext) -> ScenarioSpec:
    """An emergency vehicle `distance` metres behind the trigger point (on its lane, upstream) follows the
    ego's lane at the ego's speed + 25 km/h; the scenario ends 10 s after it came within 50 m of the ego,
    or when it drove 50 m after getting in front; `YieldToEmergencyVehicleTest` fails when the ego is
    still in front of it then. The background leaves the lane free (`RemoveRoadLane`)."""
    spec = ctx.spec("change lane (or pull aside) to let the emergency vehicle behind pass; never stay in front of it")
    lane, s = ctx.lane_at(ctx.trigger_s)
    start = back(ctx.town, lane, s, ctx.cfg.value("distance", float, 140.0), stop_at_junction=False)
    path = lane_path(ctx.town, start, (lane, s)) + ctx.route.path(ctx.trigger_s, ctx.route.length)
    if len(path) < 2 and path[0].s1 - path[0].s0 < 1.0:
        raise PlacementError("couldn't find viable position for the emergency vehicle")
    ev = VehicleActor(
        "emergency vehicle",
        *EMERGENCY_VEHICLE,
        path,
        VehicleBehaviour.EMERGENCY,
        EV_SPEED_INCREMENT,
        appear=STARTED,
        move=STARTED,
        finish=Finish.STOP,
    )
    spec.vehicles.append(ev)
    spec.emergency = 0
    near = spec.after(spec.actor_near_ego(0, 50.0), 10.0)
    ahead = spec.drive(spec.ahead_of_actor(0, EGO, 0.5 * (EMERGENCY_VEHICLE[1][0] + 4.08), 10.0), 50.0, who=0)
    clear_route(ctx, spec, ctx.trigger_s - 20.0, ctx.route.length, STARTED)
    spec.finish(spec.any(near, ahead))
    return spec


def hard_break(ctx: BuildContext) -> ScenarioSpec:
    """The vehicle in front of the ego brakes to a stop at the trigger point, stays 10 s, drives on; the
    scenario ends 15 m later. srunner brakes the background vehicles in front of the ego
    (`StopFrontVehicles`); here the vehicle in front is the scenario's: it appears `LEAD_IN` m before the
    trigger, `LEAD_GAP` m ahead of the ego at its speed, and follows the route."""
    spec = ctx.spec("keep a safe distance to the vehicle ahead and brake hard when it does")
    spec.trigger_s = max(ctx.trigger_s - LEAD_IN, 0.0)
    path = ctx.route.path(0.0, ctx.route.length)
    lead = VehicleActor(
        "vehicle ahead",
        *CAR,
        path,
        VehicleBehaviour.FOLLOW,
        ctx.speed_limit(),
        appear=STARTED,
        appear_ahead=LEAD_GAP,
        finish=Finish.STOP,
    )
    lead.brake = spec.ego_past_s(ctx.trigger_s - 2.0)
    lead.release = spec.after(lead.brake, 10.0)
    spec.vehicles.append(lead)
    clear_route(ctx, spec, spec.trigger_s, ctx.trigger_s + 60.0, STARTED)
    spec.finish(spec.drive(lead.release, 15.0))
    return spec


def control_loss(ctx: BuildContext) -> ScenarioSpec:
    """Noise on the ego's throttle (±0.03, σ 0.01) and steering (±0.055, σ 0.015) while it is within 2 m of
    each of three points 14, 48 and 74 m ahead (srunner's non-randomized layout; the flat debris props
    there are not modelled); ends after 110 m."""
    spec = ctx.spec("hold the lane and speed against the throttle / steering noise over the debris")
    rng = ctx.rng
    for d in (14.0, 48.0, 74.0):
        x, y, _ = ctx.point(ctx.route.stop_before_junction(ctx.trigger_s, d))
        on = spec.ego_near((x, y), 2.0)
        off = spec.ego_far(on, (x, y), 2.0)
        th, st = rng.choice([0.03, -0.03]), rng.choice([0.055, -0.055])
        spec.windows.append(Window(WindowKind.NOISE, on, off, params=(float(th), 0.01, float(st), 0.015)))
    spec.finish(spec.drive(STARTED, 110.0))
    return spec


def drive_through(ctx: BuildContext) -> ScenarioSpec:
    """`SequentialLaneChange` / `T_Junction`: no actors; the route's manoeuvres are the test; ends after
    200 m, or after the timeout."""
    expert = "follow the route's lane changes" if ctx.cfg.type == "SequentialLaneChange" else "take the T-junction turn"
    spec = ctx.spec(expert + " obeying lights, signs and traffic")
    spec.finish(spec.drive(STARTED, 200.0), SCENARIO_TIMEOUT)
    return spec


BUILDERS = {
    "YieldToEmergencyVehicle": yield_to_emergency_vehicle,
    "HardBreakRoute": hard_break,
    "ControlLoss": control_loss,
    "SequentialLaneChange": drive_through,
    "T_Junction": drive_through,
}
