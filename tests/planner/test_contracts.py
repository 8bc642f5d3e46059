import pytest
import torch

from agents import AgentStates
from occupancy import GridSpec
from planner import Observation, Prediction, SceneState, validate_plans


def _obs(b=1, v=6, h=16, w=32) -> Observation:
    return Observation(
        images=torch.zeros(b, v, 3, h, w, dtype=torch.uint8),
        intrinsics=torch.eye(3).expand(b, v, 3, 3).clone(),
        cam_to_ego=torch.eye(4).expand(b, v, 4, 4).clone(),
        ego_history=torch.zeros(b, 5, 3),
        speed=torch.zeros(b),
        ego_pose=torch.zeros(b, 3),
        route=torch.zeros(b, 10, 2),
        route_valid=torch.ones(b, 10, dtype=torch.bool),
        timestamp=torch.zeros(b),
    )


def test_observation_validates_and_names_fields():
    _obs().validate()
    bad = _obs()
    object.__setattr__(bad, "images", torch.zeros(1, 6, 3, 16, 32))
    with pytest.raises(ValueError, match="Observation.images must have dtype"):
        bad.validate()
    bad = _obs()
    object.__setattr__(bad, "speed", torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="Observation.speed contains NaN"):
        bad.validate()


def test_prediction_shapes_and_finiteness():
    g = GridSpec((-10.0, -10.0, -1.0), (10.0, 10.0, 1.0), (1.0, 1.0, 2.0))
    b, n, t, a, k = 2, 4, 6, 3, 2
    p = Prediction(
        grid=g,
        obstacle_prob=torch.zeros(b, n, t, 20, 20),
        drivable_prob=torch.ones(b, 20, 20),
        light_probs=torch.tensor([[0.0, 0.0, 1.0]] * b),
        light_distance=torch.full((b,), float("inf")),
        agent_trajs=torch.zeros(b, n, a, k, t, 3),
        agent_mode_probs=torch.full((b, n, a, k), 0.5),
        agent_valid=torch.ones(b, a, dtype=torch.bool),
        agent_size=torch.ones(b, a, 3),
        agent_cls=torch.zeros(b, a, dtype=torch.int64),
    ).validate()
    assert p.is_finite().all()
    p.obstacle_prob[1, 0, 0, 0, 0] = float("nan")
    assert p.is_finite().tolist() == [True, False]
    with pytest.raises(ValueError, match="obstacle_prob contains NaN"):
        p.validate()


def test_scene_state_and_plans():
    s = SceneState(
        agents=AgentStates.empty((1,)),
        speed=torch.zeros(1),
        ego_pose=torch.zeros(1, 3),
        route=torch.zeros(1, 5, 2),
        route_valid=torch.ones(1, 5, dtype=torch.bool),
        timestamp=torch.zeros(1),
    ).validate()
    assert s.batch_size == 1
    validate_plans(torch.zeros(1, 8, 6, 3))
    with pytest.raises(ValueError, match="plans has shape"):
        validate_plans(torch.zeros(8, 6, 3))


def test_gridspec():
    g = GridSpec.occ3d()
    assert g.shape == (200, 200, 16)
    assert g.coarsen(2).shape == (100, 100, 8)
    idx = g.world_to_voxel(torch.tensor([[0.1, -0.1, -0.9]]))
    assert idx.tolist() == [[100, 99, 0]]
    torch.testing.assert_close(g.voxel_to_world(idx), torch.tensor([[0.2, -0.2, -0.8]]))
    with pytest.raises(ValueError, match="whole number"):
        GridSpec((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.3, 0.3, 0.3))
