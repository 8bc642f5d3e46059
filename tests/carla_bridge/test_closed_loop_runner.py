import dataclasses
import math
import time

import numpy as np
import pytest
import torch
from shapely.geometry import LineString

from agents import EGO
from carla_bridge.closed_loop.agent import AutopilotAgent, RunContext, check_control, validate_sensors
from carla_bridge.closed_loop.runner import FAILURE_MESSAGES, RunLimits, cut_route, run_route
from carla_bridge.infractions import RoutePoints
from carla_bridge.lite.backend import LiteBackend
from carla_bridge.lite.config import LiteConfig
from carla_bridge.maps import load_town
from carla_bridge.progress import RouteTracker
from carla_bridge.routes import Route, ScenarioConfig, plan_route_for
from carla_bridge.rules import load_rules
from carla_bridge.scoring import ROUTE_COMPLETION, InfractionKind, score_route
from tests.carla_bridge.closed_loop_testkit import (
    FAST_BACKEND,
    BadSensorsAgent,
    CountingBackendFactory,
    HangingAgent,
    NanAgent,
    OutOfRangeAgent,
    RaisingAgent,
    SetupFailAgent,
    devtest_route,
)

AXLE = EGO.rear_axle_to_center


def test_autopilot_drives_a_real_town01_segment():
    """The runner's record of a lite run is what statistics_manager.compute_route_statistics makes of the
    backend's events (the route completion reported by RouteCompletionTest when the route ends)."""
    route = devtest_route("0")
    factory = CountingBackendFactory()
    lite_completion = []

    class Spy(AutopilotAgent):
        def destroy(self):
            lite_completion.append(float(self._backend.world.route_completion()[0]))
            super().destroy()

    rec = run_route(factory, Spy(), route, seed=0, limits=RunLimits(max_route_length=35.0))
    assert rec["failure"] is None, rec["failure"]
    assert rec["status"] in ("Perfect", "Completed")
    assert rec["route_completion"] == 100.0 and lite_completion == [100.0]
    assert rec["full_route"] is False and abs(rec["route_length_m"] - 35.0) < 1.0
    assert rec["rules"]["name"] == "leaderboard-2.0" and rec["scenario_types"] == [] and rec["scenario_type"] is None
    assert len(factory.controls) == rec["steps"] > 0
    assert math.isclose(rec["sim_seconds"], rec["steps"] * 0.05, abs_tol=1e-6)
    # every event the backend emitted is in the record (the route completion last), scored by the rule set
    backend_events = [e for e in factory.backends[0].events if e.world == 0]
    assert [e["kind"] for e in rec["events"]] == [e.kind for e in backend_events]
    assert rec["events"][-1]["kind"] == ROUTE_COMPLETION and rec["events"][-1]["details"]["percentage"] == 100.0
    ref = score_route(backend_events, 100.0, rec["route_length_m"])
    assert math.isclose(rec["driving_score"], ref.driving_score, abs_tol=1e-2)
    km = max(rec["km_driven"], 0.001)
    for kind in InfractionKind:
        assert math.isclose(rec["infractions_per_km"][kind.value], rec["counts"][kind.value] / km, abs_tol=1e-3)
        assert len(rec["infractions"][kind.value]) == rec["counts"][kind.value]
    assert rec["success"] is None and rec["comfort"] is None and rec["abilities"] is None
    t = rec["timing"]
    assert t["wall_per_sim_second"] > 0 and t["agent_step_ms"]["count"] == rec["steps"]
    assert t["agent_step_ms"]["p50"] <= t["agent_step_ms"]["p90"] <= t["agent_step_ms"]["max"]


def _l_route() -> RoutePoints:
    """An L: 10 m along +x, then 10 m along +y, waypoints every metre, speed limit 10 m/s."""
    xy = np.concatenate(
        [np.stack([np.arange(0.0, 10.0), np.zeros(10)], -1), np.stack([np.full(11, 10.0), np.arange(0.0, 11.0)], -1)]
    )
    fwd = np.concatenate([np.tile([1.0, 0.0], (10, 1)), np.tile([0.0, 1.0], (11, 1))])
    r = len(xy)
    return RoutePoints(
        xy=xy,
        forward=fwd,
        yaw=np.arctan2(fwd[:, 1], fwd[:, 0]),
        accum=np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))]),
        lane=np.zeros(r, dtype=np.int64),
        road_lane=np.zeros((r, 2), dtype=np.int64),
        junction=np.zeros(r, dtype=bool),
        width=np.full(r, 3.5),
        speed_limit=np.full(r, 10.0),
    )


