"""OracleWorldModel: true futures from branches of the lite simulator (Town01, a straight lane)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents import Control, boxes_overlap, ego_boxes
from carla_bridge.lite.backend import LiteBackend
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.random_route import random_route
from carla_bridge.oracle import OracleWorldModel, rasterize_near
from planner import WorldModel
from planner.world_models import PLANNER_BEV_GRID, rasterize_boxes

T = torch.arange(1, 7, dtype=torch.float32) * 0.5


def _plan(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`[6, 3]` plan from rear-axle x(t), y(t) with the yaw of the path's tangent."""
    xs, ys = torch.cat([torch.zeros(1), x]), torch.cat([torch.zeros(1), y])
    yaw = torch.atan2(ys[1:] - ys[:-1], xs[1:] - xs[:-1])
    return torch.stack([x, y, yaw], -1)


@pytest.fixture
def lead_car_scene(town01, long_lane, single_thread):
    """The ego at 5 m/s on a straight Town01 lane, a standing car 15 m ahead, nothing else."""
    route = random_route(town01, 0, 120.0, start_lane=long_lane, start_s=5.0)
    cfg = LiteConfig(num_vehicles=0, num_pedestrians=0, num_parked=0, num_props=0)
    backend = LiteBackend(town01, cfg)
    backend.reset(route, 0)
    world = backend.world
    lane = town01.lanes[long_lane]
    xy, yaw = lane.interpolate(np.array([10.0]))
    world.set_ego(float(xy[0, 0]), float(xy[0, 1]), float(yaw[0]), speed=5.0)
    world.set_vehicles([long_lane], [10.0 + 1.38 + 15.0], [0.0])
    return backend


def _plans() -> torch.Tensor:
    stop_t = torch.clamp(T, max=5.0 / 3.0)
    stop = _plan(5.0 * stop_t - 1.5 * stop_t**2, torch.zeros(6))  # comfortable stop from 5 m/s at 3 m/s²
    go = _plan(8.0 * T, torch.zeros(6))  # ignores the car ahead
    swerve = _plan(5.0 * T, -8.0 * (T / 3.0) ** 2)  # leaves the road to the right
    return torch.stack([stop, go, swerve])[None]


