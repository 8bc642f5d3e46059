import math

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


def test_scene_state_and_prediction_are_frozen_with_typed_parts():
    import dataclasses

    from planner import LightBelief, LightState, valid_route_points

    s = SceneState.from_observation(_obs(b=2), AgentStates.empty((2,)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.latent = torch.zeros(2, 1, 1, 1)  # type: ignore[misc]
    light = LightBelief.from_states(torch.tensor([LightState.RED, LightState.NONE]), torch.tensor([12.0, math.inf]))
    lit = dataclasses.replace(s, light=light, ego_plans=torch.zeros(2, 3, 6, 3)).validate()
    assert lit.light.states().tolist() == [LightState.RED, LightState.NONE] and s.light is None
    assert lit.light.probs.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    none = LightBelief.no_light(2)
    assert none.states().tolist() == [LightState.NONE] * 2 and bool(none.distance.isinf().all())
    with pytest.raises(ValueError, match=r"LightBelief.probs has shape \[1, 3\], expected \[2, 3\]"):
        dataclasses.replace(s, light=LightBelief.no_light(1)).validate()
    with pytest.raises(ValueError, match="LightBelief.distance contains NaN"):
        dataclasses.replace(s, light=LightBelief(none.probs, torch.tensor([1.0, math.nan]))).validate()
    with pytest.raises(ValueError, match=r"SceneState.ego_plans has shape"):
        dataclasses.replace(s, ego_plans=torch.zeros(2, 3, 6, 2)).validate()
    # transitional: callers on the old extras dict still get the typed light (and nothing else)
    old = SceneState.from_observation(
        _obs(),
        AgentStates.empty((1,)),
        extras={"light_state": torch.tensor([0]), "light_distance": torch.tensor([5.0])},
    )
    assert old.light.states().tolist() == [LightState.RED] and old.extras["light_distance"].tolist() == [5.0]
    with pytest.raises(ValueError, match="not supported"):
        SceneState.from_observation(_obs(), AgentStates.empty((1,)), extras={"ego_plans": torch.zeros(1, 1, 6, 3)})
    route = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]])
    assert valid_route_points(route, torch.tensor([[True, False, True]]), 0).tolist() == [[0.0, 0.0], [2.0, 0.0]]
    with pytest.raises(ValueError, match="route of scene 0 has 1 valid points; at least 2 are needed"):
        valid_route_points(route, torch.tensor([[True, False, False]]), 0)


def test_plan_takes_privileged_state_only_from_privileged_world_models():
    from planner import PrivilegedWorldModel, plan
    from planner.world_models import ConstantVelocityWorldModel, EmptyWorldModel
    from tests.planner.planner_scenes import agents, observation, privileged

    gt = privileged(agents((30.0, 0.0, 0.0, 0.0, 1)))
    assert isinstance(ConstantVelocityWorldModel("cv-gt"), PrivilegedWorldModel)
    assert not isinstance(EmptyWorldModel(), PrivilegedWorldModel)
    assert plan(ConstantVelocityWorldModel("cv-gt"), observation(), privileged=gt).scene.agents.num_agents == 1
    with pytest.raises(ValueError, match="world model 'empty' does not read privileged state"):
        plan(EmptyWorldModel(), observation(), privileged=gt)


def test_one_time_base():
    from planner.timebase import DENSE_DT, DENSE_PER_STEP, HORIZON_SECONDS, HORIZON_STEPS, STEP_SECONDS

    assert (STEP_SECONDS, HORIZON_STEPS, DENSE_DT, DENSE_PER_STEP, HORIZON_SECONDS) == (0.5, 6, 0.1, 5, 3.0)
    assert math.isclose(DENSE_PER_STEP * DENSE_DT, STEP_SECONDS)  # whole dense steps per keyframe
