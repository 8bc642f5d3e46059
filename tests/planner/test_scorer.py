"""Gates of the vectorized scorer on hand-made scenes (through the real cv-gt world model), soft
terms, and bad inputs."""

import math
from dataclasses import replace

import pytest
import torch

from agents import EGO, AgentClass
from planner import LightState
from planner.proposals import ProposalConfig, ProposalSource, generate_proposals
from planner.scorer import Gate, LossReason, Soft, score_plans
from planner.world_models import ConstantVelocityWorldModel, EmptyWorldModel
from tests.planner.planner_scenes import agents, observation, privileged

CFG = ProposalConfig(lateral_offsets=(0.0, 3.5), speed_fractions=(0.25, 0.5, 1.0), target_speed=8.0)


def _run(priv, speed=8.0, cfg=CFG):
    obs = observation(speed)
    wm = ConstantVelocityWorldModel("cv-gt")
    scene = wm.encode_privileged(obs, priv)
    props = generate_proposals(scene.route, scene.route_valid, scene.speed, cfg)
    pred = wm.rollout(scene, props.plans)
    return props, pred, score_plans(props, pred, scene.route, scene.route_valid)


def _lane(props, offset):
    """Mask of lattice plans that end near lateral `offset` (plus the stop for offset 0)."""
    return (props.dense[0, :, -1, 1] - offset).abs() < 0.5


def test_free_road_prefers_fast_lane_keeping_plan():
    props, _, res = _run(privileged(agents((60.0, 20.0, 0.0, 0.0, AgentClass.CAR))))
    assert bool(res.passes.all())
    best = int(res.best[0])
    assert res.reason[0, best] == LossReason.SELECTED
    assert props.source[0, best] == ProposalSource.LATTICE
    assert abs(float(props.dense[0, best, -1, 1])) < 0.5  # stays centred
    assert float(res.progress[0, best]) == pytest.approx(float(res.progress[0].max()), rel=1e-4)
    assert (res.reason[0] == LossReason.LOWER_SCORE).sum() == props.num_plans - 1
    assert bool(((res.soft >= 0) & (res.soft <= 1)).all())


def test_head_on_agent_blocks_own_lane_not_the_other():
    props, _, res = _run(privileged(agents((25.0, 0.0, math.pi, 8.0, AgentClass.CAR))))
    own, other = _lane(props, 0.0), _lane(props, 3.5)
    assert bool((res.gates[0, Gate.NO_COLLISION, own] == 0).all())  # every own-lane plan, the stop included
    assert float(res.collision_time[0, 0]) < 1.5
    assert bool((res.gates[0, Gate.NO_COLLISION, other] == 1).all())
    assert bool(other[res.best[0]])
    assert bool((res.reason[0, own] == LossReason.COLLISION).all())


def test_parked_car_in_lane():
    props, _, res = _run(privileged(agents((22.0, 0.0, 0.0, 0.0, AgentClass.CAR))))
    own = _lane(props, 0.0)
    assert res.gates[0, Gate.NO_COLLISION, 0] == 1  # the comfortable stop ends before the car
    fast_own = own & (props.dense[0, :, -1, 0] > 20.0)
    assert bool(fast_own.any()) and bool((res.gates[0, Gate.NO_COLLISION, fast_own] == 0).all())
    assert bool(res.passes[0, res.best[0]])


def test_pedestrian_crossing():
    props, _, res = _run(privileged(agents((18.0, -3.0, math.pi / 2, 1.5, AgentClass.PEDESTRIAN))))
    own = _lane(props, 0.0)
    full_speed = own & (props.dense[0, :, -1, 0] > 22.0)
    assert bool(full_speed.any()) and bool((res.gates[0, Gate.NO_COLLISION, full_speed] == 0).all())
    assert res.gates[0, Gate.NO_COLLISION, 0] == 1
    assert float(res.agent_risk[0, full_speed].min()) == 1.0