def test_route_tracker_hand_cases():
    """RouteCompletionTest and RouteTimeoutBehavior of one ego from its rear-axle poses (the box centre
    1.38 m ahead is the location the criteria use), for backends that do not judge the route."""
    tr = RouteTracker(_l_route(), load_rules())
    assert tr.update(np.array([3.0 - AXLE, 0.5, 0.0]), 0.05) == pytest.approx(10.0)  # centre at x = 3: passed 0..2
    assert tr.update(np.array([10.5, 3.2 - AXLE, math.pi / 2]), 0.10) == pytest.approx(20.0)  # window: 2 more
    for t in (0.15, 0.20, 0.25, 0.30, 0.35):
        tr.update(np.array([10.5, 3.2 - AXLE, math.pi / 2]), t)
    assert tr.completion == pytest.approx(65.0) and not tr.completed  # centre at y = 3.2: waypoint (10, 3)
    assert tr.budget == pytest.approx(300.0 + 13.0)  # 13 m passed at 1 m/s (10 % of the limit)
    for t in (0.4, 0.45, 0.5):
        tr.update(np.array([10.0, 10.2 - AXLE, math.pi / 2]), t)
    assert tr.completion == 95.0 and not tr.completed
    tr.update(np.array([10.0, 10.2 - AXLE, math.pi / 2]), 0.55)
    assert tr.completion == 100.0 and tr.completed
    assert not tr.timed_out and tr.update(np.array([10.0, 9.0, 1.57]), 321.0) == 100.0 and tr.timed_out


def test_rules_mismatch_and_bench2drive_records():
    """The backend must judge by the run's rule set; a Bench2Drive record carries success, efficiency,
    smoothness, abilities and the junction completion (tools/ability_benchmark.py) of its scenario type."""
    rec = run_route(
        FAST_BACKEND, AutopilotAgent(), devtest_route("0"), 0, RunLimits(max_route_length=30.0), rules="bench2drive"
    )
    assert (
        rec["failure"]["status"] == "Simulation"
        and "judges by rule set leaderboard-2.0@v1" in rec["failure"]["message"]
    )
    assert rec["status"] == "Failed - Simulation crashed"

    base = devtest_route("0")
    far = np.array([1e4, 1e4, 0.0])  # triggers off the route: built as "not on the route", types still recorded
    route = dataclasses.replace(
        base,
        scenarios=(
            ScenarioConfig("SignalizedJunctionLeftTurn_1", "SignalizedJunctionLeftTurn", far, 0.0),
            ScenarioConfig("Accident_1", "Accident", far, 0.0),
        ),
    )
    b2d = load_rules("bench2drive")

    def spec(town):
        return LiteBackend(town, LiteConfig(num_vehicles=2, num_pedestrians=0, num_parked=0, num_props=0, rules=b2d))

    rec = run_route(spec, AutopilotAgent(), route, 0, RunLimits(max_route_length=60.0), rules=load_rules("bench2drive"))
    assert rec["failure"] is None and rec["rules"]["name"] == "bench2drive"
    assert rec["scenario_types"] == ["SignalizedJunctionLeftTurn", "Accident"]
    assert rec["abilities"] == ["Merging", "Traffic_Signs"]  # the first scenario's type, as Bench2Drive
    assert rec["status"] == "Completed" and rec["success"] is True  # min-speed events at every checkpoint only
    assert rec["counts"]["min_speed_infractions"] >= 19 and rec["driving_score"] == 100.0
    assert rec["efficiency"] is not None and 0.0 <= rec["comfort"] <= 1.0
    assert rec["junction_completion"] is None or 0.0 < rec["junction_completion"] <= 1.0


def test_a_run_cut_short_still_terminates_the_criteria():
    """A run stopped from outside (--max-seconds) gets the criteria's terminate(): the route completion
    event; the record marks the cut, not a route timeout."""
    factory = CountingBackendFactory()
    rec = run_route(
        factory, AutopilotAgent(), devtest_route("0"), 0, RunLimits(max_route_length=80.0, max_sim_seconds=3.0)
    )
    assert rec["stopped_by"] == "max_sim_seconds" and rec["counts"]["route_timeout"] == 0
    last = rec["events"][-1]
    assert last["kind"] == ROUTE_COMPLETION and last["details"]["percentage"] == rec["route_completion"] < 100.0
    assert rec["status"] == "Failed"


def test_cut_route_replans_the_same_segment():
    town = load_town("Town01")
    route = devtest_route("0")
    full = plan_route_for(route, town)
    cut = cut_route(route, full, 120.0)
    assert isinstance(cut, Route) and cut.id == route.id and cut.town == route.town
    replanned = plan_route_for(cut, town)
    assert abs(replanned.length - 120.0) < 1.0
    head = LineString(full.polyline[full.s <= 120.0])
    assert LineString(replanned.polyline).hausdorff_distance(head) < 0.5
    assert cut_route(route, full, full.length + 10.0) is route
    with pytest.raises(ValueError, match="max_length"):
        cut_route(route, full, 0.0)


