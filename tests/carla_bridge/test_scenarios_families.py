"""Each scenario family triggered and behaving on real CARLA towns (`carla.Map`), checked against the
numbers srunner's scenario classes define (carla-simulator/scenario_runner, branch leaderboard-2.0,
`srunner/scenarios/*.py`; the file and function are named in each test)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.lights import HeadState
from carla_bridge.lite.map_data import build_map_data
from carla_bridge.lite.random_route import random_route
from carla_bridge.maps import load_town
from carla_bridge.rules import load_rules
from carla_bridge.scenarios.kernel import INIT_DISTANCE, TRIGGER_DISTANCE
from carla_bridge.scenarios.lanes import lane_s, side_lane_waypoint
from carla_bridge.scoring import InfractionKind
from tests.carla_bridge.scenario_testkit import (
    BlindDriver,
    actors,
    config_at,
    ego_centre,
    generated,
    hold,
    phase,
    place_ego,
    world_with,
)


@pytest.fixture(scope="module")
def straight(town01, long_lane):
    """A 300 m route starting on Town01's longest straight lane (a two-way road)."""
    return random_route(town01, 0, 300.0, start_lane=long_lane, start_s=5.0)


@pytest.fixture(scope="module")
def town04():
    return load_town("Town04")


@pytest.fixture(scope="module")
def town04_md(town04):
    return build_map_data(town04, seed=town04.seed)


def _lateral(town, lane: int, xy, s: float | None = None) -> float:
    """Signed lateral offset (+ left) of `xy` from lane `lane` (at arc length s; None: where `xy` projects)."""
    s = lane_s(town, lane, np.asarray(xy)) if s is None else s
    p, yaw = town.lanes[lane].interpolate(np.array([s]))
    d = np.asarray(xy) - p[0]
    return float(-math.sin(yaw[0]) * d[0] + math.cos(yaw[0]) * d[1])


def test_accident_two_ways_actors_flow_opposite_lane_and_end(town01, town01_map_data, straight):
    """`route_obstacles.py` `Accident._initialize_actors`: police car `distance` ahead, crashed cars 10 m and
    6 m further, all displaced 0.6·w/2 to the right; `AccidentTwoWays._create_behavior`: once the ego is
    within 50 m of the first crashed car and 5 s later, the `OppositeActorFlow` runs on the left lane and
    `SwitchWrongDirectionTest(False)`; it ends when the ego is in front of the second car + 50 m."""
    cfg = config_at(straight, 30.0, "AccidentTwoWays", distance=60, frequency={"from": "30", "to": "40"})
    w = world_with(town01, town01_map_data, straight, [cfg])
    (rec,) = w.scenario_records
    assert rec.built and rec.family == "obstacle"
    trig = rec.trigger_s
    assert phase(w) == "dormant" and not actors(w)
    place_ego(w, straight, trig - TRIGGER_DISTANCE - 10.0)
    w.step(hold(w))
    assert phase(w) == "initialised"  # the ego is within INIT_DISTANCE: the actors exist, nothing runs
    cars = actors(w)
    police, crashed = [a for a in cars if a.role == "police car"], [a for a in cars if a.role == "crashed car"]
    assert len(police) == 1 and len(crashed) == 2 and all(a.behaviour == "parked" for a in police + crashed)
    lane = straight.point_lane[0]
    width = town01.lanes[lane].width
    s_trig = float(np.interp(trig, straight.s, straight.s))
    for a, ahead in zip(police + crashed, (60.0, 70.0, 76.0)):
        s = float(town01.project(np.array([a.xy]))[1][0])
        assert s == pytest.approx(s_trig + 5.0 + ahead, abs=1.0)  # the route starts 5 m into the lane
        assert _lateral(town01, lane, a.xy, s) == pytest.approx(-0.3 * width, abs=0.05)
    (sign,) = actors(w, "warning sign")
    assert _lateral(town01, lane, sign.xy, s_trig + 5.0) < -0.5 * width  # beyond the right edge
    # triggered: held 70 m before the first crashed car, the flow does not start
    place_ego(w, straight, trig)
    for _ in range(10):
        w.step(hold(w))
    assert phase(w) == "running" and not actors(w, "oncoming")
    assert bool(w.state.scenarios.blocked_off[0]) and not bool(w.state.scenarios.allow_opposite[0])
    # within 50 m of the first crashed car: 5 s later the oncoming flow and the opposite lane
    place_ego(w, straight, trig + 70.0 - 45.0)
    steps = 0
    while not actors(w, "oncoming"):
        w.step(hold(w))
        steps += 1
        assert steps < 200
    assert steps * w.cfg.dt == pytest.approx(5.0, abs=0.11)
    assert bool(w.state.scenarios.allow_opposite[0])
    for _ in range(60):
        w.step(hold(w))
    oncoming = actors(w, "oncoming")
    assert oncoming
    for a in oncoming:  # driving towards the ego in the lane to its left (a two-way road), at the speed limit
        assert _lateral(town01, lane, a.xy) == pytest.approx(width, abs=0.3)
        assert math.cos(a.yaw - float(straight.yaw[0])) < -0.99
    assert max(a.speed for a in oncoming) == pytest.approx(town01.lanes[lane].speed_limit, rel=0.05)
    # past the second car + 50 m: ended, actors gone, flags off
    place_ego(w, straight, trig + 76.0 + 50.0 + 3.0)
    w.step(hold(w))
    assert phase(w) == "ended" and not actors(w)
    assert not bool(w.state.scenarios.allow_opposite[0]) and not bool(w.state.scenarios.blocked_off[0])


