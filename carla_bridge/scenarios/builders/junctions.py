"""Scenarios at the junction the route crosses after the trigger point (srunner
`opposite_vehicle_taking_priority.py`, `blocked_intersection.py`, `signalized_junction_left_turn.py`,
`signalized_junction_right_turn.py`, `cross_bicycle_flow.py`, `green_traffic_light.py`; Bench2Drive
`left_turn_enter_flow.py`, `vanilla_turn.py`).

- crossers: one vehicle from another entry drives straight through at 60 km/h ignoring everything
  (the signalized variant runs its red light while the ego's is frozen green) once the ego is 2.2 s or
  12 m from the crossing point; the scenario ends when the ego has left the junction;
- flows: an `ActorFlow` from the opposite entry (left turns) or the left one (right turns) through the
  junction, with the lights frozen red for the ego for 5 s then green for the ego and the flow
  (signalized); it ends 10 m after the ego left the junction, or after the timeout;
- signals: no actors, frozen lights (`PriorityAtJunction`, `Vanilla*`), ending after the junction.
"""

from __future__ import annotations

from carla_bridge.scenarios.builders.common import (
    BICYCLE,
    CAR,
    KMH,
    POLICE,
    SCENARIO_TIMEOUT,
    BuildContext,
    clear_path,
    clear_route,
    freeze,
    junction_heads,
    parked,
)
from carla_bridge.scenarios.lanes import (
    JunctionPass,
    PlacementError,
    back,
    direction_of,
    follow,
    junction_entries,
    lane_path,
    line_intersection,
    same_dir_lanes,
    through_junction,
)
from carla_bridge.scenarios.spec import (
    NEVER,
    STARTED,
    ActorGroup,
    Finish,
    Flow,
    ScenarioSpec,
    VehicleActor,
    VehicleBehaviour,
    Window,
    WindowKind,
)

END_DISTANCE = 10.0
GREEN_DELAY = 5.0


def _junction(ctx: BuildContext) -> JunctionPass:
    return ctx.route.junction_after(ctx.trigger_s)


def _entries(ctx: BuildContext, jp: JunctionPass, direction: str) -> list[int]:
    """Entry lanes of the junction coming from `direction` relative to the ego's entry."""
    yaw = float(ctx.town.lanes[jp.entry_lane].yaw[-1])
    out = [e for e in junction_entries(ctx.town, jp.junction_id) if direction_of(ctx.town, e, yaw) == direction]
    if not out:
        raise PlacementError(f"trying to find a lane in the {direction} direction but none was found")
    return out


def _through(ctx: BuildContext, entry: int, turn: int, before: float, after: float, lat: float = 0.0):
    """Path from `before` metres upstream of the entry's end (stopping at a junction) through the junction
    choosing `turn`, to `after` metres past the exit: (path, the lanes entry → junction lane → exit)."""
    chain = through_junction(ctx.town, entry, turn)
    end_lane = chain[-1]
    src = back(ctx.town, entry, ctx.town.lanes[entry].length, before, stop_at_junction=True)
    sink = follow(ctx.town, end_lane, 0.0, after, stop_at_junction=False)
    return lane_path(ctx.town, src, sink, lat, prefer=chain), chain


def _clear_junction(ctx: BuildContext, spec: ScenarioSpec, jp: JunctionPass, start: int = STARTED) -> None:
    """`HandleJunctionScenario(clear_junction, clear_ego_entry)`: the junction's lanes and the ego's entry
    stretch are left free."""
    for ln in ctx.town.lanes:
        if ln.junction_id == jp.junction_id:
            spec.windows.append(Window(WindowKind.CLEAR, start, NEVER, ln.id, 0.0, ln.length))
    clear_route(ctx, spec, max(ctx.trigger_s, jp.entry_s - 30.0), jp.entry_s, start)


# ------------------------------------------------------------------ crossers


