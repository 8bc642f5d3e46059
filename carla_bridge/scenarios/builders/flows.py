"""Actor flows at merges, highway entries / exits and interurban junctions, given by their start and end
locations in the route file (srunner `actor_flow.py`): vehicles spawned at `start_actor_flow` every
`source_dist_interval` metres drive at `flow_speed` to `end_actor_flow`, ignoring other vehicles until
one touches the ego (`ActorFlow`). The ego must enter, cross or leave the flow through a gap.
"""

from __future__ import annotations

import numpy as np

from carla_bridge.route_planner import plan_route
from carla_bridge.scenarios.builders.common import (
    CAR,
    SCENARIO_TIMEOUT,
    BuildContext,
    clear_path,
    clear_route,
)
from carla_bridge.scenarios.lanes import PlacementError, RouteView, lane_pose, same_dir_lanes, side_lane
from carla_bridge.scenarios.spec import STARTED, Flow, PathSegment, ScenarioSpec, Window, WindowKind

SINK_DISTANCE = 2.0


def _snap(ctx: BuildContext, name: str) -> tuple[int, float]:
    """(lane, s) of the driving lane nearest to the location parameter `name` (`map.get_waypoint`)."""
    loc = ctx.cfg.location(name)
    if loc is None:
        raise PlacementError(f"{ctx.cfg.type} needs <{name}>")
    lane, s, lat = ctx.town.project(loc[None, :2])
    if abs(float(lat[0])) > 10.0:
        raise PlacementError(f"<{name}> is {abs(float(lat[0])):.0f} m from every driving lane")
    return int(lane[0]), float(s[0])


def _path(ctx: BuildContext, a: tuple[int, float], b: tuple[int, float]) -> tuple[list[PathSegment], RouteView]:
    """The shortest lane path from a to b (the Traffic Manager's route to the sink)."""
    pa = lane_pose(ctx.town, a[0], a[1])
    pb = lane_pose(ctx.town, b[0], b[1])
    try:
        plan = plan_route(ctx.town, np.array([pa[:2], pb[:2]]), np.array([pa[2], pb[2]]))
    except ValueError as err:
        raise PlacementError(f"no lane path for the actor flow: {err}") from None
    view = RouteView(ctx.town, plan)
    return view.path(0.0, view.length), view


def _flow(ctx: BuildContext, spec: ScenarioSpec, a, b, initial: bool) -> RouteView:
    path, view = _path(ctx, a, b)
    speed = ctx.cfg.value("flow_speed", float, 10.0)
    gap = ctx.cfg.interval("source_dist_interval", (20.0, 50.0))
    spec.flows.append(Flow("flow", path, speed, gap, STARTED, *CAR, initial=initial, initial_junction=initial))
    clear_path(spec, path, STARTED)
    return view


def _near_any_sink(ctx: BuildContext, spec: ScenarioSpec, sink: tuple[int, float]) -> int:
    """The ego within 2 m of the sink of any lane of the sink's road (`InTriggerDistanceToLocation`)."""
    q = None
    for lane, s in same_dir_lanes(ctx.town, *sink):
        x, y, _ = lane_pose(ctx.town, lane, s)
        c = spec.ego_near((x, y), SINK_DISTANCE)
        q = c if q is None else spec.any(q, c)
    return q


def enter_actor_flow(ctx: BuildContext) -> ScenarioSpec:
    """`EnterActorFlow` (one flow per lane of the source road), `EnterActorFlowV2`,
    `MergerIntoSlowTraffic(V2)`: flows populated from the start; ends when the ego reaches a sink."""
    typ = ctx.cfg.type
    merge = typ.startswith("Merger")
    spec = ctx.spec(
        "merge into the slow flow through a gap" if merge else "enter the flowing road through a gap in the flow"
    )
    src, sink = _snap(ctx, "start_actor_flow"), _snap(ctx, "end_actor_flow")
    if typ == "EnterActorFlow":
        pairs = list(zip(same_dir_lanes(ctx.town, *src), same_dir_lanes(ctx.town, *sink)))
    else:
        pairs = [(src, sink)]
    for a, b in pairs:
        _flow(ctx, spec, a, b, initial=True)
    clear_route(ctx, spec, ctx.trigger_s, ctx.trigger_s + 60.0, STARTED)
    spec.finish(_near_any_sink(ctx, spec, sink), SCENARIO_TIMEOUT)
    return spec