def test_scenario_timeout_is_an_infraction(town01, town01_map_data, long_lane):
    """`atomic_behaviors.py` `ScenarioTimeout` (240 s in `route_obstacles.py`) and `atomic_criteria.py`
    `ScenarioTimeoutTest`: an ego that never passes the parked car gets one `scenario_timeouts` event."""
    rules = load_rules()  # the blocked test off, as the scenario's pending timeout switches it off in srunner
    rules = dataclasses.replace(rules, blocked=dataclasses.replace(rules.blocked, max_time=1e9))
    cfg = LiteConfig(num_vehicles=0, num_pedestrians=0, num_parked=0, num_props=0, dt=0.5, rules=rules)
    long = random_route(town01, 0, 700.0, start_lane=long_lane, start_s=5.0)  # route timeout beyond 240 s
    sc = config_at(long, 30.0, "ParkedObstacleTwoWays", distance=40)
    w = world_with(town01, town01_map_data, long, [sc], cfg)
    assert w.route.timeout > 245.0
    place_ego(w, long, w.scenario_records[0].trigger_s)
    events = []
    for _ in range(500):
        events += w.step(hold(w))
    timeouts = [e for e in events if e.kind == InfractionKind.SCENARIO_TIMEOUT.value]
    assert len(timeouts) == 1
    assert timeouts[0].details == {"scenario": "ParkedObstacleTwoWays_1", "type": "ParkedObstacleTwoWays"}
    assert timeouts[0].time == pytest.approx(240.0 + 0.5, abs=0.51)
    assert phase(w) == "ended" and bool(w.state.scenarios.timed_out[0, 0])


