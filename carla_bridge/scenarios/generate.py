"""Generate leaderboard-2.0 scenario routes for any town: for each scenario type, routes whose trigger
point sits where the type makes sense — junction types before a junction the route turns or crosses
(signalized or not, with an entry from the needed direction), two-way types on roads whose left lane is
an oncoming lane, highway / multi-lane types where a same-direction lane runs beside the route, merges
where another entry's flow leads into the road the route enters — with parameters drawn from the ranges
of the official leaderboard-2.0 routes.

Every candidate is checked the way it will be run: the route is re-planned from the keypoints written
to the file and the scenario is built on it (`build_scenarios`); a candidate that fails is discarded.
Types a town cannot host (e.g. stop-sign junctions in towns without stop signs) are reported with the
number of routes found.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from carla_bridge.route_planner import plan_route
from carla_bridge.routes import Route, ScenarioConfig, Weather
from carla_bridge.scenarios.build import build_scenarios
from carla_bridge.scenarios.catalog import SCENARIO_TYPES
from carla_bridge.scenarios.lanes import (
    PlacementError,
    direction_of,
    junction_entries,
    lane_pose,
    same_dir_lanes,
    side_lane,
    turn_of,
)

KEYPOINT_SPACING = 20.0
"""[m] between the route's keypoints in the file (dense enough that re-planning takes the same lanes)."""
LEAD_IN = (40.0, 70.0)
"""[m] route before the trigger point."""
RUN_OUT = 80.0
"""[m] route after the scenario's stretch."""
BLOCKER_MODELS = (
    "static.prop.vendingmachine",
    "static.prop.container",
    "static.prop.haybalelb",
    "static.prop.advertisement",
    "vehicle.tesla.model3",
    "vehicle.mini.cooper_s",
)


@dataclass(frozen=True)
class Candidate:
    """A proposed route: lane pieces (lane, s0, s1) in driving order, the trigger's index in them and arc
    length on its lane, and the scenario's parameters."""

    pieces: list[tuple[int, float, float]]
    trigger: tuple[int, float]
    params: dict


class _Town:
    """The town's lanes with the lookups the placements need."""

    def __init__(self, town, md) -> None:
        self.town, self.md = town, md
        self.lanes = town.lanes
        self.straight = [ln.id for ln in self.lanes if not ln.is_junction and ln.length > 30.0]
        self.junctions = sorted({ln.junction_id for ln in self.lanes if ln.is_junction})

    def signalized(self, entry: int) -> bool:
        return int(self.md.lanes.lane_head[entry]) >= 0

    def has_stop(self, entry: int) -> bool:
        return bool(np.isfinite(self.md.lanes.lane_stop_s[entry]))


def _back(t: _Town, lane: int, s: float, dist: float) -> list[tuple[int, float, float]]:
    """Pieces covering `dist` metres behind (lane, s), ending at s (predecessors, the first of each)."""
    out = [(lane, max(s - dist, 0.0), s)]
    left = dist - s
    cur = lane
    while left > 0.0 and t.lanes[cur].predecessors:
        cur = t.lanes[cur].predecessors[0]
        ln = t.lanes[cur]
        out.insert(0, (cur, max(ln.length - left, 0.0), ln.length))
        left -= ln.length
    return out


def _forward(t: _Town, lane: int, s: float, dist: float, turn: int | None) -> list[tuple[int, float, float]] | None:
    """Pieces covering `dist` metres ahead of (lane, s); at the first junction take `turn` (-1 left, 0
    straight, 1 right; None: straight), later ones straight. None at a dead end."""
    out = []
    left, cur, first = dist, lane, True
    while True:
        ln = t.lanes[cur]
        take = min(ln.length - s, left)
        out.append((cur, s, s + take))
        left -= take
        if left <= 0.0:
            return out
        if not ln.successors:
            return None
        choices = ln.successors
        if any(t.lanes[k].is_junction for k in choices) and not ln.is_junction:
            want = turn if (first and turn is not None) else 0
            first = False
            turns = [turn_of(t.town, k) for k in choices]
            match = [k for k, tr in zip(choices, turns) if tr == want]
            if not match:
                return None
            cur = match[0]
        else:
            cur = choices[0]
        s = 0.0