def test_red_light_with_stop_line_ahead():
    far = agents((90.0, 20.0, 0.0, 0.0, AgentClass.CAR))
    props, _, red = _run(privileged(far, LightState.RED, 20.0))
    front = props.dense[0, :, :, 0].amax(-1) + EGO.front_overhang  # straight road: progress = x
    assert bool(((front > 20.0) == (red.gates[0, Gate.NO_RED_LIGHT] == 0)).all())
    assert red.gates[0, Gate.NO_RED_LIGHT, 0] == 1 and bool((red.gates[0, Gate.NO_RED_LIGHT] == 0).any())
    assert bool(red.passes[0, red.best[0]])
    _, _, green = _run(privileged(far, LightState.GREEN, 20.0))
    assert bool((green.gates[0, Gate.NO_RED_LIGHT] == 1).all())
    # a stop line already behind the front bumper is not judged (the ego is committed)
    _, _, behind = _run(privileged(far, LightState.RED, EGO.front_overhang - 0.5))
    assert bool((behind.gates[0, Gate.NO_RED_LIGHT] == 1).all())


def test_bev_obstacle_threshold_and_drivable_area():
    obs = observation(8.0)
    wm = EmptyWorldModel()
    scene = wm.encode(obs)
    props = generate_proposals(scene.route, scene.route_valid, scene.speed, CFG)
    pred = wm.rollout(scene, props.plans)
    g = pred.grid
    occ = torch.zeros(1, 1, 6, *g.bev_shape)
    ix = g.world_to_voxel(torch.tensor([[20.0, 0.0]]))[0]
    occ[0, 0, :, ix[0] : ix[0] + 4, ix[1] - 2 : ix[1] + 2] = 0.49  # below the threshold
    pred = replace(pred, obstacle_prob=occ.expand(1, props.num_plans, *occ.shape[2:]))
    res = score_plans(props, pred, scene.route, scene.route_valid)
    assert bool((res.gates[0, Gate.NO_COLLISION] == 1).all())
    assert float(res.obstacle_risk.max()) == pytest.approx(0.49)
    occ[occ > 0] = 0.51
    res = score_plans(
        props, replace(pred, obstacle_prob=occ.expand_as(pred.obstacle_prob)), scene.route, scene.route_valid
    )
    fast_own = _lane(props, 0.0) & (props.dense[0, :, -1, 0] > 20.0)
    assert bool((res.gates[0, Gate.NO_COLLISION, fast_own] == 0).all())
    assert bool((res.gates[0, Gate.NO_COLLISION, _lane(props, 3.5)] == 1).all())
    # the left lane is not drivable
    drv = torch.ones(1, *g.bev_shape)
    drv[0, :, g.world_to_voxel(torch.tensor([[0.0, 2.5]]))[0, 1] :] = 0.0
    res = score_plans(props, replace(pred, drivable_prob=drv), scene.route, scene.route_valid)
    assert bool((res.gates[0, Gate.DRIVABLE, _lane(props, 3.5)] == 0).all())
    assert bool((res.gates[0, Gate.DRIVABLE, _lane(props, 0.0)] == 1).all())
    assert bool((res.reason[0, _lane(props, 3.5)] == LossReason.OFF_ROAD).all())


def test_soft_terms_rank_progress_and_centring():
    props, _, res = _run(privileged(agents((60.0, 20.0, 0.0, 0.0, AgentClass.CAR))))
    prog = res.soft[0, Soft.PROGRESS]
    assert float(prog[0]) < float(prog.max()) and float(prog.max()) == pytest.approx(1.0)
    centre = res.soft[0, Soft.LANE_CENTRING]
    assert bool((centre[_lane(props, 0.0)] > centre[_lane(props, 3.5)].max()).all())


def test_bad_inputs_raise_naming_the_field():
    obs = observation(8.0)
    wm = EmptyWorldModel()
    scene = wm.encode(obs)
    props = generate_proposals(scene.route, scene.route_valid, scene.speed, CFG)
    pred = wm.rollout(scene, props.plans)
    bad = props.dense.clone()
    bad[0, 1, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="Proposals.dense contains NaN"):
        score_plans(replace(props, dense=bad), pred, scene.route, scene.route_valid)
    with pytest.raises(ValueError, match="plans"):
        score_plans(replace(props, plans=props.plans[..., :2]), pred, scene.route, scene.route_valid)
    with pytest.raises(ValueError, match="obstacle_prob"):
        score_plans(props, replace(pred, obstacle_prob=pred.obstacle_prob[..., :-1]), scene.route, scene.route_valid)
    with pytest.raises(ValueError, match="agent_mode_probs"):
        score_plans(props, replace(pred, agent_mode_probs=torch.zeros(1, 1, 3, 1)), scene.route, scene.route_valid)
    with pytest.raises(ValueError, match="route"):
        score_plans(props, pred, scene.route[..., :1], scene.route_valid)
    with pytest.raises(ValueError, match="route of scene 0"):
        score_plans(props, pred, scene.route, torch.zeros_like(scene.route_valid))
    short = replace(props, plans=props.plans[:, :, :3], dense=props.dense[:, :, :15])
    with pytest.raises(ValueError, match="frames"):
        score_plans(short, pred, scene.route, scene.route_valid)