@pytest.mark.parametrize(
    ("agent", "status"),
    [
        (RaisingAgent(), "Agent_runtime"),
        (NanAgent(), "Agent_control"),
        (OutOfRangeAgent(), "Agent_control"),
        (BadSensorsAgent(), "Sensors"),
        (SetupFailAgent(), "Agent_init"),
    ],
    ids=lambda x: getattr(x, "name", x),
)
def test_failures_are_recorded_not_raised(agent, status):
    factory = CountingBackendFactory()
    rec = run_route(factory, agent, devtest_route("0"), seed=0, limits=RunLimits(max_route_length=30.0))
    assert rec["status"] == f"Failed - {FAILURE_MESSAGES[status]}"
    assert rec["failure"]["status"] == status
    assert rec["failure"]["description"] == FAILURE_MESSAGES[status]
    assert rec["failure"]["watchdog"] is False
    for c in factory.controls:  # nothing invalid ever reached the simulator
        assert all(math.isfinite(v) for v in (c.throttle, c.steer, c.brake)) and -1.0 <= c.steer <= 1.0
    if status in ("Agent_runtime", "Agent_control"):
        assert len(factory.controls) == agent.bad_step - 1
        assert rec["steps"] == agent.bad_step - 1
        assert agent.destroyed == 1
        assert 0.0 < rec["route_completion"] < 100.0
    if status == "Agent_runtime":
        assert "exploded on purpose" in rec["failure"]["message"] and "Traceback" in rec["failure"]["traceback"]
    if status in ("Sensors", "Agent_init"):
        assert factory.controls == [] and agent.destroyed == 0


def test_a_hanging_agent_is_cut_by_the_watchdog():
    agent = HangingAgent(bad_step=3)
    t0 = time.perf_counter()
    rec = run_route(FAST_BACKEND, agent, devtest_route("0"), 0, RunLimits(max_route_length=30.0, step_timeout=0.5))
    assert time.perf_counter() - t0 < 20.0
    assert rec["failure"]["status"] == "Agent_runtime" and rec["failure"]["watchdog"] is True
    assert "agent.run_step exceeded its 0.5 s budget" in rec["failure"]["message"]
    assert rec["steps"] == 2 and agent.destroyed == 1


def test_simulator_failures_and_missing_maps():
    def broken_factory(town):
        raise ConnectionError("no server here")

    rec = run_route(broken_factory, RaisingAgent(), devtest_route("0"), 0, RunLimits(max_route_length=30.0))
    assert rec["failure"]["status"] == "Simulation" and "no server here" in rec["failure"]["message"]
    r = devtest_route("0")
    missing = Route("77", "Town12", r.waypoints_world, r.yaw)
    rec = run_route(FAST_BACKEND, RaisingAgent(), missing, 0)
    assert rec["failure"]["status"] == "Simulation" and "Town12" in rec["failure"]["message"]
    assert rec["driving_score"] == 0.0


def test_contract_helpers_reject_bad_input():
    from agents import Control
    from carla_bridge.closed_loop.agent import default_sensors

    specs = default_sensors((32, 18))
    assert [s["id"] for s in specs][:1] == ["CAM_FRONT"] and specs[-1]["id"] == "LIDAR_TOP"
    assert validate_sensors(specs) is specs
    bad = [dict(s) for s in specs]
    bad[0]["x"] = float("nan")
    with pytest.raises(ValueError, match="'x'"):
        validate_sensors(bad)
    with pytest.raises(ValueError, match="list"):
        validate_sensors({"id": 1})
    with pytest.raises(ValueError, match="brake"):
        check_control(Control(0.0, 0.0, 2.0))
    with pytest.raises(ValueError, match="agents.Control"):
        check_control((0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="replan_hz"):
        RunContext(route=None, route_xy=np.zeros((3, 2)) + np.arange(3)[:, None], replan_hz=20.0)
    with pytest.raises(ValueError, match="route_xy"):
        RunContext(route=None, route_xy=torch.zeros(1, 2).numpy())


def test_wall_clock_route_budget_is_a_named_failure():
    class Slow(AutopilotAgent):
        def run_step(self, obs, timestamp, privileged):
            time.sleep(0.02)
            return super().run_step(obs, timestamp, privileged)

    rec = run_route(FAST_BACKEND, Slow(), devtest_route("0"), 0, RunLimits(max_route_length=30.0, route_timeout=0.3))
    assert rec["failure"]["status"] == "Route_timeout" and "wall time" in rec["failure"]["message"]
    assert rec["steps"] >= 1 and rec["status"] == "Failed - Route exceeded its wall-clock budget"
