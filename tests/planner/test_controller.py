"""Plan-tracking controller closes the loop on the kinematic bicycle with small errors."""

import math

import torch

from agents.bicycle import BicycleParams, bicycle_step, control_to_command
from planner.controller import ControllerParams, PlanController, track_plans

DT = 0.05


def _world_to_ego(pose: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    c, s = math.cos(pose[2].item()), math.sin(pose[2].item())
    d = pts[:, :2] - pose[:2]
    x = c * d[:, 0] + s * d[:, 1]
    y = -s * d[:, 0] + c * d[:, 1]
    yaw = torch.atan2(torch.sin(pts[:, 2] - pose[2]), torch.cos(pts[:, 2] - pose[2]))
    return torch.stack([x, y, yaw], -1)


def _drive(reference, seconds: float, v0: float):
    """Track a world-frame reference `reference(t) -> [3]` (x, y, yaw); replan every step.
    Returns (max lateral error after settling [m], final speed error [m/s])."""
    ctrl = PlanController(ControllerParams())
    params = BicycleParams()
    state = torch.tensor([*reference(0.0).tolist(), v0])
    errors = []
    t = 0.0
    for _ in range(int(seconds / DT)):
        future = torch.stack([reference(t + 0.5 * k) for k in range(1, 7)])
        plan = _world_to_ego(state[:3], future)
        c = ctrl(plan, float(state[3]))
        acc, steer = control_to_command(
            torch.tensor(c.throttle), torch.tensor(c.steer), torch.tensor(c.brake), state[3], params
        )
        state = bicycle_step(state, acc, steer, DT, params)
        t += DT
        ref = reference(t)
        local = _world_to_ego(ref, state[None, :3])[0]
        errors.append((t, abs(local[1].item()), abs(local[0].item())))
    late = [e for e in errors if e[0] > 5.0]  # after the speed transient
    return max(e[1] for e in late), max(e[2] for e in late), state


def test_tracks_straight_plan():
    v = 10.0
    lat, lon, state = _drive(lambda t: torch.tensor([v * t, 0.0, 0.0]), 10.0, v0=6.0)
    print(f"straight: max lateral {lat:.3f} m, max longitudinal {lon:.3f} m")
    assert lat < 0.05
    assert lon < 1.0
    assert abs(state[3].item() - v) < 0.3


def test_tracks_curved_plan():
    v, radius = 8.0, 30.0

    def ref(t):
        a = v * t / radius
        return torch.tensor([radius * math.sin(a), radius * (1 - math.cos(a)), math.atan2(math.sin(a), math.cos(a))])

    lat, lon, _ = _drive(ref, 10.0, v0=v)
    print(f"curve R=30 m: max lateral {lat:.3f} m, max longitudinal {lon:.3f} m")
    assert lat < 0.3
    assert lon < 1.0


def test_stop_plan_brakes_and_batch_shapes():
    ctrl = PlanController()
    c = ctrl(torch.zeros(6, 3), 5.0)
    assert c.throttle == 0.0 and c.brake >= 0.5
    plans = torch.zeros(4, 6, 3)
    plans[:, :, 0] = torch.arange(1, 7) * 0.5 * 10.0
    th, st, br, _ = track_plans(plans, torch.full((4,), 10.0), ControllerParams())
    assert th.shape == (4,) and torch.all(st.abs() < 1e-6) and torch.all(br == 0)


def test_rejects_bad_plans():
    ctrl = PlanController()
    bad = torch.zeros(6, 3)
    bad[2, 0] = float("nan")
    try:
        ctrl(bad, 1.0)
    except ValueError as e:
        assert "NaN" in str(e)
    else:
        raise AssertionError("NaN plan accepted")
