"""The criteria judged by the lite simulator on real CARLA towns (`carla.Map` on the vendored OpenDRIVE
files), against what the leaderboard's criteria (scenario_runner `atomic_criteria.py`, branch
leaderboard-2.0) make of the same motion; each check is computed independently from the logged run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from shapely.geometry import LineString, Point

from agents import EGO
from carla_bridge.autopilot import Autopilot, AutopilotParams
from carla_bridge.infractions import ego_centre
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.criteria import switch_tests
from carla_bridge.lite.random_route import random_route
from carla_bridge.lite.world import LiteWorld
from carla_bridge.rules import load_rules, rules_from_dict
from planner.controller import PlanFollower

EMPTY = dict(num_vehicles=0, num_pedestrians=0, num_parked=0, num_props=0)
HALF = 0.5 * EGO.length
BRAKE = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)


def _world(town, md, route, cfg, seed=0) -> LiteWorld:
    w = LiteWorld(town, cfg, map_data=md)
    w.reset(route, seed)
    return w


def test_stopped_ego_hit_from_behind_is_no_collision_driving_into_one_is_one(town01, town01_map_data, long_lane):
    """CollisionTest: no event while the ego is below 0.1 m/s however long the contact lasts; driving into
    a car is one event although the contact lasts several ticks (same actor within 5 s, same place)."""
    route = random_route(town01, 0, 100.0, start_lane=long_lane, start_s=5.0)
    w = _world(town01, town01_map_data, route, LiteConfig(**EMPTY))
    w.set_vehicles([long_lane], [2.5], [0.0])  # its box overlaps the ego's rear (ego box s ∈ [4.3, 8.4])
    events = []
    for _ in range(60):
        events += w.step(BRAKE)
    assert bool(w.state.route.in_contact.any()) and not [e for e in events if e.kind.startswith("collisions")]
    w = _world(town01, town01_map_data, route, LiteConfig(**EMPTY))
    w.set_vehicles([long_lane], [9.2], [0.0])  # 0.5 m ahead of the ego's front
    pose = w.state.ego.pose[0]
    w.set_ego(float(pose[0]), float(pose[1]), float(pose[2]), speed=6.0)
    contact_ticks, events = 0, []
    for _ in range(40):
        events += w.step(torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64))
        contact_ticks += int(w.state.route.in_contact.any())
    hits = [e for e in events if e.kind.startswith("collisions")]
    assert contact_ticks >= 5 and len(hits) == 1
    assert hits[0].kind == "collisions_vehicle" and hits[0].other_ids == (0,) and hits[0].details["ego_speed"] >= 0.1


def _route_with_light(town):
    from carla_bridge.lite.route import route_data

    for seed in range(200):
        route = random_route(town, seed, 120.0)
        data = route_data(town, route)
        if data.light_s.numel() and 30.0 < float(data.light_s[0]) < route.length - 20.0:
            return route
    raise AssertionError("no Town01 route through a light")


def test_red_light_counted_when_the_rear_crosses_the_line(town01, town01_map_data):
    """RunningRedLightTest: the event comes on the tick the point 0.8 × half-length behind the centre
    passes the stop line (not when the front does), once per light. Every light is red (all-red phase)."""
    route = _route_with_light(town01)
    cfg = LiteConfig(**EMPTY, green=1e-3, yellow=0.0, all_red=1000.0)
    w = _world(town01, town01_map_data, route, cfg)
    pilot = Autopilot(AutopilotParams(blind=True))
    lines = w.route.criteria.lines
    log, events = [], []
    for _ in range(900):
        ev = w.step(pilot.controls(w))
        pose = w.state.ego.pose.numpy()
        log.append((ego_centre(pose)[0], float(pose[0, 2]), float(w.state.ego.speed[0]), ev))
        events += ev
        if bool(w.state.route.done.all()):
            break
    red = [e for e in events if e.kind == "red_light"]
    assert len(red) >= 1 and len({e.details["light"] for e in red}) == len(red)  # once per light
    for e in red:
        m = [k for k in range(len(lines.head)) if lines.head[k] == e.details["light"]]
        k = next(i for i, row in enumerate(log) if e in row[3])
        centre, _, speed, _ = log[k]
        along = [float((centre - lines.xy[j]) @ lines.forward[j]) for j in m]
        j = int(np.argmin([abs(a - 0.8 * HALF) for a in along]))
        assert 0.8 * HALF <= along[j] <= 0.8 * HALF + speed * cfg.dt + 1e-6  # the tail point just crossed
        prev = float((log[k - 1][0] - lines.xy[m[j]]) @ lines.forward[m[j]])
        assert prev < 0.8 * HALF  # …and had not the tick before, when the front was long past the line
        assert prev + HALF > 1.0


def test_stop_sign_full_stop_vs_rolling_through(crossroads):
    """RunningStopTest on a generated crossroads with a stop sign on every approach: the autopilot stops
    in the sign's zone (no event); the blind agent rolls through (one event)."""
    from carla_bridge.lite.map_data import build_map_data

    route = random_route(crossroads, 3, 80.0, start_lane=crossroads.stop_signs[0].lane_id, start_s=2.0)
    w = _world(crossroads, build_map_data(crossroads, seed=0), route, LiteConfig(**EMPTY))
    parked = next(ln for ln in crossroads.lanes if not ln.is_junction and ln.id not in route.lane_ids)
    w.set_vehicles([parked.id], [0.5 * parked.length], [0.0])  # (the autopilot needs an agent to look at)
    w = w.branch(2)
    pilot, blind = Autopilot(), torch.tensor([False, True])
    events = []
    for _ in range(600):
        events += w.step(pilot.controls(w, blind))
        if bool(w.state.route.done.all()):
            break
    stops = [e.world for e in events if e.kind == "stop_infraction"]
    assert stops == [1]
    assert bool(w.state.route.stop_stopped[0].any()) and not bool(w.state.route.stop_stopped[1].any())


