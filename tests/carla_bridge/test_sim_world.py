"""Lite simulator behaviour: reactive traffic, lights, stop signs, pedestrians, determinism, branching."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from carla_bridge.lite.branching import run_plans
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.lights import HeadState, head_states
from carla_bridge.lite.map_data import build_map_data
from carla_bridge.lite.random_route import random_route
from carla_bridge.lite.world import LiteWorld
from tests.carla_bridge.sim_testkit import make_world

pytestmark = pytest.mark.usefixtures("single_thread")

BRAKE = torch.tensor([[0.0, 0.0, 1.0]])


def _run(world, seconds, controls=BRAKE):
    events = []
    for _ in range(round(seconds / world.cfg.dt)):
        events += world.step(controls.expand(world.num_worlds, 3))
    return events


def _lane_pose(town, lane, s):
    xy, yaw = town.lanes[lane].interpolate(np.array([s]))
    return float(xy[0, 0]), float(xy[0, 1]), float(yaw[0])


def test_vehicle_stops_behind_ego_that_cut_in(town01, empty_world, long_lane):
    w = empty_world
    x, y, yaw = _lane_pose(town01, long_lane, 60.0)
    right = np.array([math.sin(yaw), -math.cos(yaw)])
    # the ego stands half in the lane, angled in (a cut-in), 2 m right of the centreline
    w.set_ego(x + 2.0 * right[0], y + 2.0 * right[1], yaw + 0.4, 0.0)
    w.set_vehicles([long_lane], [10.0], [9.0])
    events = _run(w, 10.0)
    assert not [e for e in events if e.kind.startswith("collisions")]
    assert float(w.state.vehicles.speed[0, 0]) < 0.1
    gap = float(w.state.vehicles.s[0, 0]) + 2.3
    assert gap < 60.0 - 1.0  # stopped well before the ego's position along the lane
    # the same car passes when the ego stands clear of the lane (3.5 m further out, parallel)
    w.set_ego(x + 5.5 * right[0], y + 5.5 * right[1], yaw, 0.0)
    w.set_vehicles([long_lane], [10.0], [9.0])
    _run(w, 10.0)
    assert float(w.state.vehicles.s[0, 0]) > 70.0


def _heads(md, cfg, times):
    return torch.from_numpy(
        head_states(np.asarray(times, dtype=np.float64), md.lights, cfg.green, cfg.yellow, cfg.all_red)
    )


def test_red_light_stops_traffic(town01, town01_map_data):
    md = town01_map_data
    lanes = np.flatnonzero(md.lanes.lane_head >= 0).tolist()
    lane = next(i for i in lanes if md.lanes.lane_light_s[i] > 45.0 and not town01.lanes[i].is_junction)
    head = int(md.lanes.lane_head[lane])
    stop_s = float(md.lanes.lane_light_s[lane])
    cfg = LiteConfig(num_vehicles=0, num_pedestrians=0, num_parked=0, num_props=0)
    w = make_world(town01, md, cfg)
    # a time at which this head turns red for at least 12 s
    ts = np.arange(0.0, 200.0, 0.5)
    st = _heads(md, cfg, ts)[:, head]
    red = int(HeadState.RED)
    k = next(i for i in range(len(ts) - 30) if bool((st[i : i + 26] == red).all()) and (i == 0 or st[i - 1] != red))
    w.state = replace(w.state, time=torch.full_like(w.state.time, float(ts[k])))
    w.set_ego(0.0, 0.0, 0.0)  # far away
    w.set_ego(*_lane_pose(town01, lane, max(0.0, stop_s - 200.0)))
    w.set_vehicles([lane], [stop_s - 40.0], [8.0])
    _run(w, 12.0)
    front = float(w.state.vehicles.s[0, 0]) + 2.3
    assert float(w.state.vehicles.speed[0, 0]) < 0.1
    assert stop_s - 4.0 < front < stop_s
    # once green it drives through
    t = float(w.state.time[0])
    ahead = _heads(md, cfg, t + np.arange(0.0, 60.0, 0.5))[:, head]
    green_in = 0.5 * int((ahead == int(HeadState.GREEN)).float().argmax())
    _run(w, green_in + 6.0)
    assert int(w.state.vehicles.lane[0, 0]) != lane or float(w.state.vehicles.s[0, 0]) > stop_s


def test_stop_sign_full_stop_then_go(crossroads):
    md = build_map_data(crossroads)
    sign = crossroads.stop_signs[0]
    cfg = LiteConfig(num_vehicles=0, num_pedestrians=0, num_parked=0, num_props=0)
    w = LiteWorld(crossroads, cfg, map_data=md)
    w.reset(random_route(crossroads, 0, 30.0), 0)
    w.set_ego(1000.0, 1000.0, 0.0)
    start = max(0.0, sign.stop_s - 30.0)
    w.set_vehicles([sign.lane_id], [start], [6.0])
    speeds, fronts, lanes = [], [], []
    for _ in range(400):
        w.step(BRAKE)
        speeds.append(float(w.state.vehicles.speed[0, 0]))
        fronts.append(float(w.state.vehicles.s[0, 0]) + 2.3)
        lanes.append(int(w.state.vehicles.lane[0, 0]))
    on = [i for i, ln in enumerate(lanes) if ln == sign.lane_id]
    near = [i for i in on if sign.stop_s - 4.0 < fronts[i] <= sign.stop_s + 0.5]
    assert near and min(speeds[i] for i in near) < 0.1  # full stop at the line
    assert lanes[-1] != sign.lane_id  # then it goes on into the junction


def test_pedestrian_waits_for_the_ego(town01, empty_world, long_lane):
    w = empty_world
    x, y, yaw = _lane_pose(town01, long_lane, 60.0)
    right = np.array([math.sin(yaw), -math.cos(yaw)])
    fwd = np.array([math.cos(yaw), math.sin(yaw)])
    p = np.array([x, y])
    curb = p + 4.0 * right
    path = np.stack([curb + 5.0 * right, curb, p - 6.0 * right, p - 6.0 * right + 5.0 * fwd])
    road = [False, True, False]
    # ego approaches at 8 m/s, 25 m before the crossing: the pedestrian waits at the curb
    w.set_pedestrians([path], [road], [4.0], [1.4])
    ex, ey, _ = _lane_pose(town01, long_lane, 35.0)
    w.set_ego(ex, ey, yaw, 8.0)
    _run(w, 1.0, torch.tensor([[0.4, 0.0, 0.0]]))
    assert float(w.state.pedestrians.speed[0, 0]) == 0.0
    assert float(w.state.pedestrians.u[0, 0]) < 5.0
    # without the ego nearby, the same pedestrian steps onto the road
    w.set_pedestrians([path], [road], [4.0], [1.4])
    w.set_ego(ex - 300 * fwd[0], ey - 300 * fwd[1], yaw, 0.0)
    _run(w, 2.0)
    assert float(w.state.pedestrians.u[0, 0]) > 6.0


def test_snapshot_restore_identical_future(town01, town01_map_data):
    w = make_world(town01, town01_map_data, LiteConfig(num_vehicles=30, num_pedestrians=15), seed=3)
    ctrl = torch.tensor([[0.5, 0.05, 0.0]])
    _run(w, 1.0, ctrl)
    snap = w.snapshot()
    ev1 = _run(w, 3.0, ctrl)
    end1 = w.snapshot()
    w.restore(snap)
    ev2 = _run(w, 3.0, ctrl)
    end2 = w.snapshot()
    assert end1.equals(end2)
    assert [e.to_dict() for e in ev1] == [e.to_dict() for e in ev2]
    assert not end1.equals(snap)


def test_batched_branches_are_bit_identical_to_sequential_runs(town01, town01_map_data):
    """Every tensor of every world's state (and every event) after 2 s of batched stepping equals the
    same world stepped alone, bit for bit."""
    w = make_world(town01, town01_map_data, LiteConfig(num_vehicles=30, num_pedestrians=15), seed=5)
    _run(w, 0.5, torch.tensor([[0.6, 0.0, 0.0]]))
    snap = w.snapshot()
    controls = torch.tensor([[0.8, 0.3, 0.0], [0.0, 0.0, 1.0], [0.5, -0.4, 0.0]])
    b = w.branch(3)
    ev_b = _run(b, 2.0, controls)
    for k in range(3):
        w.restore(snap)
        ev = _run(w, 2.0, controls[k : k + 1])
        assert b.state.select(torch.tensor([k])).equal(w.state), k
        assert [replace(e, world=k).to_dict() for e in ev] == [e.to_dict() for e in ev_b if e.world == k]
    assert not torch.equal(b.state.ego.pose[0], b.state.ego.pose[1])


def test_rejects_bad_controls(empty_world):
    with pytest.raises(ValueError, match="NaN"):
        empty_world.step(torch.tensor([[float("nan"), 0.0, 0.0]]))
    with pytest.raises(ValueError, match="out of range"):
        empty_world.step(torch.tensor([[0.0, 1.5, 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        empty_world.step(torch.zeros(2, 3))


def test_run_plans_executes_each_plan_and_leaves_the_world_alone(town01, empty_world, long_lane):
    """Branches given a straight 8 m/s plan and a stop plan end where their plans said; the driven
    world's state is unchanged, and one world at a time gives bit-identical results."""
    w = empty_world
    x, y, yaw = _lane_pose(town01, long_lane, 20.0)
    w.set_ego(x, y, yaw, 8.0)
    before = w.snapshot()
    t = 0.5 * torch.arange(1, 7)
    go = torch.stack([8.0 * t, torch.zeros(6), torch.zeros(6)], -1)
    stop = torch.stack([torch.where(t < 2.0, 8.0 * t - 2.0 * t * t, 8.0), torch.zeros(6), torch.zeros(6)], -1)
    out = run_plans(w, torch.stack([go, stop]), steps=50)  # 2.5 s
    along = (out.ego[:, -1, :2] - torch.tensor([x, y], dtype=torch.float64)) @ torch.tensor(
        [math.cos(yaw), math.sin(yaw)], dtype=torch.float64
    )
    assert float(along[0]) == pytest.approx(20.0, abs=1.5)
    assert float(along[1]) == pytest.approx(8.0, abs=1.5) and float(out.ego[1, -1, 3]) < 0.3
    assert out.ego.shape == (2, 50, 4) and out.agents.xy.shape[:2] == (2, 5)
    assert w.snapshot().equals(before)
    one = run_plans(w, torch.stack([go, stop]), steps=50, max_worlds=1)
    assert torch.equal(one.ego, out.ego)


def test_head_states_map_to_the_planner_light_states():
    """The one mapping from simulator heads to `planner.LightState` (yellow counts as red)."""
    from carla_bridge.lite.lights import to_light_state
    from planner import LightState

    heads = torch.tensor([int(HeadState.RED), int(HeadState.YELLOW), int(HeadState.GREEN), int(HeadState.OFF)])
    assert to_light_state(heads).tolist() == [LightState.RED, LightState.RED, LightState.GREEN, LightState.NONE]


def test_state_validates_its_world_dim(empty_world):
    st = empty_world.state.repeat(3)
    assert st.num_worlds == 3 and st.validate() is st
    bad = replace(st, time=torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="ego.pose must lead with W = 2"):
        bad.validate()
