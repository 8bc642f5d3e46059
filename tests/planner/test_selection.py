"""Selection, rejection and fallback (NaN predictions, nothing passes, imminent collisions), the
reference world models and the end-to-end `plan` step."""

import logging
import math
from dataclasses import replace

import pytest
import torch

from agents import AgentClass, AgentStates
from planner import LightState, WorldModel
from planner.plan import PlannerConfig, plan
from planner.proposals import ProposalConfig, ProposalSource
from planner.scorer import LossReason, score_plans
from planner.selection import Decision, RejectReason, select_plan
from planner.world_models import ConstantVelocityWorldModel, EmptyWorldModel, rasterize_boxes
from tests.planner.planner_scenes import agents, observation, privileged

CFG = PlannerConfig(proposals=ProposalConfig(lateral_offsets=(0.0,), speed_fractions=(0.5, 1.0)))


def test_nan_prediction_is_rejected_with_comfortable_stop(caplog):
    obs = observation(8.0)
    wm = EmptyWorldModel()
    first = plan(wm, obs, cfg=CFG)
    assert not bool(first.selection.rejected.any()) and first.selection.decision[0] == Decision.PLAN
    pred = first.prediction
    bad = pred.obstacle_prob.clone()
    bad[0, 2, 3, 10, 10] = math.nan
    pred = replace(pred, obstacle_prob=bad)
    res = score_plans(first.proposals, pred, first.scene.route, first.scene.route_valid)
    assert not bool(res.finite[0]) and bool((res.reason == LossReason.NON_FINITE).all())
    assert bool((res.score == 0).all())
    with caplog.at_level(logging.WARNING, logger="planner.selection"):
        sel = select_plan(first.proposals, res)
    assert sel.reject_reason[0] == RejectReason.NON_FINITE_PREDICTION
    assert sel.decision[0] == Decision.COMFORTABLE_STOP and sel.index[0] == 0
    assert torch.equal(sel.dense[0], first.proposals.dense[0, 0])
    assert torch.isfinite(sel.plan).all()
    assert "non-finite" in sel.messages[0] and "non-finite" in caplog.text


def test_nan_light_and_agents_also_reject():
    obs = observation(8.0)
    wm = ConstantVelocityWorldModel("cv-gt")
    first = plan(wm, obs, cfg=CFG, privileged=privileged(agents((40.0, 8.0, 0.0, 1.0, AgentClass.CAR))))
    for field, value in (("light_probs", torch.tensor([[math.nan, 0.0, 1.0]])), ("agent_mode_probs", None)):
        if value is None:
            value = first.prediction.agent_mode_probs.clone()
            value[0, 0, 0, 0] = math.nan
        res = score_plans(
            first.proposals, replace(first.prediction, **{field: value}), first.scene.route, first.scene.route_valid
        )
        sel = select_plan(first.proposals, res)
        assert sel.reject_reason[0] == RejectReason.NON_FINITE_PREDICTION, field


def test_head_on_without_escape_rejects_with_emergency_brake():
    obs = observation(8.0)
    wm = ConstantVelocityWorldModel("cv-gt")
    out = plan(wm, obs, cfg=CFG, privileged=privileged(agents((24.0, 0.0, math.pi, 8.0, AgentClass.CAR))))
    sel = out.selection
    assert sel.reject_reason[0] == RejectReason.NO_PLAN_PASSES_GATES
    assert sel.decision[0] == Decision.EMERGENCY_BRAKE and sel.index[0] == -1
    assert float(sel.dense[0, -1, 0]) == pytest.approx(8.0**2 / (2 * 8.0), abs=1e-3)
    assert "emergency brake" in sel.messages[0] and "NO_COLLISION" in sel.messages[0]


def test_distant_red_light_rejects_everything_but_not_imminently():
    """With every plan (even the stop) crossing a red line, the planner rejects and stops comfortably."""
    obs = observation(12.0)
    wm = ConstantVelocityWorldModel("cv-gt")
    out = plan(wm, obs, cfg=CFG, privileged=privileged(AgentStates.empty((1,)), LightState.RED, 8.0))
    assert out.selection.reject_reason[0] == RejectReason.NO_PLAN_PASSES_GATES
    assert out.selection.decision[0] == Decision.COMFORTABLE_STOP
    assert "NO_RED_LIGHT" in out.selection.messages[0]