def _keypoints(t: _Town, pieces: list[tuple[int, float, float]]) -> np.ndarray:
    """World keypoints every `KEYPOINT_SPACING` m along the pieces, with each piece's ends."""
    pts = []
    for lane, s0, s1 in pieces:
        n = max(1, math.ceil((s1 - s0) / KEYPOINT_SPACING))
        for s in np.linspace(s0, s1, n + 1):
            x, y, _ = lane_pose(t.town, lane, float(s))
            if not pts or math.hypot(x - pts[-1][0], y - pts[-1][1]) > 2.0:
                pts.append((x, y))
    return np.array(pts)


# ------------------------------------------------------------------ placements (type → candidate)


def _stretch(t: _Town, rng, need: float, ok: Callable[[int, float], bool]) -> tuple[int, float] | None:
    """A (lane, s) on a non-junction lane with `need` metres of the same lane ahead where `ok` holds."""
    cands = [k for k in t.straight if t.lanes[k].length > need + 10.0]
    if not cands:
        return None
    lane = cands[int(rng.integers(len(cands)))]
    s = float(rng.uniform(3.0, t.lanes[lane].length - need - 3.0))
    return (lane, s) if ok(lane, s) else None


def _two_way(t: _Town, lane: int, s: float) -> bool:
    n = side_lane(t.town, lane, s, "left")
    return n is not None and not n[2]


def _left_same(t: _Town, lane: int, s: float) -> bool:
    n = side_lane(t.town, lane, s, "left")
    return n is not None and n[2]


def _right_non_driving(t: _Town, lane: int, s: float) -> bool:
    return side_lane(t.town, lane, s, "right") is None


def _along(t: _Town, rng, need: float, ok, params: dict, lead_in: bool = True, ahead: float = 0.0) -> Candidate | None:
    """A trigger on a lane with `need` metres ahead on it where `ok` holds (at its start, middle, end); the
    route runs `max(need + RUN_OUT, ahead)` metres past the trigger."""
    at = _stretch(t, rng, need, lambda ln, s: all(ok(ln, s + d) for d in (0.0, 0.5 * need, need)))
    if at is None:
        return None
    lane, s = at
    back = _back(t, lane, s, float(rng.uniform(*LEAD_IN))) if lead_in else [(lane, s, s)]
    fwd = _forward(t, lane, s, max(need + RUN_OUT, ahead), None)
    if fwd is None:
        return None
    return Candidate(back + fwd, at, params)


def _junction_candidate(
    t: _Town, rng, turn: int, want: Callable[[int, int], bool], params: dict, before=(25.0, 40.0), after: float = 0.0
):
    """A trigger `before` metres ahead of a junction entry `e` with `want(e, junction)`, the route turning `turn`."""
    entries = [ln.id for ln in t.lanes if not ln.is_junction and any(t.lanes[k].is_junction for k in ln.successors)]
    e = entries[int(rng.integers(len(entries)))]
    j = next(t.lanes[k].junction_id for k in t.lanes[e].successors if t.lanes[k].is_junction)
    if not want(e, j):
        return None
    d = float(rng.uniform(*before))
    ln = t.lanes[e]
    if ln.length > d:
        trig = (e, ln.length - d)
        pieces = _back(t, e, ln.length - d, float(rng.uniform(*LEAD_IN)))
    else:
        back = _back(t, e, ln.length, d)
        if back[0][2] - back[0][1] < 1.0 or t.lanes[back[0][0]].is_junction:
            return None
        trig = (back[0][0], back[0][1])
        pieces = _back(t, trig[0], trig[1], float(rng.uniform(*LEAD_IN)))
    fwd = _forward(t, trig[0], trig[1], max(d + 40.0 + RUN_OUT, after), turn)
    if fwd is None:
        return None
    return Candidate(pieces + fwd, trig, params)


