import math

import pytest
import torch

from agents.trajectory import finite_differences, interpolate_trajectory, resample_trajectory


def test_interpolate_hand_cases_linear_position_and_yaw_wrap():
    traj = torch.tensor([[0.0, 0.0, 3.0], [2.0, 4.0, -3.0], [4.0, 4.0, -2.0]], dtype=torch.float64)
    times = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    q = torch.tensor([0.0, 0.5, 1.0, 1.25, 2.0, 2.5, -0.1], dtype=torch.float64)
    out, valid = interpolate_trajectory(traj, times, q)
    torch.testing.assert_close(
        out[:5, :2], torch.tensor([[0.0, 0], [1, 2], [2, 4], [2.5, 4], [4, 4]], dtype=torch.float64)
    )
    # 3.0 -> -3.0 goes the short way through π (0.283 rad), not through 0 (6 rad)
    mid = 3.0 + 0.5 * (2 * math.pi - 6.0)
    assert abs(float(out[1, 2]) - mid) < 1e-12
    assert -math.pi < float(out[1, 2]) <= math.pi
    torch.testing.assert_close(out[3, 2], torch.tensor(-2.75, dtype=torch.float64))
    assert valid.tolist() == [True, True, True, True, True, False, False]


def test_interpolate_respects_sample_validity_and_batch_times():
    traj = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3) * 0.1
    times = torch.tensor([[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]])
    valid = torch.tensor([[True, True, False, True], [True, True, True, True]])
    out, ok = interpolate_trajectory(traj, times, torch.tensor([[0.5, 1.0, 1.5, 3.0], [10.5, 11.0, 11.5, 13.0]]), valid)
    assert ok.tolist() == [[True, True, False, True], [True, True, True, True]]
    torch.testing.assert_close(out[1, 0, :2], (traj[1, 0, :2] + traj[1, 1, :2]) / 2)
    # absolute timestamps (~1.5e9 s, nuScenes-like) keep sub-millisecond resolution
    t0 = 1.533e9
    out, ok = interpolate_trajectory(
        traj[0],
        torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64) + t0,
        torch.tensor([t0 + 0.25], dtype=torch.float64),
    )
    torch.testing.assert_close(out[0, :2], traj[0, 0, :2] + 0.25 * (traj[0, 1, :2] - traj[0, 0, :2]))


def test_resample_to_new_dt():
    t = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0])
    traj = torch.stack([2.0 * t, -t, torch.full_like(t, 0.3)], -1)
    out, new_t, valid = resample_trajectory(traj, t, dt=0.1)
    assert out.shape == (21, 3)
    torch.testing.assert_close(new_t, torch.arange(21) * 0.1)
    torch.testing.assert_close(out[:, 0], 2.0 * new_t)
    torch.testing.assert_close(out[:, 1], -new_t)
    assert bool(valid.all())
    # upsampled then downsampled reproduces the original samples
    back, _, _ = resample_trajectory(out, new_t, dt=0.5)
    torch.testing.assert_close(back, traj, atol=1e-5, rtol=0)