def test_constant_velocity_model_rasterizes_and_extrapolates():
    obs = observation(0.0)
    wm = ConstantVelocityWorldModel("cv-gt")
    assert isinstance(wm, WorldModel)
    ag = agents((10.0, 0.0, 0.0, 4.0, AgentClass.CAR), (0.0, 10.0, -math.pi / 2, 0.0, AgentClass.PEDESTRIAN))
    scene = wm.encode_privileged(obs, privileged(ag, LightState.RED, 30.0))
    pred = wm.rollout(scene, torch.zeros(1, 3, 6, 3)).validate()
    assert pred.obstacle_prob.shape == (1, 3, 6, 200, 160)
    assert torch.allclose(pred.agent_trajs[0, 2, 0, 0, -1], torch.tensor([10.0 + 4.0 * 3.0, 0.0, 0.0]))
    assert pred.light_probs[0].tolist() == [1.0, 0.0, 0.0] and float(pred.light_distance[0]) == 30.0
    g = pred.grid
    occ = pred.obstacle_prob[0, 0]
    area = occ.sum((1, 2)) * g.cell_area()
    assert bool((area[:, None] > 0).all())
    assert float(area[0]) == pytest.approx(4.5 * 1.9 + 0.6 * 0.6, abs=3.0)  # car + pedestrian, cell quantised
    ix = g.world_to_voxel(torch.tensor([[10.0 + 4.0 * 3.0, 0.0]]))[0]
    assert occ[5, ix[0], ix[1]] == 1.0 and occ[0, ix[0], ix[1]] == 0.0
    with pytest.raises(ValueError, match="encode_privileged"):
        wm.encode(obs)
    with pytest.raises(ValueError, match="detector"):
        ConstantVelocityWorldModel("cv").encode(obs)
    with pytest.raises(ValueError, match="privileged"):
        ConstantVelocityWorldModel("cv", detector=lambda o: ag).encode_privileged(obs, privileged(ag))
    with pytest.raises(ValueError, match="name"):
        ConstantVelocityWorldModel("oracle")
    cv = ConstantVelocityWorldModel("cv", detector=lambda o: ag)
    assert torch.equal(cv.rollout(cv.encode(obs), torch.zeros(1, 2, 6, 3)).obstacle_prob[0, 0], occ)


def test_rasterize_matches_cell_centre_in_box():
    from occupancy import GridSpec

    g = GridSpec((-5.0, -5.0, -1.0), (5.0, 5.0, 1.0), (0.5, 0.5, 2.0))
    boxes = torch.tensor([[[[1.0, -0.3, 0.7, 3.0, 1.2]]]])
    occ = rasterize_boxes(boxes, torch.ones(1, 1, dtype=torch.bool), g)[0, 0]
    c = g.bev_centers()
    d = c - torch.tensor([1.0, -0.3])
    lon = d[..., 0] * math.cos(0.7) + d[..., 1] * math.sin(0.7)
    lat = -d[..., 0] * math.sin(0.7) + d[..., 1] * math.cos(0.7)
    assert torch.equal(occ > 0, (lon.abs() <= 1.5) & (lat.abs() <= 0.6))


def test_plan_step_uses_previous_plan_and_learned_head():
    obs = observation(6.0)

    class HeadModel(EmptyWorldModel):
        def encode(self, obs, prev=None):
            scene = super().encode(obs, prev)
            t = torch.arange(1, 7) * 0.5
            return replace(scene, ego_plans=torch.stack([6.0 * t, 0.05 * t**2, 0.0 * t], -1)[None, None])

    wm = HeadModel()
    first = plan(wm, obs, cfg=CFG)
    later = replace(obs, timestamp=torch.tensor([0.5]), ego_pose=torch.tensor([[3.0, 0.0, 0.0]]))
    second = plan(wm, later, prev=first, cfg=CFG, generator=torch.Generator().manual_seed(0))
    src = second.proposals.source[0].tolist()
    assert (
        src.count(ProposalSource.LEARNED) == 1 and src.count(ProposalSource.PREVIOUS) == 1 + CFG.proposals.num_previous
    )
    assert not bool(second.selection.rejected.any())
    assert second.selection.plan.shape == (1, 6, 3)


def test_replanning_loop_follows_a_slow_lead_centred():
    """Twelve replans at 2 Hz, the ego tracking each chosen plan perfectly: it slows behind a car doing
    3 m/s without touching it, keeps its lane, and never rejects."""
    from agents.se2 import se2_compose, se2_relative

    wm = ConstantVelocityWorldModel("cv-gt")
    xs = torch.arange(-10.0, 300.0)
    ego, v, t, prev = torch.zeros(3), 8.0, 0.0, None
    for _ in range(12):
        d = torch.stack([xs, torch.zeros_like(xs)], -1) - ego[:2]
        c, s = math.cos(-float(ego[2])), math.sin(-float(ego[2]))
        route = torch.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], -1)[None]
        obs = replace(observation(v), route=route, route_valid=torch.ones(1, len(xs), dtype=torch.bool))
        obs = replace(obs, ego_pose=ego[None].clone(), timestamp=torch.tensor([t]))
        lead = se2_relative(ego, torch.tensor([25.0 + 3.0 * t, 0.0, 0.0]))
        ag = agents((float(lead[0]), float(lead[1]), float(lead[2]), 3.0, AgentClass.CAR))
        res = plan(wm, obs, prev=prev, privileged=privileged(ag))
        assert not bool(res.selection.rejected.any())
        step = res.selection.plan[0, 0]
        ego, v, t, prev = se2_compose(ego, step), float(step[:2].norm()) / 0.5, t + 0.5, res
        gap = 25.0 + 3.0 * t - float(ego[0])  # lead centre to ego rear axle
        assert gap > 2.25 + 3.42  # never touching the lead
        assert abs(float(ego[1])) < 0.3
    assert v < 4.5  # adapted to the lead's speed