def _dir_entries(t: _Town, e: int, j: int, direction: str) -> list[int]:
    yaw = float(t.lanes[e].yaw[-1])
    return [k for k in junction_entries(t.town, j) if direction_of(t.town, k, yaw) == direction]


def _flow_range(rng, speed=(8.0, 14.0)) -> dict:
    lo = float(rng.uniform(10.0, 20.0))
    return {
        "flow_speed": {"value": f"{rng.uniform(*speed):.1f}"},
        "source_dist_interval": {"from": f"{lo:.0f}", "to": f"{lo + rng.uniform(25.0, 50.0):.0f}"},
    }


def _loc(t: _Town, lane: int, s: float) -> dict:
    """A location parameter (CARLA coordinates) of the lane point (lane, s)."""
    x, y, _ = lane_pose(t.town, lane, s)
    return {"x": f"{x:.1f}", "y": f"{-y:.1f}", "z": "0.0"}


def _upstream(t: _Town, lane: int, dist: float) -> tuple[int, float]:
    piece = _back(t, lane, t.lanes[lane].length, dist)[0]
    return piece[0], piece[1]


def _straight_exit(t: _Town, entry: int) -> int | None:
    for k in t.lanes[entry].successors:
        if t.lanes[k].is_junction and turn_of(t.town, k) == 0 and t.lanes[k].successors:
            return t.lanes[k].successors[0]
    return None