def opposite_vehicle(ctx: BuildContext) -> ScenarioSpec:
    """An emergency vehicle 30 m up the `direction` entry crosses straight at 60 km/h, ignoring lights and
    vehicles, timed by the ego's time to arrival (2.2 s) or distance (12 m) to the crossing point."""
    red_light = ctx.cfg.type == "OppositeVehicleRunningRedLight"
    spec = ctx.spec(
        "do not enter the junction in front of the vehicle crossing it"
        + (" against its red light" if red_light else " without priority")
        + "; brake and let it pass"
    )
    jp = _junction(ctx)
    direction = ctx.cfg.value("direction", str, "right")
    entry = _entries(ctx, jp, direction)[0]
    path, _chain = _through(ctx, entry, 0, 30.0, 10.0)
    # the crossing point: where the two approach lines meet (`get_geometric_linear_intersection`)
    e_lane, o_lane = ctx.town.lanes[jp.entry_lane], ctx.town.lanes[entry]
    hit = line_intersection(
        e_lane.points[-1],
        e_lane.points[-1] - e_lane.points[-2],
        o_lane.points[-1],
        o_lane.points[-1] - o_lane.points[-2],
    )
    if hit is None:
        raise PlacementError("couldn't find an intersection point")
    speed = 60.0 * KMH
    car = VehicleActor(
        "adversary", *POLICE, path, VehicleBehaviour.CONSTANT, speed, appear=STARTED, finish=Finish.DESTROY
    )
    car.move = spec.ego_near(hit, 12.0, 2.2)
    total = sum(seg.length for seg in path)
    car.vanish = spec.after(car.move, total / speed)
    spec.vehicles.append(car)
    clear_path(spec, path, STARTED)
    _clear_junction(ctx, spec, jp)
    if red_light:
        ego_head, heads = junction_heads(ctx, jp.entry_lane)
        freeze(spec, heads, {ego_head}, STARTED)
    done = spec.actor_done(ActorGroup.VEHICLE, 0)
    spec.finish(spec.all(done, spec.ego_past_s(jp.exit_s)))
    return spec


def blocked_intersection(ctx: BuildContext) -> ScenarioSpec:
    """A stopped car 5 m past the route's junction exit; 10 s after the ego came within 13 m of it, it goes."""
    spec = ctx.spec(
        "stop behind the car blocking the junction exit and wait until it leaves; "
        "do not enter the junction while it is blocked"
    )
    jp = _junction(ctx)
    lane, s = ctx.lane_at(jp.exit_s)
    lane, s = follow(ctx.town, lane, s, 5.0, stop_at_junction=False, prefer=ctx.route.lanes)
    spec.vehicles.append(parked("blocker", CAR, lane, s, 0.0, appear=STARTED))
    _clear_junction(ctx, spec, jp)
    clear_route(ctx, spec, jp.exit_s, jp.exit_s + 20.0, STARTED)
    gone = spec.after(spec.actor_near_ego(0, 13.0), 10.0)
    spec.vehicles[0].vanish = gone
    spec.finish(gone, SCENARIO_TIMEOUT)
    return spec


# ------------------------------------------------------------------ flows


def _signal_sequence(ctx: BuildContext, spec: ScenarioSpec, jp: JunctionPass, flow_green: set[int]) -> None:
    """Lights: the ego's head red (the flow's `flow_green` green, the rest red) for 5 s, then the ego's
    head green too until the end (srunner's two `TrafficLightFreezer`s)."""
    ego_head, heads = junction_heads(ctx, jp.entry_lane)
    later = spec.after(STARTED, GREEN_DELAY)
    freeze(spec, heads, flow_green, STARTED, later)
    freeze(spec, heads, flow_green | {ego_head}, later)


def junction_turn_flow(ctx: BuildContext) -> ScenarioSpec:
    """`JunctionLeftTurn` / `JunctionRightTurn` / `JunctionLeftTurnEnterFlow`: an `ActorFlow` through the
    junction — from the opposite entry straight (left turns), from the left entry's rightmost lane straight
    (right turns), or from the opposite entry turning right (left turn into the flow)."""
    typ = ctx.cfg.type
    right = "RightTurn" in typ
    enter = "EnterFlow" in typ
    signalized = typ.startswith("Signalized")
    speed = ctx.cfg.value("flow_speed", float, 20.0)
    gap = ctx.cfg.interval("source_dist_interval", (25.0, 50.0))
    jp = _junction(ctx)
    if right:
        expert = "turn right only through a gap in the flow coming from the left"
        entries = _entries(ctx, jp, "left")
        e = entries[0]
        rightmost = same_dir_lanes(ctx.town, e, ctx.town.lanes[e].length - 0.5)[-1][0]
        source, turn, before, after = rightmost, 0, 5.0 * speed, 3.0 * speed
    else:
        expert = (
            "turn left and merge into the oncoming flow that turns into the same road, through a gap"
            if enter
            else "yield to the oncoming flow; turn left only through a gap in it"
        )
        entries = _entries(ctx, jp, "opposite")
        source = entries[int(ctx.rng.integers(len(entries)))]
        turn, before, after = (1 if enter else 0), 4.0 * speed, 2.5 * speed
    spec = ctx.spec(expert + (" (after the light turns green)" if signalized else ""))
    path, _chain = _through(ctx, source, turn, before, after)
    spec.flows.append(Flow("flow", path, speed, gap, STARTED, *CAR))
    clear_path(spec, path, STARTED)
    _clear_junction(ctx, spec, jp)
    if signalized:
        src_head = int(ctx.md.lanes.lane_head[source])
        _signal_sequence(ctx, spec, jp, {src_head} if src_head >= 0 else set())
    spec.finish(spec.drive(spec.ego_past_s(jp.exit_s), END_DISTANCE), SCENARIO_TIMEOUT)
    return spec