def test_dynamic_object_crossing_starts_at_the_time_to_arrival(town01, town01_map_data, straight):
    """`object_crash_vehicle.py` `DynamicObjectCrossing`: the pedestrian waits on the sidewalk beside the
    blocker and crosses (2 m/s, twice its distance to the lane centre, heading lane + 90° + crossing_angle)
    as soon as the ego's time to arrival at the crossing point is under 2.1 s + 0.1 s·⌊angle/5⌋ or it is
    within 6 m; then it and the blocker go; the scenario ends 40 m of ego driving later."""
    cfg = config_at(straight, 30.0, "DynamicObjectCrossing", distance=60, crossing_angle=10)
    w = world_with(town01, town01_map_data, straight, [cfg])
    place_ego(w, straight, 10.0)
    drive = BlindDriver()
    w.step(drive(w))
    (walker,) = actors(w, "pedestrian") or [None]
    assert walker is None  # appears when the scenario starts
    reaction = 2.1 + 0.1 * math.floor(10 / 5)
    started_at, expected_at = None, None
    cross_xy = None
    for i in range(400):
        w.step(drive(w))
        peds = actors(w, "pedestrian")
        if peds and cross_xy is None:
            p = peds[0]
            lane = straight.point_lane[0]
            s = float(town01.project(np.array([p.xy]))[1][0])
            assert _lateral(town01, lane, p.xy, s) < -0.5 * town01.lanes[lane].width  # on the right sidewalk
            xy0, lane_yaw = town01.lanes[lane].interpolate(np.array([s]))
            heading = math.remainder(p.yaw - float(lane_yaw[0]) - math.radians(100.0), 2 * math.pi)
            assert heading == pytest.approx(0, abs=0.01)
            cross_xy = xy0[0]
            start_xy = np.array(p.xy)
        if cross_xy is not None and expected_at is None:
            d = float(np.linalg.norm(ego_centre(w) - cross_xy))
            v = float(w.ego_speed()[0])
            if d < 6.0 or (v > 0.1 and d / v < reaction):
                expected_at = i + 1  # latched at the next step
        if peds and peds[0].phase == "moving" and started_at is None:
            started_at = i
        if started_at is not None and i > started_at + 5:
            break
    assert started_at is not None and abs(started_at - expected_at) <= 1
    p = actors(w, "pedestrian")[0]
    assert p.speed == 2.0
    dist = float(np.linalg.norm(start_xy - cross_xy))
    for _ in range(int(2 * dist / 2.0 / w.cfg.dt) + 3):
        w.step(hold(w))
    assert not actors(w, "pedestrian") and not actors(w, "blocker")
    assert phase(w) == "running"
    for _ in range(300):
        w.step(drive(w))
        if phase(w) == "ended":
            break
    assert phase(w) == "ended"


def test_opposite_vehicle_running_red_light(town01, town01_map_data):
    """`opposite_vehicle_taking_priority.py` `OppositeVehicleRunningRedLight`: the ego's light frozen green
    and the junction's others red; the emergency vehicle 30 m up the side entry crosses straight at 60 km/h
    when the ego is 2.2 s or 12 m from the crossing point; the scenario ends once the ego left the junction."""
    plan, cfg = generated(town01, town01_map_data, "OppositeVehicleRunningRedLight", seed=3)
    w = world_with(town01, town01_map_data, plan, [cfg])
    drive = BlindDriver()
    heads = None
    seen_speed = 0.0
    for _ in range(900):
        w.step(drive(w))
        if phase(w) == "running" and heads is None:
            ov = w.state.scenarios.light_override[0]
            heads = ov[ov >= 0]
            assert (heads == int(HeadState.GREEN)).sum() == 1 and (heads == int(HeadState.RED)).sum() == len(heads) - 1
            route_light = w.route_light()[0]
            assert int(route_light[0]) == int(w.privileged().light_state[0])  # the ego sees its frozen green
        for a in actors(w, "adversary"):
            seen_speed = max(seen_speed, a.speed)
        if phase(w) == "ended":
            break
    assert heads is not None and phase(w) == "ended"
    assert seen_speed == pytest.approx(60 / 3.6)
    assert bool((w.state.scenarios.light_override[0] < 0).all())  # released at the end