def _place(typ: str, t: _Town, rng) -> Candidate | None:
    v = lambda x: {"value": x}  # noqa: E731
    freq = lambda: {"from": f"{rng.uniform(20, 40):.0f}", "to": f"{rng.uniform(60, 100):.0f}"}  # noqa: E731
    if typ in ("Accident", "ConstructionObstacle", "ParkedObstacle", "HazardAtSideLane"):
        d = float(rng.uniform(50.0, 90.0))
        p = {"distance": v(f"{d:.0f}"), "direction": v("right"), "speed": v("60")}
        if typ == "HazardAtSideLane":
            p.update(
                bicycle_drive_distance=v(f"{rng.uniform(60, 100):.0f}"), bicycle_speed=v(f"{rng.uniform(8, 13):.0f}")
            )
        return _along(t, rng, d + 80.0, lambda ln, s: _left_same(t, ln, s), p)
    if typ in ("AccidentTwoWays", "ConstructionObstacleTwoWays", "ParkedObstacleTwoWays", "HazardAtSideLaneTwoWays"):
        d = float(rng.uniform(50.0, 80.0))
        p = {"distance": v(f"{d:.0f}")}
        if typ == "HazardAtSideLaneTwoWays":
            p.update(
                frequency=v(f"{rng.uniform(60, 100):.0f}"), bicycle_drive_distance=v(f"{rng.uniform(60, 100):.0f}")
            )
            p.update(bicycle_speed=v(f"{rng.uniform(8, 13):.0f}"))
        else:
            p["frequency"] = freq()
        return _along(t, rng, d + 80.0, lambda ln, s: _two_way(t, ln, s), p)
    if typ == "VehicleOpensDoorTwoWays":
        d = float(rng.uniform(35.0, 70.0))
        return _along(
            t, rng, d + 60.0, lambda ln, s: _two_way(t, ln, s), {"distance": v(f"{d:.0f}"), "frequency": freq()}
        )
    if typ == "InvadingTurn":
        d = float(rng.uniform(60.0, 100.0))
        p = {"distance": v(f"{d:.0f}"), "offset": v(f"{rng.uniform(0.15, 0.55):.2f}")}
        return _along(t, rng, d + 40.0, lambda ln, s: _two_way(t, ln, s), p)
    if typ in ("DynamicObjectCrossing", "ParkingCrossingPedestrian"):
        d = float(rng.uniform(35.0, 70.0))
        p = {"distance": v(f"{d:.0f}"), "direction": v("right"), "crossing_angle": v(f"{rng.uniform(0, 15):.0f}")}
        if typ == "DynamicObjectCrossing":
            p["blocker_model"] = v(str(rng.choice(BLOCKER_MODELS)))
        return _along(t, rng, d + 50.0, lambda ln, s: True, p)
    if typ in ("ParkingCutIn",):
        return _along(t, rng, 90.0, lambda ln, s: _right_non_driving(t, ln, s), {"direction": v("right")})
    if typ == "StaticCutIn":
        d = float(rng.uniform(70.0, 110.0))
        return _along(
            t, rng, d + 90.0, lambda ln, s: _left_same(t, ln, s), {"distance": v(f"{d:.0f}"), "direction": v("left")}
        )
    if typ == "YieldToEmergencyVehicle":
        d = float(rng.uniform(115.0, 150.0))
        at = _stretch(t, rng, 120.0, lambda ln, s: all(_left_same(t, ln, s + x) for x in (0.0, 60.0, 120.0)))
        if at is None:
            return None
        # long enough for the emergency vehicle to catch up (d at +25 km/h) and the 10 s after, at the limit
        ahead = (d / (25.0 / 3.6) + 12.0) * t.lanes[at[0]].speed_limit + 50.0
        fwd = _forward(t, *at, ahead, None)
        if fwd is None:
            return None
        return Candidate(_back(t, *at, float(rng.uniform(*LEAD_IN))) + fwd, at, {"distance": v(f"{d:.0f}")})
    if typ in ("HardBreakRoute", "ControlLoss"):
        return _along(t, rng, 120.0, lambda ln, s: True, {})
    if typ == "ParkingExit":
        p = {"direction": v("right"), "front_vehicle_distance": v("9"), "behind_vehicle_distance": v("9")}
        return _along(t, rng, 60.0, lambda ln, s: _right_non_driving(t, ln, s), p, lead_in=False)
    if typ == "SequentialLaneChange":
        return _lane_changes(t, rng)
    # ---- junction types
    if typ in ("OppositeVehicleTakingPriority", "OppositeVehicleRunningRedLight"):
        direction = str(rng.choice(["left", "right"]))
        sig = typ.endswith("RedLight")
        return _junction_candidate(
            t,
            rng,
            0,
            lambda e, j: t.signalized(e) == sig and bool(_dir_entries(t, e, j, direction)),
            {"direction": v(direction)},
        )
    if typ == "BlockedIntersection":
        return _junction_candidate(t, rng, int(rng.choice([-1, 1])), lambda e, j: True, {})
    if typ in ("VehicleTurningRoute", "VehicleTurningRoutePedestrian"):
        return _junction_candidate(t, rng, int(rng.choice([-1, 1])), lambda e, j: True, {})
    if typ == "PedestrianCrossing":
        return _junction_candidate(t, rng, int(rng.choice([-1, 0, 1])), lambda e, j: True, {})
    if "JunctionLeftTurn" in typ or "JunctionRightTurn" in typ:
        sig = typ.startswith("Signalized")
        right = "RightTurn" in typ
        direction = "left" if right else "opposite"
        return _junction_candidate(
            t,
            rng,
            1 if right else -1,
            lambda e, j: t.signalized(e) == sig and bool(_dir_entries(t, e, j, direction)),
            _flow_range(rng),
        )
    if typ == "CrossingBicycleFlow":
        side = str(rng.choice(["left", "right"]))

        def want(e, j):
            ents = _dir_entries(t, e, j, side)
            if not ents:
                return False
            want.start = _upstream(t, same_dir_lanes(t.town, ents[0], t.lanes[ents[0]].length - 0.5)[-1][0], 35.0)
            return True

        c = _junction_candidate(t, rng, int(rng.choice([-1, 0, 1])), want, _flow_range(rng, (5.0, 9.0)))
        if c is not None:
            c.params["start_actor_flow"] = _loc(t, *want.start)
        return c
    if typ in ("EnterActorFlow", "EnterActorFlowV2", "MergerIntoSlowTraffic", "MergerIntoSlowTrafficV2"):
        return _enter_flow(t, rng, _flow_range(rng, (8.0, 12.0) if typ.startswith("Merger") else (12.0, 18.0)))
    if typ == "InterurbanActorFlow":
        return _crossing_flow(t, rng, -1, "opposite", _flow_range(rng, (12.0, 18.0)))
    if typ == "InterurbanAdvancedActorFlow":
        return _crossing_flow(t, rng, -1, "left", _flow_range(rng, (12.0, 18.0)))
    if typ == "HighwayExit":
        return _highway_exit(t, rng, _flow_range(rng, (10.0, 15.0)))
    if typ == "HighwayCutIn":
        return _highway_cut_in(t, rng)
    if typ in (
        "PriorityAtJunction",
        "VanillaSignalizedTurnEncounterGreenLight",
        "VanillaSignalizedTurnEncounterRedLight",
    ):
        return _junction_candidate(t, rng, int(rng.choice([-1, 0, 1])), lambda e, j: t.signalized(e), {})
    if typ == "VanillaNonSignalizedTurn":
        return _junction_candidate(t, rng, int(rng.choice([-1, 1])), lambda e, j: not t.signalized(e), {})
    if typ == "VanillaNonSignalizedTurnEncounterStopsign":
        return _junction_candidate(t, rng, int(rng.choice([-1, 1])), lambda e, j: t.has_stop(e), {})
    if typ == "T_Junction":

        def three_way(e, j):
            roads = {t.lanes[k].road_id for k in junction_entries(t.town, j)}
            return len(roads) == 3

        return _junction_candidate(t, rng, int(rng.choice([-1, 1])), three_way, {}, after=230.0)
    return None


