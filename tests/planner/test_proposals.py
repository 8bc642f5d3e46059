"""Proposals: the stop is always there and feasible, the lattice follows the route, densification
keeps the coarse poses, the feasibility filter rejects what a car cannot drive, bad inputs raise."""

import math

import pytest
import torch

from planner.kinematics import dense_kinematics
from planner.proposals import (
    ProposalConfig,
    ProposalSource,
    densify,
    emergency_brake,
    feasibility,
    generate_proposals,
    previous_plan_proposals,
    speed_profiles,
)
from planner.timebase import DENSE_DT


def _arc_route(kappa: float, lateral: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.arange(-10.0, 140.0)
    if abs(kappa) < 1e-9:
        pts = torch.stack([s, torch.full_like(s, lateral)], -1)
    else:
        pts = torch.stack([torch.sin(s * kappa) / kappa, lateral + (1 - torch.cos(s * kappa)) / kappa], -1)
    return pts[None], torch.ones(1, pts.shape[0], dtype=torch.bool)


@pytest.mark.parametrize("speed", [0.0, 2.0, 8.0, 16.0])
@pytest.mark.parametrize(("kappa", "lateral"), [(0.0, 0.0), (0.03, 0.6), (-0.08, -0.4)])
def test_stop_always_first_and_feasible(speed, kappa, lateral):
    route, valid = _arc_route(kappa, lateral)
    cfg = ProposalConfig()
    p = generate_proposals(route, valid, torch.tensor([speed]), cfg)
    assert p.plans.shape == (1, 1 + len(cfg.lateral_offsets) * len(cfg.speed_fractions), 6, 3)
    assert p.source[0, 0] == ProposalSource.STOP and bool(p.feasible[0, 0])
    k = dense_kinematics(p.dense, p.speed0[:, None], DENSE_DT)
    assert float(k.accel[0, 0].min()) >= -cfg.comfortable_decel - 0.1  # comfortable (path chords on curves: ±3 %)
    assert float(k.speed[0, 0, -1]) < max(0.6, speed - 7.0)  # standing after 3 s, or braking all along
    assert bool((k.speed[0, 0, 1:] <= k.speed[0, 0, :-1] + 1e-4).all())
    assert bool((k.speed >= -1e-4).all())  # nobody reverses
    assert bool(p.feasible.all())  # the lattice on a drivable arc is feasible
    assert torch.allclose(p.plans, p.dense[:, :, 4::5])


def test_lattice_follows_route_offsets_and_speeds():
    route, valid = _arc_route(0.0, 0.0)
    cfg = ProposalConfig(lateral_offsets=(-1.0, 0.0, 2.0), speed_fractions=(0.5, 1.0), target_speed=10.0)
    p = generate_proposals(route, valid, torch.tensor([10.0]), cfg)
    end_y = p.dense[0, 1:, -1, 1].reshape(3, 2)
    assert torch.allclose(end_y, torch.tensor([[-1.0], [0.0], [2.0]]).expand(3, 2), atol=0.05)
    k = dense_kinematics(p.dense, p.speed0[:, None], DENSE_DT)
    v_end = k.speed[0, 1:, -1].reshape(3, 2)
    assert bool((v_end[:, 0] < 6.5).all()) and bool((v_end[:, 1] > 9.5).all())  # IDM-shaped towards 5 / 10 m/s


def test_speed_profiles_integrate_exactly():
    cfg = ProposalConfig()
    s, v = speed_profiles(torch.tensor([5.0]), torch.tensor([[0.0, 10.0]]), cfg, 30)
    # distance equals the trapezoidal integral of the speed (piecewise-constant acceleration)
    v_all = torch.cat([torch.full((1, 2, 1), 5.0), v], -1)
    assert torch.allclose(s[..., -1], (0.5 * (v_all[..., 1:] + v_all[..., :-1]) * DENSE_DT).sum(-1), atol=1e-4)
    a = (v_all[..., 1:] - v_all[..., :-1]) / DENSE_DT
    assert float((a[..., 1:] - a[..., :-1]).abs().max()) / DENSE_DT <= cfg.profile_jerk + 1e-3


def test_densify_reproduces_coarse_poses_and_initial_speed():
    t = torch.arange(1, 7) * 0.5
    plans = torch.stack([6.0 * t, 0.1 * t**2, torch.atan2(0.2 * t, torch.full_like(t, 6.0))], -1)[None, None]
    dense = densify(plans, torch.tensor([6.0]))
    assert torch.allclose(dense[:, :, 4::5], plans, atol=1e-5)
    k = dense_kinematics(dense, torch.tensor([[6.0]]), DENSE_DT)
    assert abs(float(k.speed[0, 0, 0]) - 6.0) < 0.05


def test_feasibility_rejects_violations():
    cfg = ProposalConfig()
    t = torch.arange(1, 31) * DENSE_DT
    straight = torch.stack([5.0 * t, torch.zeros_like(t), torch.zeros_like(t)], -1)
    hard_brake = torch.stack(
        [torch.cumsum(torch.full_like(t, 0.0), 0), torch.zeros_like(t), torch.zeros_like(t)], -1
    )  # 5 → 0 m/s in 0.05 s
    r = 2.0  # radius 2 m at 5 m/s: curvature 0.5 > 0.3
    tight = torch.stack([r * torch.sin(5.0 * t / r), r * (1 - torch.cos(5.0 * t / r)), 5.0 * t / r], -1)
    tight[:, 2] = torch.atan2(torch.sin(tight[:, 2]), torch.cos(tight[:, 2]))
    nan = straight.clone()
    nan[3, 0] = math.nan
    ok = feasibility(torch.stack([straight, hard_brake, tight, nan])[None], torch.tensor([5.0]), cfg)
    assert ok.tolist() == [[True, False, False, False]]


def test_previous_plan_shift_and_perturbations():
    cfg = ProposalConfig(num_previous=3)
    t = torch.arange(1, 7) * 0.5
    prev = torch.stack([5.0 * t, torch.zeros_like(t), torch.zeros_like(t)], -1)[None]
    # the ego drove 2.5 m in 0.5 s: the previous ego pose lies 2.5 m behind the current one
    out = previous_plan_proposals(prev, torch.tensor([[-2.5, 0.0, 0.0]]), 0.5, cfg, torch.Generator().manual_seed(0))
    assert out.shape == (1, 4, 6, 3)
    assert torch.allclose(out[0, 0], prev[0], atol=1e-5)  # constant speed: the same plan now
    assert float((out[0, 1:] - out[0, :1]).abs().max()) > 0.01
    with pytest.raises(ValueError, match="elapsed"):
        previous_plan_proposals(prev, torch.zeros(1, 3), 0.0, cfg)


def test_learned_and_previous_are_appended():
    route, valid = _arc_route(0.0)
    t = torch.arange(1, 7) * 0.5
    learned = torch.stack([4.0 * t, torch.zeros_like(t), torch.zeros_like(t)], -1)[None, None].repeat(1, 2, 1, 1)
    p = generate_proposals(route, valid, torch.tensor([4.0]), learned=learned, previous=learned[:, :1])
    assert p.source[0, -3:].tolist() == [ProposalSource.LEARNED, ProposalSource.LEARNED, ProposalSource.PREVIOUS]
    assert torch.allclose(p.plans[0, -1], learned[0, 0], atol=1e-5)


def test_bad_inputs_raise_naming_the_field():
    route, valid = _arc_route(0.0)
    with pytest.raises(ValueError, match="route"):
        generate_proposals(route[0], valid, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="speed contains NaN"):
        generate_proposals(route, valid, torch.tensor([math.nan]))
    with pytest.raises(ValueError, match="route of scene 0"):
        generate_proposals(route, torch.zeros_like(valid), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="learned"):
        generate_proposals(route, valid, torch.tensor([1.0]), learned=torch.zeros(1, 2, 5, 3))
    bad = torch.zeros(1, 2, 6, 3)
    bad[0, 0, 0, 0] = math.inf
    with pytest.raises(ValueError, match="learned contains NaN or inf"):
        generate_proposals(route, valid, torch.tensor([1.0]), learned=bad)


def test_emergency_brake_profile():
    d = emergency_brake(torch.tensor([8.0]), 8.0)
    assert d.shape == (1, 30, 3)
    assert float(d[0, -1, 0]) == pytest.approx(4.0)  # v²/2a
    assert float(d[0, 4, 0]) == pytest.approx(8.0 * 0.5 - 4.0 * 0.25)