def crossing_bicycle_flow(ctx: BuildContext) -> ScenarioSpec:
    """A flow of bicycles (initially populated) from `start_actor_flow` through the junction to 40 m past
    it. srunner starts it on a biking lane; the vendored towns have none, so it starts on the nearest
    driving lane and the bicycles ride at its right edge."""
    spec = ctx.spec("yield to the bicycles riding through the junction; turn or cross only through a gap")
    jp = _junction(ctx)
    start = ctx.cfg.location("start_actor_flow")
    if start is None:
        raise PlacementError("CrossingBicycleFlow needs <start_actor_flow>")
    lane, s, lat = ctx.town.project(start[None, :2])
    lane, s = int(lane[0]), float(s[0])
    if abs(float(lat[0])) > 10.0:
        raise PlacementError("couldn't find a lane at the flow's start location")
    edge = -(0.5 * ctx.town.lanes[lane].width - 0.5)
    chain = through_junction(ctx.town, lane, 0)
    sink = follow(ctx.town, chain[-1], 0.0, 40.0, stop_at_junction=False)
    path = lane_path(ctx.town, (lane, s), sink, edge, prefer=chain)
    speed = ctx.cfg.value("flow_speed", float, 10.0)
    gap = ctx.cfg.interval("source_dist_interval", (20.0, 50.0))
    spec.flows.append(Flow("bicycle flow", path, speed, gap, STARTED, *BICYCLE, initial=True))
    _clear_junction(ctx, spec, jp)
    if int(ctx.md.lanes.lane_head[jp.entry_lane]) >= 0:
        _signal_sequence(ctx, spec, jp, set())
    spec.finish(spec.ego_past_s(jp.exit_s), SCENARIO_TIMEOUT)
    return spec


# ------------------------------------------------------------------ signals only


def signals(ctx: BuildContext) -> ScenarioSpec:
    """`PriorityAtJunction` (the ego's light green, the others red, until it left the junction) and the
    Bench2Drive `Vanilla*` turns: `…EncounterGreenLight` (ego green 5 s, then all red 5 s, then the normal
    cycle), `…EncounterRedLight` (ego red 5 s, then green), the non-signalized ones (nothing frozen);
    they end 10 m after the junction (`PriorityAtJunction`: at its exit)."""
    typ = ctx.cfg.type
    jp = _junction(ctx)
    if typ == "PriorityAtJunction":
        spec = ctx.spec("drive through the junction on the green light")
        ego_head, heads = junction_heads(ctx, jp.entry_lane)
        freeze(spec, heads, {ego_head}, STARTED)
        spec.finish(spec.ego_past_s(jp.exit_s))
        return spec
    if typ == "VanillaSignalizedTurnEncounterGreenLight":
        spec = ctx.spec("pass on green; stop at the stop line when it turns red")
        ego_head, heads = junction_heads(ctx, jp.entry_lane)
        later = spec.after(STARTED, GREEN_DELAY)
        freeze(spec, heads, {ego_head}, STARTED, later)
        freeze(spec, heads, set(), later, spec.after(later, GREEN_DELAY))
    elif typ == "VanillaSignalizedTurnEncounterRedLight":
        spec = ctx.spec("stop at the red light, go when it turns green")
        ego_head, heads = junction_heads(ctx, jp.entry_lane)
        later = spec.after(STARTED, GREEN_DELAY)
        freeze(spec, heads, set(), STARTED, later)
        freeze(spec, heads, {ego_head}, later)
    else:
        spec = ctx.spec("give way at the junction (stop at its stop sign, if any), then turn")
    spec.finish(spec.drive(spec.ego_past_s(jp.exit_s), END_DISTANCE))
    return spec


BUILDERS = {
    "OppositeVehicleTakingPriority": opposite_vehicle,
    "OppositeVehicleRunningRedLight": opposite_vehicle,
    "BlockedIntersection": blocked_intersection,
    "SignalizedJunctionLeftTurn": junction_turn_flow,
    "SignalizedJunctionRightTurn": junction_turn_flow,
    "NonSignalizedJunctionLeftTurn": junction_turn_flow,
    "NonSignalizedJunctionRightTurn": junction_turn_flow,
    "SignalizedJunctionLeftTurnEnterFlow": junction_turn_flow,
    "NonSignalizedJunctionLeftTurnEnterFlow": junction_turn_flow,
    "CrossingBicycleFlow": crossing_bicycle_flow,
    "PriorityAtJunction": signals,
    "VanillaNonSignalizedTurn": signals,
    "VanillaNonSignalizedTurnEncounterStopsign": signals,
    "VanillaSignalizedTurnEncounterGreenLight": signals,
    "VanillaSignalizedTurnEncounterRedLight": signals,
}