def test_min_speed_checkpoints_match_a_plain_loop_over_the_logged_speeds(town01, town01_map_data, long_lane):
    """MinimumSpeedRouteTest with Bench2Drive's 20 checkpoints (an event at each): every checkpoint's value
    is round(Σ ego speed / Σ mean background speed × 100, 2) over the frames since the previous one, all
    background vehicles counted (stopped ones at 0)."""
    rules = load_rules("bench2drive")
    route = random_route(town01, 0, 100.0, start_lane=long_lane, start_s=5.0)
    w = _world(town01, town01_map_data, route, LiteConfig(**EMPTY, rules=rules))
    w.set_vehicles([long_lane, long_lane], [40.0, 140.0], [3.0, 0.0])
    pilot = Autopilot()
    frames, marks = [], []
    for step in range(1, 1200):
        ev = w.step(pilot.controls(w))
        st = w.state
        frames.append((float(st.ego.speed[0]), float(st.vehicles.speed[0][st.vehicles.valid[0]].mean())))
        marks += [(step, e.details["percentage"]) for e in ev if e.kind == "min_speed_infractions"]
        if bool(st.route.done.all()):
            break
    assert len(marks) >= 15
    start = 0
    for step, value in marks[:-1]:  # the last one may be the final judgement at the route's end
        ego = sum(f[0] for f in frames[start : step - 1])
        traffic = sum(f[1] for f in frames[start : step - 1])
        assert value == (round(ego / traffic * 100, 2) if traffic else 100.0)
        start = step - 1  # the checkpoint tick's own speeds count for the next part


def _follow(w, lateral, speed=6.0, seconds=25.0):
    """Drive world `w` along a straight plan at `speed` with the lateral offset profile `lateral(x)`."""
    f = PlanFollower(dt=w.cfg.dt)
    t = 0.5 * np.arange(1, 2 * int(seconds) + 1)
    x = speed * t
    y = np.array([lateral(v) for v in x])
    yaw = np.arctan2(np.gradient(y), np.gradient(x))
    f.set_plans(w.state.ego.pose.clone(), torch.tensor(np.stack([x, y, yaw], -1)[None]), 0.0, 0.5)
    log, events = [], []
    for _ in range(int(seconds / w.cfg.dt)):
        st = w.state
        events += w.step(f.controls(st.ego.pose, st.ego.speed, float(st.time[0])))
        log.append(ego_centre(w.state.ego.pose.numpy())[0])
        if bool(w.state.route.done.all()):
            break
    return np.array(log), events


