"""DriveWorldModel on synthetic batches shaped like the dataset's: contract, plan conditioning,
batching over plans, bad inputs, losses, geometry helpers."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from drivewm.model import DriveWorldModel, ModelConfig
from drivewm.model.bev import project_voxels, warp_bev
from drivewm.model.heads import decode_detections, encode_detection_targets
from drivewm.model.losses import obstacle_bev, wta_losses
from occupancy import GridSpec
from planner.contracts import Observation, WorldModel
from tests.drivewm.synthetic_batches import TINY, simple_rig, synthetic_batch


@pytest.fixture(scope="module")
def setup(one_torch_thread):
    torch.manual_seed(0)
    cfg = ModelConfig(**TINY)
    with one_torch_thread():
        model = DriveWorldModel(cfg).eval()
        batch = synthetic_batch(cfg, batch_size=2, num_branches=2)
    return cfg, model, batch


def _plans(b: int, n: int, t: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(n)
    steps = torch.arange(1, t + 1, dtype=torch.float32) * 0.5
    speed = torch.rand(b, n, 1, generator=g) * 10
    lat = (torch.rand(b, n, 1, generator=g) - 0.5) * 6
    x = speed * steps
    y = lat * (steps / steps[-1]) ** 2
    return torch.stack([x, y, torch.atan2(y, x.clamp(min=0.1)) * 0.3], -1)


def test_implements_world_model_and_prediction_contract(setup):
    cfg, model, batch = setup
    assert isinstance(model, WorldModel)
    with torch.no_grad():
        scene = model.encode(batch.features.observation())
        scene.validate()
        pred = model.rollout(scene, _plans(2, 5))
    pred.validate()
    gx, gy, gz = cfg.grid.shape
    assert pred.obstacle_prob.shape == (2, 5, 6, gx, gy)
    assert pred.agent_trajs.shape == (2, 5, cfg.max_agents, cfg.num_modes, 6, 3)
    assert torch.allclose(pred.agent_mode_probs.sum(-1), torch.ones(2, 5, cfg.max_agents))
    assert torch.allclose(pred.light_probs.sum(-1), torch.ones(2))
    with torch.no_grad():
        sem = pred.decode_semantics(torch.tensor([0, 4]))
        # each scene's labels come from its own chosen plan, whatever the other scene chose
        assert torch.equal(sem[0], pred.decode_semantics(torch.tensor([0, 0]))[0])
        assert torch.equal(sem[1], pred.decode_semantics(torch.tensor([4, 4]))[1])
    assert sem.shape == (2, 6, gx, gy, gz) and sem.dtype == torch.uint8
    assert scene.ego_plans.shape == (2, cfg.ego_modes, 6, 3)


def test_rollout_of_n_plans_equals_n_single_rollouts(setup, active_plan_pathway):
    _, model, batch = setup
    model = active_plan_pathway(model)
    plans = _plans(2, 7)
    with torch.no_grad():
        scene = model.encode(batch.features.observation())
        joint = model.rollout(scene, plans)
        for i in range(plans.shape[1]):
            single = model.rollout(scene, plans[:, i : i + 1])
            torch.testing.assert_close(single.obstacle_prob[:, 0], joint.obstacle_prob[:, i], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(single.agent_trajs[:, 0], joint.agent_trajs[:, i], atol=1e-4, rtol=1e-5)
            torch.testing.assert_close(single.agent_mode_probs[:, 0], joint.agent_mode_probs[:, i], atol=1e-5, rtol=0)


def test_plan_pathway_starts_as_a_no_op(setup):
    _, model, batch = setup
    plans = _plans(2, 3)
    with torch.no_grad():
        scene = model.encode(batch.features.observation())
        on = model.rollout(scene, plans)
        off = model.rollout(scene, plans, plan_conditioning=False)
    torch.testing.assert_close(on.obstacle_prob, off.obstacle_prob, atol=0, rtol=0)
    torch.testing.assert_close(on.agent_trajs, off.agent_trajs, atol=0, rtol=0)


def test_plan_conditioning_changes_prediction_and_ablation_removes_it(setup, active_plan_pathway):
    _, model, batch = setup
    model = active_plan_pathway(model)
    plans = _plans(2, 2)
    plans[:, 1, :, 1] += 3.0  # same speed profile, 3 m to the left
    with torch.no_grad():
        scene = model.encode(batch.features.observation())
        pred = model.rollout(scene, plans)
        assert (pred.obstacle_prob[:, 0] - pred.obstacle_prob[:, 1]).abs().max() > 1e-4
        assert (pred.agent_trajs[:, 0] - pred.agent_trajs[:, 1]).abs().max() > 1e-4
        # plan dropout's gate: 0 is exactly the ablation, per scene
        gated = model.rollout_raw(scene, plans, plan_gate=torch.tensor([1.0, 0.0]))
        off = model.rollout(scene, plans, plan_conditioning=False)
        # the flag is per call: the model itself is unchanged
        again = model.rollout(scene, plans)
    torch.testing.assert_close(off.obstacle_prob[:, 0], off.obstacle_prob[:, 1])
    torch.testing.assert_close(off.agent_trajs[:, 0], off.agent_trajs[:, 1])
    torch.testing.assert_close(torch.sigmoid(gated.obstacle_logits[1]), off.obstacle_prob[1])
    torch.testing.assert_close(torch.sigmoid(gated.obstacle_logits[0]), pred.obstacle_prob[0])
    torch.testing.assert_close(again.obstacle_prob, pred.obstacle_prob, atol=0, rtol=0)


def test_bad_inputs_raise_value_error_naming_the_field(setup):
    _, model, batch = setup
    obs = batch.features.observation()
    nan_images = obs.images.float() / 255.0
    nan_images[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="Observation.images"):
        model.encode(replace(obs, images=nan_images))
    with pytest.raises(ValueError, match="Observation.intrinsics"):
        model.encode(replace(obs, intrinsics=obs.intrinsics[..., :2, :]))
    with pytest.raises(ValueError, match="Observation.ego_pose"):
        model.encode(replace(obs, ego_pose=obs.ego_pose[:1]))
    with pytest.raises(ValueError, match=r"Observation.images has size"):
        model.encode(replace(obs, images=obs.images[..., :16, :]))
    with torch.no_grad():
        scene = model.encode(obs)
    with pytest.raises(ValueError, match="plans"):
        model.rollout(scene, torch.zeros(2, 3, 6, 2))
    with pytest.raises(ValueError, match="plans"):
        model.rollout(scene, torch.full((2, 3, 6, 3), float("nan")))
    with pytest.raises(ValueError, match="T = 6"):
        model.rollout(scene, torch.zeros(2, 3, 5, 3))


def test_temporal_fusion_uses_previous_latent(setup):
    _, model, batch = setup
    obs = batch.features.observation()
    with torch.no_grad():
        first = model.encode(obs)
        second = model.encode(obs, first)
    assert (first.latent - second.latent).abs().max() > 1e-4


def test_loss_decreases_on_a_fixed_batch(setup):
    cfg, _, batch = setup
    torch.manual_seed(1)
    model = DriveWorldModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        out = model.compute_loss(batch)
        assert set(out) >= {"occ_ce", "occ_geo", "obstacle", "heatmap", "traj", "mode", "ego", "cf_obstacle", "loss"}
        assert all(torch.isfinite(v) for v in out.values())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_warp_bev_matches_hand_computed_shift():
    grid = GridSpec((-4.0, -4.0, -1.0), (4.0, 4.0, 1.0), (1.0, 1.0, 2.0))
    lat = torch.zeros(1, 1, 8, 8)
    lat[0, 0, 5, 3] = 1.0  # cell centre (1.5, -0.5) in the previous frame
    # the ego moved 1 m forward: the same world point is at (0.5, -0.5) now → cell (4, 3)
    out = warp_bev(lat, torch.tensor([[10.0, 5.0, 0.0]]), torch.tensor([[11.0, 5.0, 0.0]]), grid)
    assert out[0, 0].argmax() == 4 * 8 + 3 and math.isclose(float(out.max()), 1.0, abs_tol=1e-5)
    # turn by +90°: previous-frame point (1.5, -0.5) is at (-0.5, -1.5) in the new frame → cell (3, 2)
    out = warp_bev(lat, torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, math.pi / 2]]), grid)
    assert out[0, 0].argmax() == 3 * 8 + 2


def test_project_voxels_hits_principal_point_and_rejects_points_behind():
    k, m = simple_rig((90, 160))
    pts = torch.tensor([[1.5 + 20.0, 0.0, 1.5], [-20.0, 0.0, 1.5]])
    uv, valid = project_voxels(pts, k[None], m[None], (90, 160))
    torch.testing.assert_close(uv[0, 0, 0], torch.zeros(2), atol=1e-4, rtol=0)  # front camera centre
    assert bool(valid[0, 0, 0]) and not bool(valid[0, 0, 1])
    assert bool(valid[0, 3, 1])  # the back camera sees the point behind


def test_detection_targets_decode_back_to_the_boxes():
    grid = GridSpec((-40.0, -40.0, -1.0), (40.0, 40.0, 5.4), (1.6, 1.6, 0.8))
    boxes = torch.tensor([[[10.3, -5.2, 0.9, 0.4, 4.5, 1.9, 1.6], [-20.0, 12.1, 0.8, -2.0, 0.8, 0.7, 1.8]]])
    cls, valid = torch.tensor([[0, 3]]), torch.tensor([[True, True]])
    vel = torch.tensor([[[3.0, 1.0], [0.0, -1.0]]])
    heat, box, _, inside = encode_detection_targets(boxes, cls, valid, vel, grid)
    assert bool(inside.all())
    logits = torch.logit(heat.clamp(1e-4, 1 - 1e-4))
    agents, _scores = decode_detections(logits, box, grid, max_agents=4, threshold=0.5)
    assert int(agents.valid.sum()) == 2
    got = sorted(zip(agents.xy[0][agents.valid[0]].tolist(), agents.cls[0][agents.valid[0]].tolist()))
    want = sorted(zip(boxes[0, :, :2].tolist(), cls[0].tolist()))
    for (gxy, gc), (wxy, wc) in zip(got, want):
        assert gc == wc and math.dist(gxy, wxy) < 1e-4
    i = int((agents.cls[0] == 0).nonzero()[0])
    assert abs(float(agents.yaw[0, i]) - 0.4) < 1e-5
    torch.testing.assert_close(agents.size[0, i], boxes[0, 0, 4:7])


def test_wta_losses_match_plain_loops():
    g = torch.Generator().manual_seed(0)
    trajs = torch.randn(3, 4, 6, 3, generator=g)
    logits = torch.randn(3, 4, generator=g)
    target = torch.randn(3, 6, 3, generator=g)
    valid = torch.rand(3, 6, generator=g) > 0.3
    valid[2] = False
    reg, ce = wta_losses(trajs, logits, target, valid)
    regs, ces, count = 0.0, 0.0, 0
    for a in range(2):
        v = valid[a]
        ade = [float(torch.linalg.norm(trajs[a, k, v, :2] - target[a, v, :2], dim=-1).mean()) for k in range(4)]
        best = min(range(4), key=lambda k: ade[k])
        ces += float(torch.logsumexp(logits[a], 0) - logits[a, best])
        d = trajs[a, best, v] - target[a, v]
        sl1 = torch.where(d[:, :2].abs() < 1, 0.5 * d[:, :2] ** 2, d[:, :2].abs() - 0.5).sum(-1)
        yaw = torch.atan2(torch.sin(d[:, 2]), torch.cos(d[:, 2])).abs()
        regs += float((sl1 + 0.5 * yaw).sum())
        count += int(v.sum())
    assert math.isclose(float(reg), regs / count, rel_tol=1e-4)
    assert math.isclose(float(ce), ces / 2, rel_tol=1e-4)


def test_obstacle_bev_counts_objects_in_the_height_band_only():
    grid = GridSpec((-2.0, -2.0, -1.0), (2.0, 2.0, 5.4), (1.0, 1.0, 0.8))  # z centres -0.6, 0.2, ... 5.0
    labels = torch.full((4, 4, 8), 17, dtype=torch.uint8)
    labels[0, 0, 1] = 4  # car at 0.2 m → obstacle
    labels[1, 1, 7] = 16  # vegetation at 5.0 m → above the band
    labels[2, 2, 0] = 11  # ground
    labels[3, 3, 2] = 15  # man-made at 1.0 m
    occ, known = obstacle_bev(labels, grid)
    want = torch.zeros(4, 4, dtype=torch.bool)
    want[0, 0] = want[3, 3] = True
    assert torch.equal(occ, want) and bool(known.all())


def test_observation_shapes_from_features(setup):
    _, _, batch = setup
    obs: Observation = batch.features.observation()
    obs.validate()
    batch.features.prev_observation().validate()


@pytest.mark.parametrize(
    "bad, field",
    [
        (dict(plan_dropout=1.0), "plan_dropout"),
        (dict(plan_dropout=-0.1), "plan_dropout"),
        (dict(coarse_factor=3), "coarse_factor"),
        (dict(num_modes=0), "num_modes"),
    ],
)
def test_model_config_rejects_bad_values_naming_the_field(bad, field):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**bad)
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "plan_drop": 0.1})
