"""Kinematic bicycle: hand-computed cases."""

import math

import pytest
import torch

from agents.bicycle import BicycleParams, bicycle_step, control_to_command

P = BicycleParams()


def test_straight_constant_speed():
    s = torch.tensor([1.0, 2.0, 0.0, 10.0])
    out = bicycle_step(s, torch.tensor(0.0), torch.tensor(0.0), 0.1, P)
    assert torch.allclose(out, torch.tensor([2.0, 2.0, 0.0, 10.0]))


def test_acceleration_uses_mean_speed_and_clips():
    s = torch.tensor([0.0, 0.0, math.pi / 2, 0.0])
    out = bicycle_step(s, torch.tensor(100.0), torch.tensor(0.0), 1.0, P)  # clipped to max_accel = 3
    assert out[3].item() == pytest.approx(3.0)
    assert out[1].item() == pytest.approx(1.5)  # mean speed 1.5 m/s along +y
    assert abs(out[0].item()) < 1e-6
    # braking never reverses
    back = bicycle_step(torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor(-8.0), torch.tensor(0.0), 1.0, P)
    assert back[3].item() == 0.0 and back[0].item() == pytest.approx(0.5)


def test_turning_circle_radius():
    """At a constant steer angle δ the rear axle drives a circle of radius L / tan δ."""
    delta = 0.3
    radius = P.wheelbase / math.tan(delta)
    s = torch.tensor([0.0, 0.0, 0.0, 5.0])
    pts = []
    for _ in range(400):
        s = bicycle_step(s, torch.tensor(0.0), torch.tensor(delta), 0.05, P)
        pts.append(s[:2].clone())
    pts = torch.stack(pts)
    centre = torch.tensor([0.0, radius])  # turning left around (0, R)
    r = (pts - centre).norm(dim=-1)
    assert torch.allclose(r, torch.full_like(r, radius), atol=2e-3)


def test_batched_shapes_and_steer_clip():
    s = torch.zeros(3, 5, 4)
    s[..., 3] = 4.0
    out = bicycle_step(s, torch.zeros(3, 5), torch.full((3, 5), 5.0), 0.05, P)
    assert out.shape == (3, 5, 4)
    yaw_rate = out[0, 0, 2] / 0.05
    assert yaw_rate.item() == pytest.approx(4.0 * math.tan(P.max_steer) / P.wheelbase, rel=1e-4)


def test_control_to_command():
    acc, steer = control_to_command(torch.tensor(1.0), torch.tensor(-0.5), torch.tensor(0.0), torch.tensor(0.0), P)
    assert acc.item() == pytest.approx(P.max_accel) and steer.item() == pytest.approx(-0.5 * P.max_steer)
    acc, _ = control_to_command(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(1.0), torch.tensor(10.0), P)
    assert acc.item() == pytest.approx(-P.max_brake - P.drag * 10.0)
    acc, _ = control_to_command(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(0.0), torch.tensor(15.0), P)
    assert acc.item() == pytest.approx(P.max_accel * 0.5 - P.drag * 15.0)


def test_scalar_control_step_matches_the_batched_one():
    """`bicycle_control_step` (the simulator kernels' form) = `control_to_command` + `bicycle_step`."""
    from agents.bicycle import bicycle_control_step

    limits = (P.wheelbase, P.max_steer, P.max_accel, P.max_brake, P.max_speed, P.drag)
    for state, (th, st, br) in [((1.0, 2.0, 3.1, 7.0), (0.6, 0.8, 0.0)), ((0.0, 0.0, -3.1, 2.0), (0.0, -1.0, 1.0))]:
        s = torch.tensor(state, dtype=torch.float64)
        acc, steer = control_to_command(torch.tensor(th), torch.tensor(st), torch.tensor(br), s[3], P)
        ref = bicycle_step(s, acc.double(), steer.double(), 0.05, P)
        got = bicycle_control_step(*state, th, st, br, 0.05, *limits)
        assert got == pytest.approx(ref.tolist(), abs=1e-6)  # the batched form takes float32 controls