def _standing_plan(pose):
    """One plan that stands at `pose` (x, y, yaw) for 3 s, on an empty road: (proposals, scene, prediction)."""
    from planner.proposals import Proposals

    dense = pose.expand(1, 1, 30, 3).clone()
    props = Proposals(
        dense[:, :, 4::5],
        dense,
        torch.zeros(1),
        torch.zeros(1, 1, dtype=torch.long),
        torch.ones(1, 1, dtype=torch.bool),
    )
    scene = EmptyWorldModel().encode(observation(0.0))
    return props, scene, EmptyWorldModel().rollout(scene, props.plans)


def test_touching_obstacle_cell_counts_as_collision():
    """An axis-aligned ego box whose front edge lies exactly on a cell boundary touches that cell."""

    g = EmptyWorldModel().grid
    # rear axle at x = 10 - 1.38 - 2.042 ⇒ the front bumper at exactly x = 10.0 (a cell boundary)
    x = 10.0 - EGO.front_overhang
    props, scene, pred = _standing_plan(torch.tensor([x, 0.0, 0.0]))
    occ = torch.zeros(1, 1, 6, *g.bev_shape)
    ix, iy = g.world_to_voxel(torch.tensor([[10.25, 0.25]]))[0].tolist()  # the cell [10, 10.5] × [0, 0.5]
    occ[0, 0, :, ix, iy] = 1.0
    res = score_plans(props, replace(pred, obstacle_prob=occ), scene.route, scene.route_valid)
    assert float(10.0 - (x + EGO.front_overhang)) == 0.0
    assert res.gates[0, Gate.NO_COLLISION, 0] == 0
    occ2 = torch.zeros_like(occ)
    occ2[0, 0, :, ix + 1, iy] = 1.0  # one cell further: clear by 0.5 m
    res2 = score_plans(props, replace(pred, obstacle_prob=occ2), scene.route, scene.route_valid)
    assert res2.gates[0, Gate.NO_COLLISION, 0] == 1
    # the rear edge: rear axle at 6.662 puts the box's rear at exactly x = 6.0 (float32), touching [5.5, 6.0]
    rear = torch.tensor([6.662, 0.0, 0.0]).expand(1, 1, 30, 3).clone()
    props_r = replace(props, plans=rear[:, :, 4::5], dense=rear)
    for cx, collides in ((5.75, True), (5.25, False)):
        occ3 = torch.zeros_like(occ)
        jx, jy = g.world_to_voxel(torch.tensor([[cx, 0.25]]))[0].tolist()
        occ3[0, 0, :, jx, jy] = 1.0
        res3 = score_plans(props_r, replace(pred, obstacle_prob=occ3), scene.route, scene.route_valid)
        assert (res3.gates[0, Gate.NO_COLLISION, 0] == 0) == collides, cx


def test_corner_on_a_cell_edge_touches_the_non_drivable_cell():

    g = EmptyWorldModel().grid
    props, scene, pred = _standing_plan(torch.tensor([0.0, 0.075, 0.0]))  # left edge at exactly y = 1.0
    row = g.world_to_voxel(torch.tensor([[0.0, 1.25]]))[0, 1]  # cells y ∈ [1.0, 1.5]
    for iy, off in ((row, True), (row + 1, False)):
        drv = torch.ones(1, *g.bev_shape)
        drv[0, :, iy] = 0.0
        res = score_plans(props, replace(pred, drivable_prob=drv), scene.route, scene.route_valid)
        assert (res.gates[0, Gate.DRIVABLE, 0] == 0) == off