def test_finite_differences_constant_velocity_and_circle():
    dt = 0.1
    t = torch.arange(30, dtype=torch.float64) * dt
    line = torch.stack([3.0 * t, 4.0 * t, torch.full_like(t, math.atan2(4, 3))], -1)
    d = finite_differences(line, dt)
    torch.testing.assert_close(d.velocity[1:], torch.tensor([3.0, 4.0], dtype=torch.float64).expand(29, 2))
    torch.testing.assert_close(d.speed[1:], torch.full((29,), 5.0, dtype=torch.float64))
    torch.testing.assert_close(d.acceleration[2:], torch.zeros(28, 2, dtype=torch.float64))
    assert d.valid_velocity.tolist() == [False] + [True] * 29
    assert d.valid_acceleration[:3].tolist() == [False, False, True]
    assert d.valid_jerk[:4].tolist() == [False, False, False, True]
    # circle of radius r at speed v, counter-clockwise, crossing yaw = ±π: lateral accel v²/r, yaw rate v/r
    r, v = 10.0, 5.0
    th = v / r * t + 2.0
    circle = torch.stack([r * torch.sin(th), -r * torch.cos(th), th], -1)
    circle[:, 2] = torch.atan2(torch.sin(th), torch.cos(th))
    d = finite_differences(circle, dt)
    torch.testing.assert_close(d.yaw_rate[1:], torch.full((29,), v / r, dtype=torch.float64))
    torch.testing.assert_close(d.yaw_accel[2:], torch.zeros(28, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(d.lat_accel[2:], torch.full((28,), v * v / r, dtype=torch.float64), rtol=1e-2, atol=0)
    assert float(d.lon_accel[2:].abs().max()) < 1e-9


def test_finite_difference_masks_follow_invalid_samples():
    traj = torch.zeros(2, 6, 3)
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[0, 2] = False
    d = finite_differences(traj, 0.5, valid)
    assert d.valid_velocity[0].tolist() == [False, True, False, False, True, True]
    assert d.valid_acceleration[0].tolist() == [False, False, False, False, False, True]
    assert d.valid_jerk[1].tolist() == [False, False, False, True, True, True]


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda: finite_differences(torch.zeros(5, 2), 0.1), "traj must have shape"),
        (lambda: finite_differences(torch.zeros(5, 3), 0.0), "dt must be"),
        (lambda: finite_differences(torch.full((5, 3), float("inf")), 0.1), "traj contains NaN"),
        (lambda: finite_differences(torch.zeros(5, 3), 0.1, torch.ones(5)), "valid must be a bool"),
        (
            lambda: interpolate_trajectory(torch.zeros(3, 3), torch.tensor([0.0, 2.0, 1.0]), torch.zeros(1)),
            "increasing",
        ),
        (lambda: interpolate_trajectory(torch.zeros(3, 3), torch.zeros(4), torch.zeros(1)), "times must be"),
        (lambda: resample_trajectory(torch.zeros(3, 3), torch.arange(3.0), dt=-1.0), "dt must be"),
    ],
)
def test_bad_input_names_the_field(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_interpolate_extrapolates_along_the_end_segments_and_takes_the_short_arc():
    """Hand-computed: samples at t = 0, 1, 2 s; queries inside, before and after."""
    times = torch.tensor([0.0, 1.0, 2.0])
    poses = torch.tensor([[0.0, 0.0, 3.0], [2.0, 0.0, -3.0], [4.0, 2.0, -3.0]], dtype=torch.float64)
    out, valid = interpolate_trajectory(poses, times, torch.tensor([0.5, 1.5, 3.0, -1.0]), extrapolate=True)
    assert valid.all()
    assert out[0, :2].tolist() == pytest.approx([1.0, 0.0])
    # yaw takes the short way across ±π: 3.0 → -3.0 passes through π
    assert abs(math.remainder(float(out[0, 2]) - math.pi, 2 * math.pi)) < 1e-9
    assert out[1, :2].tolist() == pytest.approx([3.0, 1.0])
    assert out[2, :2].tolist() == pytest.approx([6.0, 4.0])  # last segment's velocity (2, 2) m/s for 1 s
    assert float(out[2, 2]) == pytest.approx(-3.0)  # last segment's yaw rate is 0
    assert out[3].tolist() == pytest.approx([-2.0, 0.0, math.remainder(3.0 - (2 * math.pi - 6.0), 2 * math.pi)])
    _, strict = interpolate_trajectory(poses, times, torch.tensor([0.5, 3.0, -1.0]))
    assert strict.tolist() == [True, False, False]


def test_shared_and_per_row_query_times_agree():
    g = torch.Generator().manual_seed(0)
    traj = torch.randn(4, 5, 7, 3, generator=g, dtype=torch.float64)
    times = torch.linspace(0.0, 3.0, 7)
    query = torch.tensor([0.1, 0.7, 2.9, 3.4])
    a, va = interpolate_trajectory(traj, times, query, extrapolate=True)
    b, vb = interpolate_trajectory(traj, times.expand(4, 5, 7), query.expand(4, 5, 4), extrapolate=True)
    assert torch.equal(a, b) and torch.equal(va, vb)
