"""Background traffic reacts to the ego: two worlds start identical, only the ego's controls differ
(world 0: the ego keeps clear, world 1: it enters another agent's path), and the other agent's
future must differ — the signal counterfactual branches are recorded for."""

import math

import numpy as np
import pytest
import torch

from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.random_route import random_route
from tests.carla_bridge.sim_testkit import make_world

pytestmark = pytest.mark.usefixtures("single_thread")

EMPTY = LiteConfig(num_vehicles=0, num_pedestrians=0, num_parked=0, num_props=0)


def _lane_pose(town, lane, s):
    xy, yaw = town.lanes[lane].interpolate(np.array([s]))
    return np.array([float(xy[0, 0]), float(xy[0, 1])]), float(yaw[0])


def _two_worlds(town, md, lane):
    route = random_route(town, 0, 100.0, start_lane=lane, start_s=5.0)
    return make_world(town, md, EMPTY, route=route, num_worlds=2)


def _run(world, seconds, controls):
    """Step with per-world controls `[2, 3]`; the ego speed is held (throttle balances drag)."""
    c = torch.as_tensor(controls, dtype=torch.float32)
    events = []
    for _ in range(round(seconds / world.cfg.dt)):
        events += world.step(c)
    return events


def _oncoming_lane(town, lane, s):
    """The lane next to `lane` at arc length `s` running the other way (Town01 two-way roads)."""
    p, yaw = _lane_pose(town, lane, s)
    left = np.array([-math.sin(yaw), math.cos(yaw)])
    idx, s_o, lat = town.project((p + 3.5 * left)[None])
    other = int(idx[0])
    _, yaw_o = _lane_pose(town, other, float(s_o[0]))
    assert abs(lat[0]) < 0.8 and math.cos(yaw_o - yaw) < -0.9
    return other, float(s_o[0])


def test_vehicle_brakes_for_ego_cutting_in_diagonally(town01, town01_map_data, long_lane):
    """The ego drives beside the lane (one lane width to the right) and cuts diagonally into it
    ahead of a car: the car brakes as soon as the ego's footprint enters its path."""
    w = _two_worlds(town01, town01_map_data, long_lane)
    p, yaw = _lane_pose(town01, long_lane, 40.0)
    right = np.array([math.sin(yaw), -math.cos(yaw)])
    start = p + 3.5 * right
    w.set_ego(float(start[0]), float(start[1]), yaw, 8.0)
    w.set_vehicles([long_lane], [30.0], [9.0])
    # world 0 drives straight beside the lane; world 1 steers left into it
    _run(w, 0.6, [[0.3, 0.0, 0.0], [0.3, 0.25, 0.0]])
    _run(w, 2.4, [[0.3, 0.0, 0.0], [0.3, -0.05, 0.0]])
    s_keep, s_cut = (float(w.state.vehicles.s[i, 0]) for i in range(2))
    ego_lat = [float((w.state.ego.pose[i, :2].numpy() - p) @ right) for i in range(2)]
    assert ego_lat[0] > 3.0 and ego_lat[1] < 2.0  # world 1's ego is in the lane, world 0's beside it
    assert s_keep - s_cut > 2.0  # the car slowed for the ego that cut in
    assert float(w.state.vehicles.speed[0, 0]) > 8.5  # and was not bothered by the ego beside its lane


def test_oncoming_vehicle_brakes_for_ego_in_its_lane(town01, town01_map_data, long_lane):
    """The ego swerves into the oncoming lane: the oncoming car brakes."""
    w = _two_worlds(town01, town01_map_data, long_lane)
    p, yaw = _lane_pose(town01, long_lane, 30.0)
    other, s_o = _oncoming_lane(town01, long_lane, 30.0)
    w.set_ego(float(p[0]), float(p[1]), yaw, 6.0)
    w.set_vehicles([other], [s_o - 45.0], [8.0])  # 45 m ahead of the ego, coming towards it
    _run(w, 0.7, [[0.25, 0.0, 0.0], [0.25, 0.3, 0.0]])
    _run(w, 0.7, [[0.25, 0.0, 0.0], [0.25, -0.3, 0.0]])
    _run(w, 1.6, [[0.0, 0.0, 0.6], [0.0, 0.0, 0.6]])
    s_keep, s_swerve = (float(w.state.vehicles.s[i, 0]) for i in range(2))
    assert s_keep - s_swerve > 1.0
    assert float(w.state.vehicles.speed[1, 0]) < float(w.state.vehicles.speed[0, 0]) - 1.0