def test_signalized_left_turn_flow_and_lights(town01, town01_map_data):
    """`signalized_junction_left_turn.py` `SignalizedJunctionLeftTurn`: an `ActorFlow` from the opposite
    entry straight through the junction (source 4·flow_speed before it), spawn gaps within
    `source_dist_interval`, vehicles at `flow_speed` ignoring the ego (constant velocity); lights: the ego's
    red and the source's green for 5 s, then both green until the end."""
    plan, cfg = generated(town01, town01_map_data, "SignalizedJunctionLeftTurn", seed=1)
    speed = cfg.value("flow_speed", float, 20.0)
    lo, hi = cfg.interval("source_dist_interval", (25.0, 50.0))
    w = world_with(town01, town01_map_data, plan, [cfg])
    trig = w.scenario_records[0].trigger_s
    place_ego(w, plan, trig)
    w.step(hold(w))
    ov0 = w.state.scenarios.light_override[0].clone()
    for _ in range(int(5.0 / w.cfg.dt) + 2):
        w.step(hold(w))
    ov1 = w.state.scenarios.light_override[0].clone()
    greens0 = set((ov0 == int(HeadState.GREEN)).nonzero().flatten().tolist())
    greens1 = set((ov1 == int(HeadState.GREEN)).nonzero().flatten().tolist())
    assert len(greens0) >= 1 and greens0 < greens1  # the ego's head joins the green ones after 5 s
    assert int(w.route_light()[0][0]) == int(w.privileged().light_state[0])
    # flow: constant speed, gaps along the path within the interval
    for _ in range(200):
        w.step(hold(w))
    flow = actors(w, "flow")
    assert len(flow) >= 2 and all(a.speed == pytest.approx(speed) for a in flow)
    u = sorted(float(x) for x in w.state.scenarios.veh_u[0][w.state.scenarios.veh_phase[0] == 2])
    gaps = np.diff(u)
    assert (gaps > lo - speed * w.cfg.dt - 1e-6).all() and (gaps < hi + speed * w.cfg.dt + 1e-6).all()


def test_parking_cut_in_pulls_out_at_the_time_to_arrival(town01, town01_map_data, straight):
    """`parking_cut_in.py` `ParkingCutIn`: cars parked beside the lane 28 m and 35 m ahead, in the lane to
    the right displaced by `(lane width − extent.y) / 4` outwards (`_get_displaced_location`: on Town01's
    0.3 m shoulder that is inwards); the one at 35 m pulls into the lane when the ego is 2.35 s or 10 m
    from it, at `BasicAgent`'s 20 km/h, and both go after it drove 30 m."""
    cfg = config_at(straight, 30.0, "ParkingCutIn")
    w = world_with(town01, town01_map_data, straight, [cfg])
    place_ego(w, straight, 10.0)
    drive = BlindDriver()
    lane = straight.point_lane[0]
    half = 0.5 * town01.lanes[lane].width
    shoulder = side_lane_waypoint(town01, lane, 60.0, "right").lane_width  # Town01: a 0.3 m shoulder
    parked_lat = -(half + 0.5 * shoulder) - (shoulder - 0.5 * 1.9) / 4.0
    moved = None
    for i in range(600):
        w.step(drive(w))
        cut = actors(w, "cut-in")
        if cut:
            s = float(town01.project(np.array([cut[0].xy]))[1][0])
            lat = _lateral(town01, lane, cut[0].xy, s)
            if cut[0].phase == "waiting":
                assert lat == pytest.approx(parked_lat, abs=0.02)
            elif moved is None:
                moved = i
            assert cut[0].speed <= 20 / 3.6 + 1e-6
        if moved is not None and not cut:
            break
    assert moved is not None and phase(w) == "ended" and not actors(w)


def test_yield_to_emergency_vehicle(town04, town04_md):
    """`yield_to_emergency_vehicle.py`: the emergency vehicle starts `distance` behind the trigger point in
    the ego's lane and drives at the ego's speed + 25 km/h; `atomic_criteria.py`
    `YieldToEmergencyVehicleTest` fails when the scenario ends with the ego still in front of it."""
    plan, cfg = generated(town04, town04_md, "YieldToEmergencyVehicle", seed=0)
    w = world_with(town04, town04_md, plan, [cfg])
    drive = BlindDriver()
    events, dist_at_start = [], None
    for _ in range(900):
        events += w.step(drive(w))
        ev = actors(w, "emergency vehicle")
        if ev and dist_at_start is None:
            rel = np.array(ev[0].xy) - ego_centre(w)
            dist_at_start = float(np.linalg.norm(rel))
            yaw = float(w.state.ego.pose[0, 2])
            assert rel @ np.array([math.cos(yaw), math.sin(yaw)]) < 0  # behind the ego
            assert 0.7 * cfg.value("distance", float, 140.0) < dist_at_start < cfg.value("distance", float, 140.0) + 4
        if ev and ev[0].speed > 1.0 and float(w.ego_speed()[0]) > 3.0:
            assert ev[0].speed <= float(w.ego_speed()[0]) + 25 / 3.6 + 0.5  # (the ego speed of the step before)
        if phase(w) == "ended" or w.done[0]:
            break
    assert phase(w) == "ended"
    kinds = [e.kind for e in events]
    assert kinds.count(InfractionKind.YIELD_EMERGENCY.value) == 1


