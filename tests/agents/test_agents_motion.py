import math

import pytest
import torch

from agents import AgentClass, AgentStates
from agents.motion import constant_turn_rate, constant_velocity, ctrv_rollout, future_times


def _states() -> AgentStates:
    return AgentStates.create(
        xy=torch.tensor([[[1.0, 2.0], [0.0, 0.0], [-5.0, 3.0]]], dtype=torch.float64).float(),
        yaw=torch.tensor([[0.0, math.pi / 2, 3.0]]),
        velocity=torch.tensor([[[2.0, 0.0], [0.0, 1.0], [-1.0, 0.5]]]),
        size=torch.tensor([4.0, 2.0, 1.5]).expand(1, 3, 3),
        cls=torch.full((1, 3), int(AgentClass.CAR)),
    )


def test_future_times_default_is_nuscenes_horizon():
    torch.testing.assert_close(future_times(), torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5, 3.0]))


def test_constant_velocity_moves_along_velocity():
    s = _states()
    t = future_times()
    out = constant_velocity(s, t)
    assert out.shape == (1, 3, 6, 3)
    torch.testing.assert_close(out[0, 0, :, 0], 1.0 + 2.0 * t)
    torch.testing.assert_close(out[0, 2, -1, :2], torch.tensor([-8.0, 4.5]))
    torch.testing.assert_close(out[..., 2], s.yaw[..., None].expand(1, 3, 6))


def test_ctrv_zero_rate_equals_cv_along_heading():
    s = _states()
    t = future_times()
    got = constant_turn_rate(s, torch.zeros(1, 3), t)
    ref = constant_velocity(s, t)  # velocities above are along the heading for agents 0 and 1
    torch.testing.assert_close(got[0, :2], ref[0, :2])


def test_ctrv_matches_fine_euler_integration():
    xy = torch.tensor([[0.0, 0.0], [3.0, -1.0]], dtype=torch.float64)
    yaw = torch.tensor([0.3, -2.9], dtype=torch.float64)
    speed = torch.tensor([8.0, -2.0], dtype=torch.float64)
    rate = torch.tensor([0.4, -1.2], dtype=torch.float64)
    t = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    got = ctrv_rollout(xy, yaw, speed, rate, t)
    h = 1e-3
    p, th = xy.clone(), yaw.clone()
    ref = []
    for k in range(1, 3001):
        mid = th + 0.5 * rate * h
        p = p + speed[:, None] * h * torch.stack([torch.cos(mid), torch.sin(mid)], -1)
        th = th + rate * h
        if k in (500, 1000, 3000):
            ref.append(torch.cat([p, torch.atan2(torch.sin(th), torch.cos(th))[:, None]], -1))
    torch.testing.assert_close(got, torch.stack(ref, 1), atol=1e-6, rtol=0)
    # on a circle of radius v/ω about the turning centre
    centre = xy[0] + speed[0] / rate[0] * torch.stack([-torch.sin(yaw[0]), torch.cos(yaw[0])])
    radius = torch.linalg.vector_norm(got[0, :, :2] - centre, dim=-1)
    torch.testing.assert_close(radius, torch.full((3,), float(speed[0] / rate[0]), dtype=torch.float64))


def test_bad_input_names_the_field():
    s = _states()
    with pytest.raises(ValueError, match="yaw_rate must be"):
        constant_turn_rate(s, torch.zeros(3), future_times())
    with pytest.raises(ValueError, match="yaw_rate contains NaN"):
        constant_turn_rate(s, torch.full((1, 3), float("nan")), future_times())
    with pytest.raises(ValueError, match="times must be a 1-D"):
        constant_velocity(s, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="horizon"):
        future_times(0)