def test_pedestrian_on_sidewalk_stops_for_ego_heading_at_it(town01, town01_map_data, long_lane):
    """A pedestrian walking along the roadside stops when the ego comes at it; one the ego passes
    in its lane walks on."""
    w = _two_worlds(town01, town01_map_data, long_lane)
    p, yaw = _lane_pose(town01, long_lane, 40.0)
    right = np.array([math.sin(yaw), -math.cos(yaw)])
    fwd = np.array([math.cos(yaw), math.sin(yaw)])
    walk0 = p + 5.0 * right + 14.0 * fwd  # walking towards the ego, 5 m right of the lane centre
    path = np.stack([walk0, walk0 - 10.0 * fwd, walk0 - 20.0 * fwd, walk0 - 30.0 * fwd])
    w.set_pedestrians([path], [[False, False, False]], [0.0], [1.4])
    w.set_ego(float(p[0]), float(p[1]), yaw, 6.0)
    stopped = np.zeros(2, dtype=bool)
    for i in range(30):  # world 1 steers right, off the road towards the pedestrian, then brakes
        steer, brake = (-0.5, 0.0) if i < 20 else (0.0, 1.0)
        _run(w, w.cfg.dt, [[0.25, 0.0, 0.0], [0.25 * (brake == 0.0), steer, brake]])
        stopped |= (w.state.pedestrians.speed[:, 0] == 0.0).numpy()
    assert stopped[1] and not stopped[0]
    u_keep, u_swerve = (float(w.state.pedestrians.u[i, 0]) for i in range(2))
    assert u_keep - u_swerve > 0.5


def test_vehicle_yields_to_ego_crossing_the_junction(crossroads):
    """A car at a junction entry waits while the ego drives across the junction in front of it
    (coming from its left), and goes when the ego stopped well before the junction."""
    from carla_bridge.lite.map_data import build_map_data

    md = build_map_data(crossroads)
    lanes = crossroads.lanes
    sign = crossroads.stop_signs[0]
    yaw_v = float(lanes[sign.lane_id].yaw[-1])
    # the ego's approach: an entering lane heading to the car's right (the ego comes from its left)
    ego_lane = next(
        ln.id
        for ln in lanes
        if not ln.is_junction
        and ln.successors
        and all(lanes[j].is_junction for j in ln.successors)
        and math.cos(float(ln.yaw[-1]) - (yaw_v - math.pi / 2)) > 0.95
    )
    cfg = LiteConfig(num_vehicles=0, num_pedestrians=0, num_parked=0, num_props=0)
    from carla_bridge.lite.world import LiteWorld

    w = LiteWorld(crossroads, cfg, map_data=md)
    w.reset(random_route(crossroads, 0, 30.0), 0, num_worlds=2)
    ln = lanes[ego_lane]
    p, yaw = _lane_pose(crossroads, ego_lane, max(0.0, ln.length - 22.0))
    w.set_ego(float(p[0]), float(p[1]), yaw, 9.0)
    # the car stands with its front at the stop line (its full stop done): free to go at once
    w.set_vehicles([sign.lane_id], [sign.stop_s - 2.3], [0.0])
    controls = torch.tensor([[0.0, 0.0, 1.0], [0.3, 0.0, 0.0]])  # world 0's ego brakes, world 1's drives across
    events = []
    for _ in range(round(2.0 / w.cfg.dt)):
        events += w.step(controls)
    moved_on = w.state.vehicles.lane[:, 0].numpy() != sign.lane_id
    s0 = w.state.vehicles.s[:, 0].numpy() + moved_on * lanes[sign.lane_id].length  # progress from the lane start
    assert s0[0] - s0[1] > 2.0  # the car went in world 0 and waits for the crossing ego in world 1
    assert not moved_on[1] and moved_on[0]
    for _ in range(round(4.0 / w.cfg.dt)):
        events += w.step(controls)
    assert int(w.state.vehicles.lane[1, 0]) != sign.lane_id  # once the ego has passed, it goes
    assert not [e for e in events if e.kind.startswith("collisions")]