def test_hard_break_vehicle_ahead_stops_for_10_s(town01, town01_map_data, straight):
    """`hard_break.py` `HardBreakRoute`: the vehicle in front brakes at the trigger point, stays stopped
    10 s, drives on; the scenario ends 15 m of ego driving later."""
    cfg = config_at(straight, 80.0, "HardBreakRoute")
    w = world_with(town01, town01_map_data, straight, [cfg])
    place_ego(w, straight, 20.0)
    drive = BlindDriver()
    stopped, appeared, v_brake = 0, None, None
    for _ in range(1200):
        w.step(drive(w))
        lead = actors(w, "vehicle ahead")
        if lead and appeared is None:  # 30 m before the trigger, 25 m ahead of the ego, at its speed
            appeared = float(w.progress[0])
            gap = float(np.linalg.norm(np.array(lead[0].xy) - ego_centre(w)))
            assert gap == pytest.approx(25.0, abs=1.0)
        if lead and v_brake is None and bool(w.state.scenarios.cond_on[0, 1]):
            v_brake = lead[0].speed
        if lead and lead[0].speed == 0.0:
            stopped += 1
        if phase(w) == "ended":
            break
    assert appeared == pytest.approx(w.scenario_records[0].trigger_s - 30.0 - 1.38, abs=1.5)
    assert phase(w) == "ended" and v_brake > 3.0
    # braking at HARD_DECEL, then standing until 10 s after the brake began
    assert stopped * w.cfg.dt == pytest.approx(10.0 - v_brake / 8.0, abs=0.2)


def test_control_loss_adds_noise_only_near_its_points(town01, town01_map_data, straight):
    """`control_loss.py` `ControlLoss`: throttle / steer noise (`AddNoiseToRouteEgo`) while the ego is
    within 2 m of the points 14, 48 and 74 m ahead, none elsewhere."""
    cfg = config_at(straight, 30.0, "ControlLoss")
    w = world_with(town01, town01_map_data, straight, [cfg])
    place_ego(w, straight, 20.0)
    drive = BlindDriver()
    noisy, clean = 0, 0
    for _ in range(500):
        c = drive(w)
        w.step(c)
        diff = (w.state.ego.control[0] - c[0].double()).abs().max()
        if float(diff) > 1e-9:
            noisy += 1
        else:
            clean += 1
        if phase(w) == "ended":
            break
    assert noisy > 0 and clean > 5 * noisy
    assert phase(w) == "ended"


def test_priority_at_junction_freezes_the_lights(town01, town01_map_data):
    """`green_traffic_light.py` `PriorityAtJunction`: the ego's light green, the junction's others red,
    until the ego left the junction."""
    plan, cfg = generated(town01, town01_map_data, "PriorityAtJunction", seed=2)
    w = world_with(town01, town01_map_data, plan, [cfg])
    drive = BlindDriver()
    red_lights = []
    for _ in range(1200):
        red_lights += [e for e in w.step(drive(w)) if e.kind == InfractionKind.RED_LIGHT.value]
        if phase(w) == "running":
            ov = w.state.scenarios.light_override[0]
            assert int((ov == int(HeadState.GREEN)).sum()) == 1
        if phase(w) == "ended":
            break
    assert phase(w) == "ended" and not red_lights  # a blind driver never meets a red light there


def test_init_distance_and_trigger_constants():
    """`route_scenario.py` `RouteScenario.INIT_THRESHOLD` = 500 m; `route_parser.py` `DIST_THRESHOLD` = 2 m."""
    assert (INIT_DISTANCE, TRIGGER_DISTANCE) == (500.0, 2.0)
