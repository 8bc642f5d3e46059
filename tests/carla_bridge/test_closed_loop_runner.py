import math
import time

import numpy as np
import pytest
import torch
from shapely.geometry import LineString

from agents import EGO
from carla_bridge.closed_loop.agent import AutopilotAgent, RunContext, check_control, validate_sensors
from carla_bridge.closed_loop.runner import FAILURE_MESSAGES, RunLimits, cut_route, run_route
from carla_bridge.maps import load_town
from carla_bridge.progress import RouteProgress
from carla_bridge.routes import Route, plan_route_for
from carla_bridge.scoring import InfractionKind, score_route
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


def test_autopilot_drives_a_real_town01_segment():
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
    assert rec["route_completion"] == 100.0
    assert rec["full_route"] is False and abs(rec["route_length_m"] - 35.0) < 1.0
    assert len(factory.controls) == rec["steps"] > 0
    assert math.isclose(rec["sim_seconds"], rec["steps"] * 0.05, abs_tol=1e-6)
    # the backend-agnostic tracker agrees with the simulator's own route completion
    assert lite_completion == [100.0]
    # every event the backend emitted is in the record, scored by the one penalty table
    backend_events = [e for e in factory.backends[0].events if e.world == 0]
    assert [e["kind"] for e in rec["events"]] == [e.kind for e in backend_events]
    ref = score_route(backend_events, 100.0, rec["route_length_m"])
    assert math.isclose(rec["driving_score"], ref.driving_score, abs_tol=1e-2)
    km = max(rec["km_driven"], 0.001)
    for kind in InfractionKind:
        assert math.isclose(rec["infractions_per_km"][kind.value], rec["counts"][kind.value] / km, abs_tol=1e-3)
    t = rec["timing"]
    assert t["wall_per_sim_second"] > 0 and t["agent_step_ms"]["count"] == rec["steps"]
    assert t["agent_step_ms"]["p50"] <= t["agent_step_ms"]["p90"] <= t["agent_step_ms"]["max"]


def test_route_progress_hand_cases():
    # an L: 0..10 m along x, then 10 m along y
    line = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])
    p = RouteProgress(line)
    assert p.length == 20.0
    assert p.update(np.array([3.0, 0.5, 0.0])) == pytest.approx(3.0)
    assert p.completion == pytest.approx(15.0)
    assert p.update(np.array([10.5, 4.0, 1.57])) == pytest.approx(14.0)
    # progress never decreases
    assert p.update(np.array([9.0, -0.3, 0.0])) == pytest.approx(14.0)
    # front bumper within 2 m of the end → complete
    p.update(np.array([10.0, 20.0 - 2.0 - EGO.front_overhang + 0.01, 1.57]))
    assert p.completion == 100.0
    # a route that passes the same place twice: the window keeps progress on the first pass
    loop = np.array([[0.0, 0.0], [20.0, 0.0], [20.0, 5.0], [0.0, 5.0], [0.0, 0.2], [30.0, 0.2]])
    q = RouteProgress(loop)
    q.update(np.array([1.0, 0.1, 0.0]))
    q.update(np.array([3.0, 0.1, 0.0]))
    assert q.progress == pytest.approx(3.0, abs=0.05)
    with pytest.raises(ValueError, match="polyline"):
        RouteProgress(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="zero length"):
        RouteProgress(np.zeros((3, 2)))


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
    assert rec["status"] == f"Failed - {status}"
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
    assert rec["steps"] >= 1 and rec["status"] == "Failed - Route_timeout"