def _lane_changes(t: _Town, rng) -> Candidate | None:
    """SequentialLaneChange: three stretches on neighbouring same-direction lanes (A → B → C, or back to A)."""
    at = _stretch(t, rng, 150.0, lambda ln, s: _left_same(t, ln, s) or side_lane(t.town, ln, s, "right") is not None)
    if at is None:
        return None
    lane, s = at
    lanes = [x[0] for x in same_dir_lanes(t.town, lane, s)]
    if len(lanes) < 2:
        return None
    i = lanes.index(lane)
    j = i + 1 if i + 1 < len(lanes) else i - 1
    k = j + (j - i) if 0 <= j + (j - i) < len(lanes) else i
    third = [lanes[j], lanes[k]]
    pieces = _back(t, lane, s, float(rng.uniform(*LEAD_IN)))
    pieces[-1] = (lane, pieces[-1][1], s + 40.0)
    pieces += [(third[0], s + 60.0, s + 90.0), (third[1], s + 110.0, s + 150.0)]
    if any(p[2] > t.lanes[p[0]].length for p in pieces):
        return None
    fwd = _forward(t, third[1], s + 150.0, 100.0, None)
    if fwd is None:
        return None
    return Candidate(pieces + fwd[1:], (lane, s), {})


def _enter_flow(t: _Town, rng, params: dict) -> Candidate | None:
    """The route turns into a road that another entry's straight flow also leads into; the flow runs from
    50 m up that entry to 60 m down the road."""
    turn = int(rng.choice([-1, 1]))
    found = {}

    def want(e, j):
        exit_ = _turn_exit(t, e, turn)
        if exit_ is None:
            return False
        targets = {x[0] for x in same_dir_lanes(t.town, exit_, 1.0)}
        for e2 in junction_entries(t.town, j):
            if t.lanes[e2].road_id == t.lanes[e].road_id:
                continue
            x2 = _straight_exit(t, e2)
            if x2 is not None and x2 in targets:
                found["src"], found["dst"] = _upstream(t, e2, 50.0), (x2, min(60.0, t.lanes[x2].length - 1.0))
                return True
        return False

    return _with_flow(_junction_candidate(t, rng, turn, want, params), t, found)


def _with_flow(c: Candidate | None, t: _Town, found: dict) -> Candidate | None:
    """The candidate with the flow's start and end (found while placing it) as location parameters."""
    if c is None:
        return None
    c.params["start_actor_flow"] = _loc(t, *found["src"])
    c.params["end_actor_flow"] = _loc(t, *found["dst"])
    return c