def test_opposite_lane_stretch_counts_as_outside_route_lanes(town01, town01_map_data, long_lane):
    """OutsideRouteLanesTest: a lane change into the opposite lane, 40 m there, and back: the route driven
    while the ego's nearest lane was the opposite one counts (± the 1 m waypoint grid); the route's own
    lane does not. With the wrong-direction test switched off only leaving the lanes would count."""
    ln = town01.lanes[long_lane]
    width = ln.width
    route = random_route(town01, 0, 100.0, start_lane=long_lane, start_s=5.0)

    def lateral(x):  # over to the left lane centre between x = 20 and 30, back between 70 and 80
        return width * float(np.clip((x - 20.0) / 10.0, 0, 1) - np.clip((x - 70.0) / 10.0, 0, 1))

    w = _world(town01, town01_map_data, route, LiteConfig(**EMPTY))
    log, events = _follow(w, lateral)
    events += w.finish()
    out = [e for e in events if e.kind == "outside_route_lanes"]
    assert len(out) == 1
    line = LineString(route.polyline)
    s = np.array([line.project(Point(p)) for p in log])
    off = np.array([line.distance(Point(p)) for p in log]) > width / 2  # nearest lane: the opposite one
    expected = s[off].max() - s[off].min()
    assert out[0].details["distance"] == pytest.approx(expected, abs=2.0)
    total = float(w.state.route.ol_total[0])
    assert out[0].details["percentage"] == pytest.approx(100.0 * out[0].details["distance"] / total)
    w2 = _world(town01, town01_map_data, route, LiteConfig(**EMPTY))
    w2.state = switch_tests(w2.state, torch.tensor([True]), wrong_direction=False)
    _, events2 = _follow(w2, lateral)
    events2 += w2.finish()
    assert not [e for e in events2 if e.kind == "outside_route_lanes"]


def test_route_deviation_ends_the_route_30_m_away(town01, town01_map_data, long_lane):
    """InRouteTest: the route ends with a deviation on the first tick the ego is ≥ 30 m from the nearest
    route waypoint ahead (window of 5)."""
    route = random_route(town01, 0, 200.0, start_lane=long_lane, start_s=5.0)
    w = _world(town01, town01_map_data, route, LiteConfig(**EMPTY))
    log, events = _follow(w, lambda x: 0.0 if x < 20 else 0.8 * (x - 20.0), speed=8.0, seconds=20.0)
    dev = [e for e in events if e.kind == "route_dev"]
    assert len(dev) == 1 and bool(w.state.route.done[0])
    pts = w.route.criteria.points.xy
    assert np.linalg.norm(pts - log[-1], axis=1).min() >= 30.0 - 1e-6
    assert np.linalg.norm(pts - log[-2], axis=1).min() < 30.0 + 1.0


def test_blocked_after_max_time_and_the_route_timeout(town01, town01_map_data, long_lane):
    """ActorBlockedTest: standing still ends the route after 60 s under Bench2Drive (first tick with
    t − t₀ > 60, t₀ the first tick), not under the leaderboard's 180 s. RouteTimeoutBehavior (with the
    blocked test switched off, as a scenario's ScenarioTimeout does): the route times out once the time
    exceeds the budget (here a rule set with a 30 s minimum)."""
    route = random_route(town01, 0, 100.0, start_lane=long_lane, start_s=5.0)
    ends = {}
    for name in ("bench2drive", "leaderboard-2.0"):
        w = _world(town01, town01_map_data, route, LiteConfig(**EMPTY, rules=load_rules(name)))
        ev = []
        for _ in range(1240):
            ev += w.step(BRAKE)
        ends[name] = [e.time for e in ev if e.kind == "vehicle_blocked"]
    assert ends["leaderboard-2.0"] == [] and len(ends["bench2drive"]) == 1
    assert ends["bench2drive"][0] == pytest.approx(60.1, abs=1e-6)
    raw = load_rules().to_dict()
    raw["route_timeout"]["min_timeout"] = 30.0
    quick = rules_from_dict(dict(raw, name="quick-timeout"))
    w = _world(town01, town01_map_data, route, LiteConfig(**EMPTY, rules=quick))
    w.state = switch_tests(w.state, torch.tensor([True]), blocked=False)
    ev = []
    for _ in range(700):
        ev += w.step(BRAKE)
    pts = w.route.criteria.points  # the box centre starts past waypoint 1: its metre is in the budget
    budget = 30.0 + pts.accum[1] / (0.1 * pts.speed_limit[1])
    timeouts = [e.time for e in ev if e.kind == "route_timeout"]
    assert timeouts == [pytest.approx(0.05 * (math.floor(budget / 0.05 + 1e-9) + 1), abs=1e-6)]
    assert [e.kind for e in ev][-1] == "route_completion"
    assert dataclasses.replace(quick, name="leaderboard-2.0") != load_rules()
    assert math.isfinite(w.route.timeout)
