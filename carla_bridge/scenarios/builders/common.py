"""What every scenario builder shares: the build context (town, route, the scenario's config and
trigger) and the pieces several families place the same way (parked vehicles, props at the roadside,
the oncoming `OppositeActorFlow`, the background activity leaving a stretch free, a junction's lights)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents import AgentClass
from carla_bridge.lite.lights import HeadState
from carla_bridge.scenarios.catalog import scenario_type
from carla_bridge.scenarios.lanes import (
    PlacementError,
    RouteView,
    back,
    follow,
    lane_path,
    lane_pose,
    offset_of,
    side_lane,
    walk_out,
)
from carla_bridge.scenarios.spec import (
    INIT,
    NEVER,
    Flow,
    LightFreeze,
    PathSegment,
    Prop,
    ScenarioSpec,
    VehicleActor,
    VehicleBehaviour,
    Window,
    WindowKind,
)

CAR = (AgentClass.CAR, (4.6, 1.9, 1.5))
POLICE = (AgentClass.CAR, (5.0, 2.0, 1.6))
EMERGENCY_VEHICLE = (AgentClass.CAR, (6.2, 2.3, 2.4))
BICYCLE = (AgentClass.BICYCLE, (1.8, 0.7, 1.6))
WARNING_SIGN = (AgentClass.BARRIER, (0.3, 1.2), 1.5)
"""`static.prop.warningaccident` / `warningconstruction`: (class, (depth, width), height)."""
SCENARIO_TIMEOUT = 240.0
"""[s] the `ScenarioTimeout` of the scenarios that block the route."""
KMH = 1.0 / 3.6


@dataclass
class BuildContext:
    """One scenario being built.

    Attributes:
        town: the `TownMap`; md: its lite `MapData`; route: the route (`RouteView`).
        cfg: the scenario's `ScenarioConfig`; trigger_s: route arc length of its trigger point [m].
        seed: seeds the scenario's random choices (srunner's `CarlaDataProvider.get_random_seed()`).
    """

    town: object
    md: object
    route: RouteView
    cfg: object
    trigger_s: float
    seed: int

    def spec(self, expert: str) -> ScenarioSpec:
        st = scenario_type(self.cfg.type)
        x, y, _ = self.route.pose(self.trigger_s)
        spec = ScenarioSpec(
            name=self.cfg.name,
            type=self.cfg.type,
            family=st.family.name.lower() if st else "",
            trigger_s=self.trigger_s,
            trigger_xy=np.array([x, y]),
            expert=expert,
        )
        spec.started()
        return spec

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def lane_at(self, route_s: float) -> tuple[int, float]:
        return self.route.lane_at(route_s)

    def point(self, route_s: float, lateral: float = 0.0) -> tuple[float, float, float]:
        """World (x, y, yaw) on the route's lane at route arc length `route_s`, `lateral` to its left."""
        lane, s = self.lane_at(route_s)
        return lane_pose(self.town, lane, s, lateral)

    def width(self, route_s: float) -> float:
        return float(self.town.lanes[self.lane_at(route_s)[0]].width)

    def speed_limit(self) -> float:
        """The speed limit of the ego's lane at the trigger point [m/s] (the actor's `get_speed_limit()`)."""
        return float(self.town.lanes[self.lane_at(self.trigger_s)[0]].speed_limit)

    def direction(self, default: str = "right") -> str:
        d = self.cfg.value("direction", str, default)
        if d not in ("left", "right"):
            raise PlacementError(f"'direction' must be either 'right' or 'left' but {d!r} was given")
        return d


def side_sign(direction: str) -> float:
    """+1 for 'left', -1 for 'right' (our lateral offsets are positive to the left)."""
    return 1.0 if direction == "left" else -1.0


def parked(role: str, kind, lane: int, s: float, lateral: float, appear: int = INIT) -> VehicleActor:
    """A vehicle standing at (lane, s) `lateral` metres left of the centreline (hand brake on)."""
    cls, size = kind
    return VehicleActor(
        role, cls, size, [PathSegment(lane, s, s, lateral, lateral)], VehicleBehaviour.PARKED, appear=appear
    )