def _turn_exit(t: _Town, entry: int, turn: int) -> int | None:
    for k in t.lanes[entry].successors:
        if t.lanes[k].is_junction and turn_of(t.town, k) == turn and t.lanes[k].successors:
            return t.lanes[k].successors[0]
    return None


def _crossing_flow(t: _Town, rng, turn: int, direction: str, params: dict) -> Candidate | None:
    """The route turns `turn` across a straight flow from the `direction` entry (60 m up it to 40 m past
    its exit); the advanced variant needs the flow's road to be two-way (a second flow comes back)."""
    found = {}

    def want(e, j):
        if _turn_exit(t, e, turn) is None:
            return False
        for e2 in _dir_entries(t, e, j, direction):
            x2 = _straight_exit(t, e2)
            if x2 is None:
                continue
            if direction == "left" and not (_two_way(t, x2, 1.0) and _two_way(t, e2, t.lanes[e2].length - 1.0)):
                continue
            found["src"], found["dst"] = _upstream(t, e2, 60.0), (x2, min(40.0, t.lanes[x2].length - 1.0))
            return True
        return False

    return _with_flow(_junction_candidate(t, rng, turn, want, params), t, found)


def _highway_exit(t: _Town, rng, params: dict) -> Candidate | None:
    """The route leaves a multi-lane road by its rightmost lane at a junction, starting one lane to the
    left; the flow runs on the rightmost lane from behind the trigger point to 40 m down the exit."""
    entries = [ln.id for ln in t.lanes if not ln.is_junction and any(t.lanes[k].is_junction for k in ln.successors)]
    e = entries[int(rng.integers(len(entries)))]
    ln = t.lanes[e]
    if ln.length < 120.0 or side_lane(t.town, e, ln.length - 1.0, "right") is not None:
        return None
    left = side_lane(t.town, e, ln.length - 100.0, "left")
    if left is None or not left[2]:
        return None
    exit_ = _turn_exit(t, e, 1) or _straight_exit(t, e)
    if exit_ is None:
        return None
    trig = (left[0], left[1])
    pieces = _back(t, trig[0], trig[1], float(rng.uniform(*LEAD_IN)))
    pieces[-1] = (trig[0], pieces[-1][1], trig[1] + 20.0)
    pieces.append((e, ln.length - 60.0, ln.length))
    fwd = _forward(t, e, ln.length - 0.01, RUN_OUT, 1 if _turn_exit(t, e, 1) else 0)
    if fwd is None:
        return None
    params = dict(params)
    params["start_actor_flow"] = _loc(t, *_upstream(t, e, 150.0))
    params["end_actor_flow"] = _loc(t, exit_, min(40.0, t.lanes[exit_].length - 1.0))
    return Candidate(pieces + fwd[1:], trig, params)


def _highway_cut_in(t: _Town, rng) -> Candidate | None:
    """The route goes straight through a junction where an on-ramp's lane merges on its right; the cut-in
    car starts 60 m up the ramp."""
    entries = [ln.id for ln in t.lanes if not ln.is_junction and any(t.lanes[k].is_junction for k in ln.successors)]
    e2 = entries[int(rng.integers(len(entries)))]
    x2 = _straight_exit(t, e2)
    if x2 is None:
        return None
    left = side_lane(t.town, x2, min(15.0, t.lanes[x2].length - 1.0), "left")
    if left is None or not left[2]:
        return None
    x = left[0]
    feeders = [
        p
        for p in t.lanes[x].predecessors
        if t.lanes[p].is_junction
        and t.lanes[p].predecessors
        and t.lanes[t.lanes[p].predecessors[0]].road_id != t.lanes[e2].road_id
    ]
    if not feeders:
        return None
    e = t.lanes[feeders[0]].predecessors[0]
    turn = turn_of(t.town, feeders[0])
    d = float(rng.uniform(25.0, 40.0))
    if t.lanes[e].length <= d:
        return None
    trig = (e, t.lanes[e].length - d)
    pieces = _back(t, *trig, float(rng.uniform(*LEAD_IN)))
    fwd = _forward(t, *trig, d + 60.0 + RUN_OUT, turn)
    if fwd is None:
        return None
    return Candidate(pieces + fwd, trig, {"other_actor_location": _loc(t, *_upstream(t, e2, 60.0))})