def highway_exit(ctx: BuildContext) -> ScenarioSpec:
    """A fast flow on the lane the ego must cross to leave the highway; ends when the ego left the first
    junction the flow drives through (`WaitEndIntersection`)."""
    spec = ctx.spec("cross the flow through a gap to reach the exit lane and leave the highway")
    src, sink = _snap(ctx, "start_actor_flow"), _snap(ctx, "end_actor_flow")
    view = _flow(ctx, spec, src, sink, initial=True)
    jid = next((ctx.town.lanes[int(k)].junction_id for k in view.point_lane if ctx.town.lanes[int(k)].is_junction), -1)
    spec.finish(_past_junction(ctx, spec, jid), SCENARIO_TIMEOUT)
    return spec


def _past_junction(ctx: BuildContext, spec: ScenarioSpec, junction_id: int) -> int:
    """The ego's route progress past its pass through `junction_id` (-1: the next junction)."""
    s = ctx.trigger_s
    for _ in range(20):
        jp = ctx.route.junction_after(s)
        if junction_id < 0 or jp.junction_id == junction_id:
            return spec.ego_past_s(jp.exit_s)
        s = jp.exit_s + 0.5
    raise PlacementError(f"the route does not cross junction {junction_id}")


def interurban_actor_flow(ctx: BuildContext) -> ScenarioSpec:
    """A flow on the interurban road the ego crosses turning left (not populated at the start); ends when
    the ego left the junction."""
    spec = ctx.spec("yield to the flow on the interurban road; turn left across it through a gap")
    src, sink = _snap(ctx, "start_actor_flow"), _snap(ctx, "end_actor_flow")
    _flow(ctx, spec, src, sink, initial=False)
    spec.finish(_past_junction(ctx, spec, -1), SCENARIO_TIMEOUT)
    return spec


def interurban_advanced_actor_flow(ctx: BuildContext) -> ScenarioSpec:
    """Two flows: the given one, and one in the opposite direction on the lanes left of its sink and source;
    the ego crosses the first and merges into the second; ends when it is past the second's sink (within 10 m)."""
    spec = ctx.spec("cross the near flow and merge into the far one, each through a gap")
    src, sink = _snap(ctx, "start_actor_flow"), _snap(ctx, "end_actor_flow")
    _flow(ctx, spec, src, sink, initial=False)
    src2, sink2 = side_lane(ctx.town, *sink, "left"), side_lane(ctx.town, *src, "left")
    if src2 is None or sink2 is None:
        raise PlacementError("couldn't find a position for the actor flow")
    _flow(ctx, spec, src2[:2], sink2[:2], initial=False)
    x, y, yaw = lane_pose(ctx.town, sink2[0], sink2[1])
    spec.windows.append(Window(WindowKind.CLEAR, STARTED, -2, sink2[0], 0.0, ctx.town.lanes[sink2[0]].length))
    spec.finish(spec.ahead_of_point(None, (x, y), yaw, 10.0), SCENARIO_TIMEOUT)
    return spec


BUILDERS = {
    "EnterActorFlow": enter_actor_flow,
    "EnterActorFlowV2": enter_actor_flow,
    "MergerIntoSlowTraffic": enter_actor_flow,
    "MergerIntoSlowTrafficV2": enter_actor_flow,
    "HighwayExit": highway_exit,
    "InterurbanActorFlow": interurban_actor_flow,
    "InterurbanAdvancedActorFlow": interurban_advanced_actor_flow,
}