def roadside_prop(ctx: BuildContext, route_s: float, direction: str, role: str, appear: int = INIT) -> Prop:
    """The warning sign srunner's `_spawn_side_prop` puts beside the road at `route_s`: on the first lane
    beyond the driving / parking lanes on the `direction` side, 0.3 lane widths further out."""
    lane, s = ctx.lane_at(route_s)
    end, start = walk_out(ctx.town, lane, s, direction, lambda kind: kind not in ("Driving", "Parking"))
    sign = side_sign(direction)
    off = offset_of(ctx.town, lane, s, end) if end is not start else sign * 0.5 * ctx.town.lanes[lane].width
    x, y, yaw = lane_pose(ctx.town, lane, s, off + sign * (0.3 * end.lane_width + 0.5))
    cls, (depth, width), height = WARNING_SIGN
    return Prop(role, cls, (x, y, yaw, depth, width), height, appear=appear)


def clear_route(ctx: BuildContext, spec: ScenarioSpec, s0: float, s1: float, start: int, stop: int = NEVER) -> None:
    """`LeaveSpaceInFront` / `RemoveRoadLane`: the background leaves the route's lanes between route arc
    lengths s0 and s1 free from `start` until `stop`."""
    for seg in ctx.route.path(max(s0, 0.0), min(s1, ctx.route.length)):
        spec.windows.append(Window(WindowKind.CLEAR, start, stop, seg.lane, seg.s0, seg.s1))


def clear_path(spec: ScenarioSpec, path: list[PathSegment], start: int, stop: int = NEVER) -> None:
    """The background leaves the lanes of `path` free from `start` until `stop`."""
    for seg in path:
        spec.windows.append(Window(WindowKind.CLEAR, start, stop, seg.lane, min(seg.s0, seg.s1), max(seg.s0, seg.s1)))


def left_lane(ctx: BuildContext, route_s: float) -> tuple[int, float, bool]:
    """`wp.get_left_lane()` of the route's lane at `route_s`: (lane, s, same direction).

    Raises:
        PlacementError: it is not a driving lane ("Couldnt find a left lane to spawn the opposite traffic").
    """
    lane, s = ctx.lane_at(route_s)
    out = side_lane(ctx.town, lane, s, "left")
    if out is None:
        raise PlacementError("couldn't find a left lane to spawn the opposite traffic")
    return out


def opposite_flow(
    ctx: BuildContext,
    spec: ScenarioSpec,
    ref: tuple[int, float],
    gap: tuple[float, float],
    active: int,
    lateral: float = 0.0,
    role: str = "oncoming",
    distance: float | None = None,
) -> Flow:
    """`OppositeActorFlow` around `ref` (lane, s) on the lane beside the ego: sources `1.5 × v + 30` m
    (v the ego's speed limit in km/h) upstream of `ref` in that lane's direction, sink as far
    downstream (both stop at junctions); the vehicles drive at the speed limit braking for what is
    ahead (`BasicAgent`); the background's own traffic leaves that stretch meanwhile
    (`ChangeOppositeBehavior(active=False)`)."""
    v_kmh = ctx.speed_limit() / KMH
    d = 1.5 * v_kmh + 30.0 if distance is None else distance
    src = back(ctx.town, ref[0], ref[1], d, stop_at_junction=True)
    sink = follow(ctx.town, ref[0], ref[1], d, stop_at_junction=True)
    path = lane_path(ctx.town, src, sink, lateral)
    flow = Flow(role, path, ctx.speed_limit(), gap, active, *CAR, follow=True)
    spec.flows.append(flow)
    clear_path(spec, [PathSegment(p.lane, p.s0, p.s1) for p in path], active)
    return flow


def junction_heads(ctx: BuildContext, lane: int) -> tuple[int, list[int]]:
    """The light head governing entry lane `lane` and every head of its junction group.

    Raises:
        PlacementError: no light governs that lane ("Found no traffic lights").
    """
    lanes = ctx.md.lanes
    head = int(lanes.lane_head[lane])
    if head < 0:
        raise PlacementError("found no traffic lights at the junction")
    group = ctx.md.lights.head_group[head]
    return head, [int(h) for h in np.flatnonzero(ctx.md.lights.head_group == group)]


def freeze(spec: ScenarioSpec, heads: list[int], green: set[int], start: int, stop: int = NEVER) -> None:
    """`TrafficLightFreezer`: `green` heads green, the others of `heads` red, from `start` until `stop`."""
    for h in heads:
        state = HeadState.GREEN if h in green else HeadState.RED
        spec.lights.append(LightFreeze(h, int(state), start, stop))