# ------------------------------------------------------------------ the generator


@dataclass(frozen=True)
class GenerationReport:
    """How many routes each requested type got (fewer than asked when the town offers too few places)."""

    town: str
    requested: int
    found: dict[str, int]

    @property
    def missing(self) -> dict[str, int]:
        return {k: self.requested - v for k, v in self.found.items() if v < self.requested}


def _weathers(rng) -> tuple[Weather, ...]:
    base = dict(Weather.base().params)
    out = []
    for pct in (0.0, 100.0):
        w = dict(base)
        w.update(cloudiness=float(rng.uniform(0, 60)), sun_altitude_angle=float(rng.uniform(15, 90)))
        out.append(Weather(pct, w))
    return tuple(out)


def _route(t: _Town, cand: Candidate, rid: str, typ: str, index: int, rng) -> Route:
    kp = _keypoints(t, cand.pieces)
    z = t.town.ground_z(kp)
    lane, s = cand.trigger
    x, y, yaw = lane_pose(t.town, lane, s)
    tz = float(t.town.ground_z(np.array([[x, y]]))[0])
    cfg = ScenarioConfig(f"{typ}_{index}", typ, np.array([x, y, tz]), float(yaw), cand.params)
    return Route(
        rid, t.town.name, np.column_stack([kp, z]), np.full(len(kp), np.nan), "2.0", None, (cfg,), _weathers(rng)
    )


def generate_routes(
    town,
    types: Sequence[str],
    count: int,
    seed: int,
    map_data=None,
    max_attempts: int = 400,
    progress: Callable[[str, int], None] | None = None,
) -> tuple[list[Route], GenerationReport]:
    """Up to `count` routes per scenario type on `town` (a `TownMap`), each with its one scenario.

    Args:
        types: scenario type names (`carla_bridge.scenarios.SCENARIO_TYPES`).
        seed: seeds every choice (same seed, same routes).
        map_data: the town's lite `MapData` (built when None).
        max_attempts: candidate placements tried per route wanted.
        progress: called with (type, routes found so far) after each found route.

    Raises:
        ValueError: an unknown type or a non-positive count.
    """
    from carla_bridge.lite.map_data import build_map_data

    unknown = [x for x in types if x not in SCENARIO_TYPES]
    if unknown:
        raise ValueError(f"unknown scenario types {unknown}; known: {', '.join(sorted(SCENARIO_TYPES))}")
    if count < 1:
        raise ValueError(f"count must be ≥ 1, got {count}")
    md = map_data if map_data is not None else build_map_data(town, seed=town.seed)
    t = _Town(town, md)
    rng = np.random.default_rng(seed)
    routes: list[Route] = []
    found: dict[str, int] = {}
    for typ in types:
        triggers: list[tuple[float, float]] = []
        n = 0
        for _ in range(max_attempts * count):
            if n >= count:
                break
            try:
                cand = _place(typ, t, rng)
            except PlacementError:
                continue
            if cand is None:
                continue
            x, y, _ = lane_pose(town, *cand.trigger)
            if any(math.hypot(x - a, y - b) < 30.0 for a, b in triggers):
                continue
            route = _route(t, cand, str(len(routes)), typ, n, rng)
            if not _runs(t, route, seed):
                continue
            triggers.append((x, y))
            routes.append(route)
            n += 1
            if progress is not None:
                progress(typ, n)
        found[typ] = n
    return routes, GenerationReport(town.name, count, found)


def _runs(t: _Town, route: Route, seed: int) -> bool:
    """The route re-plans from its keypoints and its scenario builds on it."""
    try:
        plan = plan_route(t.town, route.waypoints_world)
    except ValueError:
        return False
    _, records = build_scenarios(t.town, t.md, plan, route.scenarios, seed)
    return all(r.built for r in records)
