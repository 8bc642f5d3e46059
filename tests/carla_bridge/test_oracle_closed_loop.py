"""Sanity of the oracle world model in closed loop: the planner driving the lite simulator with the
oracle completes a devtest route segment like the autopilot does, without collisions."""

from __future__ import annotations

import pytest
import torch
from closed_loop_testkit import devtest_route

from carla_bridge.closed_loop.backend_spec import BackendSpec
from carla_bridge.closed_loop.runner import RunLimits, run_route
from drivewm.factory import build_agent

SPEC = BackendSpec(num_vehicles=4, num_pedestrians=0, num_parked=2, num_props=0, render=False, camera_size=(32, 18))


@pytest.mark.slow
def test_planner_with_the_oracle_drives_like_the_autopilot():
    torch.set_num_threads(1)
    limits = RunLimits(max_route_length=15.0, max_sim_seconds=10.0, camera_size=(32, 18))
    recs = {}
    for name in ("autopilot", "oracle"):
        recs[name] = run_route(SPEC, build_agent(name, camera_size=(32, 18)), devtest_route("0"), 0, limits)
    oracle, pilot = recs["oracle"], recs["autopilot"]
    assert oracle["failure"] is None or not oracle["failure"], oracle["failure"]
    assert oracle["route_completion"] >= pilot["route_completion"] - 5.0
    assert oracle["route_completion"] >= 90.0
    assert sum(v for k, v in oracle["counts"].items() if k.startswith("collisions")) == 0
    assert oracle["counts"]["red_light"] == 0