def test_oracle_outcomes_are_the_true_future_and_leave_the_world_untouched(lead_car_scene):
    backend = lead_car_scene
    world = backend.world
    obs = backend.observation()
    oracle = OracleWorldModel(backend)
    assert isinstance(oracle, WorldModel)
    scene = oracle.encode(obs)
    before = world.snapshot()
    plans = _plans()
    out = oracle.simulate(scene, plans)
    out.prediction.validate()
    assert world.snapshot().equals(before)  # the driven world is restored (never touched)

    assert out.collision.tolist() == [False, True, False]
    assert math.isfinite(float(out.collision_time[1])) and 0.0 < float(out.collision_time[1]) <= 3.0
    assert out.off_road.tolist() == [False, False, True]
    assert out.unsafe.tolist() == [False, True, True]
    assert not bool(out.red_light.any())

    # independent check of the collision flag: executed ego boxes vs the true car boxes at the keyframes
    ego = ego_boxes(out.ego_poses[:, 4::5])  # [N, T, 5] at t = 0.5 … 3 s
    car = out.boxes[:, :, :1]  # [N, T, 1, 5]
    hit = boxes_overlap(ego[..., None, :], car)[..., 0, 0].any(-1)
    assert hit[1] and not hit[0]

    # the car is in the predicted occupancy ~15 m ahead (cell centre inside its box), nowhere behind
    pred = out.prediction
    g = pred.grid
    ix = int((out.boxes[0, 0, 0, 0] - g.lower[0]) / g.voxel[0])
    iy = int((out.boxes[0, 0, 0, 1] - g.lower[1]) / g.voxel[1])
    assert pred.obstacle_prob[0, 0, 0, ix, iy] == 1.0
    assert 13.0 < float(out.boxes[0, 0, 0, 0]) < 20.0 and abs(float(out.boxes[0, 0, 0, 1])) < 0.5
    assert pred.obstacle_prob[0, 0, 0, : int(-g.lower[0] / g.voxel[0])].sum() == 0
    # skipping far agents changes nothing: the plain rasterization of every agent box gives the same grid
    assert torch.equal(pred.obstacle_prob[0], rasterize_boxes(out.boxes, out.agent_valid[None].expand(3, -1), g))
    # agent futures: one mode of probability 1 equal to the boxes
    assert torch.equal(pred.agent_trajs[0, :, :, 0], out.boxes[..., :3].permute(0, 2, 1, 3))
    assert torch.all(pred.agent_mode_probs == 1.0)
    # executed ego: the stop plan stops near x = 4.2 m, the fast plan gets further
    assert 2.5 < float(out.ego_poses[0, -1, 0]) < 6.0
    assert float(out.ego_poses[1, 10, 0]) > float(out.ego_poses[0, 10, 0])
    # drivable map: the lane ahead is driveable, 8 m to the right is not
    assert pred.drivable_prob[0, int((10 - g.lower[0]) / g.voxel[0]), int((0 - g.lower[1]) / g.voxel[1])] == 1.0
    assert pred.drivable_prob[0, int((10 - g.lower[0]) / g.voxel[0]), int((-8 - g.lower[1]) / g.voxel[1])] == 0.0

    # batching does not change the outcome: one plan per batch gives the same futures
    single = OracleWorldModel(world, max_branch=1).simulate(scene, plans)
    assert torch.allclose(single.ego_poses, out.ego_poses, atol=1e-4)
    assert torch.allclose(single.boxes, out.boxes, atol=1e-4)
    assert torch.equal(single.collision, out.collision)
    # rollout (the WorldModel protocol) returns the same prediction
    assert torch.equal(oracle.rollout(scene, plans).obstacle_prob, pred.obstacle_prob)
    assert world.snapshot().equals(before)


def test_oracle_sim_dt_and_bad_inputs(lead_car_scene):
    backend = lead_car_scene
    obs = backend.observation()
    fine = OracleWorldModel(backend, dt=None)
    assert fine.dt == backend.world.cfg.dt
    out = fine.simulate(fine.encode(obs), _plans()[:, :2])
    assert out.ego_poses.shape == (2, 60, 3)
    assert out.collision.tolist() == [False, True]
    with pytest.raises(ValueError, match="dt"):
        OracleWorldModel(backend, dt=0.3)
    with pytest.raises(ValueError, match="max_branch"):
        OracleWorldModel(backend, max_branch=0)
    with pytest.raises(ValueError, match="LiteWorld"):
        OracleWorldModel(object())
    scene = fine.encode(obs)
    with pytest.raises(ValueError, match="T = 6"):
        fine.rollout(scene, torch.zeros(1, 2, 5, 3))
    backend.step(Control(brake=1.0))
    with pytest.raises(ValueError, match="timestamp"):
        fine.rollout(scene, _plans())


def test_rasterize_near_equals_the_plain_rasterization():
    gen = torch.Generator().manual_seed(0)
    boxes = torch.cat(
        [
            torch.rand(3, 6, 40, 2, generator=gen) * torch.tensor([300.0, 300.0]) - 150.0,  # near and far
            torch.rand(3, 6, 40, 1, generator=gen) * 6.0 - 3.0,
            torch.rand(3, 6, 40, 2, generator=gen) * 12.0 + 0.3,  # up to buses
        ],
        -1,
    )
    valid = torch.rand(40, generator=gen) > 0.2
    got = rasterize_near(boxes, valid, PLANNER_BEV_GRID)
    ref = rasterize_boxes(boxes, valid[None].expand(3, -1), PLANNER_BEV_GRID)
    assert torch.equal(got, ref) and ref.sum() > 0
    assert rasterize_near(boxes + 1e3 * torch.tensor([1.0, 0, 0, 0, 0]), valid, PLANNER_BEV_GRID).sum() == 0
