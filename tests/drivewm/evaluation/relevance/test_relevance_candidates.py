"""The candidate plans of a relevance scene: route-following plans and plans that meet a road user."""

import torch

from drivewm.evaluation.relevance import intercept, route_following_plan


def test_route_following_plan_on_a_straight_route():
    route = torch.stack([torch.arange(-5.0, 80.0), torch.zeros(85)], -1)
    dense = route_following_plan(route, speed0=6.0, accel=0.0, v_max=6.0, lateral=0.0)
    t = torch.arange(1, 31) * 0.1
    assert torch.allclose(dense[:, 0], 6.0 * t, atol=1e-4)
    assert torch.allclose(dense[:, 1:], torch.zeros(30, 2), atol=1e-5)
    swerve = route_following_plan(route, speed0=6.0, accel=0.0, v_max=6.0, lateral=-3.5)
    assert abs(float(swerve[-1, 1]) + 3.5) < 1e-4 and float(swerve[:, 1].max()) <= 1e-6  # right = negative y
    assert float(swerve[14, 2]) < 0.0  # heading to the right mid-swerve
    fast = route_following_plan(route, speed0=6.0, accel=2.0, v_max=10.0, lateral=0.0)
    v = torch.diff(torch.cat([torch.zeros(1), fast[:, 0]])) / 0.1
    assert abs(float(v[-1]) - 10.0) < 1e-3 and float(v[0]) < 6.5  # jerk-limited onset, capped at v_max


def test_intercept_plans_meet_the_road_user():
    route = torch.stack([torch.arange(-5.0, 120.0), torch.zeros(125)], -1)
    for xy, vel, v0 in (
        ((20.0, 0.0), (0.0, 0.0), 10.0),
        ((25.0, 3.0), (4.0, 0.0), 8.0),
        ((30.0, -5.0), (0.0, 2.5), 6.0),
    ):
        hit = intercept(torch.tensor(xy), torch.tensor(vel), v0)
        assert hit is not None
        dense = route_following_plan(route, v0, hit[0], 16.0, hit[1])
        centre = dense[:, :2] + 1.38 * torch.stack([torch.cos(dense[:, 2]), torch.sin(dense[:, 2])], -1)
        t = torch.arange(1, 31) * 0.1
        agent = torch.tensor(xy) + t[:, None] * torch.tensor(vel)
        assert float((centre - agent).norm(dim=-1).min()) < 1.5  # the ego's centre passes through the agent's
    assert intercept(torch.tensor([40.0, 0.0]), torch.tensor([15.0, 0.0]), 5.0) is None  # too fast to catch
