"""The vectorized scorer makes the same gate decisions as the plain shapely reference on random
scenes that are hard on purpose (many failures, many near misses)."""

import numpy as np
import pytest
import torch

from planner.scorer import Gate, score_plans
from tests.planner.reference_scorer import reference_gates, reference_gates_vectorized
from tests.planner.synthetic_scenes import random_scenes


@pytest.mark.parametrize(
    ("reference", "scenes", "seed"),
    [
        (reference_gates, 100, 11),
        (reference_gates, 100, 12),
        (reference_gates_vectorized, 500, 13),
        (reference_gates_vectorized, 500, 14),
        (reference_gates_vectorized, 500, 15),
        (reference_gates_vectorized, 500, 16),
    ],
)
def test_vectorized_gates_match_shapely_reference(reference, scenes, seed):
    """2200 scenes × 4 plans: 200 against the plain per-plan, per-step shapely loop, 2000 against
    the same definitions written with shapely's array functions."""
    sc = random_scenes(scenes, num_plans=4, seed=seed)
    vec = score_plans(sc.proposals, sc.prediction, sc.route, sc.route_valid).gates.numpy() > 0.5
    ref = reference(sc.proposals, sc.prediction, sc.route, sc.route_valid)
    mismatch = np.argwhere(vec != ref)
    assert len(mismatch) == 0, f"{len(mismatch)} gate mismatches, first (scene, gate, plan): {mismatch[:5].tolist()}"
    # hard on purpose: many plans fail, many placements are near misses, both outcomes of every gate occur
    assert 1.0 - ref.all(1).mean() >= 0.2
    near = ((sc.gaps > 0) & (sc.gaps <= 0.2)).mean()
    assert near >= 0.25, near
    for g in (Gate.NO_COLLISION, Gate.DRIVABLE, Gate.NO_RED_LIGHT):
        assert 0.05 < ref[:, g].mean() < 0.95, (g.name, ref[:, g].mean())


def test_reference_detects_a_disagreement():
    """The comparison can fail: flipping one obstacle cell under a plan changes the reference."""
    sc = random_scenes(5, num_plans=2, seed=3)
    ref = reference_gates(sc.proposals, sc.prediction, sc.route, sc.route_valid)
    x, y = sc.proposals.dense[0, 0, 10, :2].tolist()
    ix, iy = sc.prediction.grid.world_to_voxel(torch.tensor([[x + 1.0, y]]))[0].tolist()
    sc.prediction.obstacle_prob[0, 0, 1, ix, iy] = 0.9
    ref2 = reference_gates(sc.proposals, sc.prediction, sc.route, sc.route_valid)
    assert not ref2[0, Gate.NO_COLLISION, 0]
    vec = score_plans(sc.proposals, sc.prediction, sc.route, sc.route_valid).gates.numpy() > 0.5
    assert (vec == ref2).all() and (ref[1:] == ref2[1:]).all()


def test_cv_world_model_scene_matches_both_references():
    """The planner's own path: cv-gt rollout (plan-blind, broadcast along N) on the 200 × 160 BEV grid."""
    import math

    from agents import AgentClass
    from planner import LightState
    from planner.proposals import ProposalConfig, generate_proposals
    from planner.world_models import ConstantVelocityWorldModel
    from tests.planner.planner_scenes import agents, observation, privileged

    wm = ConstantVelocityWorldModel("cv-gt")
    ag = agents(
        (50.0, 3.5, math.pi, 6.0, AgentClass.CAR),
        (14.0, 3.5, 0.0, 2.0, AgentClass.CAR),
        (20.0, -3.2, math.pi / 2, 1.2, AgentClass.PEDESTRIAN),
        (-30.0, 0.0, 0.0, 9.0, AgentClass.CAR),
    )
    scene = wm.encode_privileged(observation(8.0), privileged(ag, LightState.RED, 24.0))
    cfg = ProposalConfig(lateral_offsets=(-1.0, 0.0, 1.0, 3.5), speed_fractions=(0.25, 0.5, 0.75, 1.0))
    props = generate_proposals(scene.route, scene.route_valid, scene.speed, cfg)
    pred = wm.rollout(scene, props.plans)
    args = (props, pred, scene.route, scene.route_valid)
    vec = score_plans(*args).gates.numpy() > 0.5
    assert (vec == reference_gates(*args)).all() and (vec == reference_gates_vectorized(*args)).all()
    assert 0 < vec.all(1).sum() < props.num_plans  # some plans pass, some fail
