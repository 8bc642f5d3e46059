"""Following a plan as time goes on: a plan made at time t0 (ego frame then) is kept in the world
frame and, at any later time, re-expressed as the `[T, 3]` plan the controller expects (rear-axle
poses at now + 0.5·(1..T) s in the current ego frame). Used by the driving agent between replans
and by the oracle's counterfactual branches."""

from __future__ import annotations

import torch
from torch import Tensor

from agents.se2 import se2_compose, se2_relative
from planner import HORIZON_STEPS, STEP_SECONDS


def plan_in_world(pose: Tensor, dense: Tensor, dense_dt: float = 0.1) -> tuple[Tensor, Tensor]:
    """A dense ego-frame plan → world-frame samples with their times.

    Args:
        pose: `[..., 3]` the ego's world pose when the plan was made.
        dense: `[..., D, 3]` rear-axle poses at t = dense_dt·(1..D) in that ego frame.

    Returns:
        (poses `[..., D+1, 3]` world frame, starting with `pose` at t = 0; times `[D+1]` [s]).
    """
    origin = torch.zeros_like(dense[..., :1, :])
    local = torch.cat([origin, dense], -2)
    world = se2_compose(pose[..., None, :].expand_as(local), local)
    times = dense_dt * torch.arange(local.shape[-2], dtype=torch.float32, device=dense.device)
    return world, times


def plan_at_times(plan_world: Tensor, plan_times: Tensor, query: Tensor) -> Tensor:
    """Poses of world-frame plans at `query` times, linear in (x, y) and shortest-arc in yaw; beyond the
    last sample the last segment's velocity is extrapolated (the heading is held).

    Args:
        plan_world: `[..., D+1, 3]` poses at `plan_times [D+1]` (strictly increasing, first = 0).
        query: `[Q]` times [s] ≥ 0.

    Returns:
        `[..., Q, 3]` world poses.
    """
    t = plan_times.double()
    p = plan_world.double()
    q = query.double().clamp(min=0.0).to(p.device)
    dyaw = p[..., 1:, 2] - p[..., :-1, 2]
    yaw_u = torch.cat([p[..., :1, 2], p[..., :1, 2] + torch.atan2(torch.sin(dyaw), torch.cos(dyaw)).cumsum(-1)], -1)
    qc = q.clamp(max=float(t[-1]))
    i1 = torch.searchsorted(t, qc).clamp(1, len(t) - 1)
    i0 = i1 - 1
    frac = (qc - t[i0]) / (t[i1] - t[i0]).clamp(min=1e-9)  # [Q]
    xy = p[..., i0, :2] + frac[:, None] * (p[..., i1, :2] - p[..., i0, :2])
    y = yaw_u[..., i0] + frac * (yaw_u[..., i1] - yaw_u[..., i0])
    vel = (p[..., -1, :2] - p[..., -2, :2]) / (t[-1] - t[-2]).clamp(min=1e-9)  # [..., 2]
    extra = (q - t[-1]).clamp(min=0.0)[:, None]  # [Q, 1]
    xy = xy + extra * vel[..., None, :]
    y = torch.atan2(torch.sin(y), torch.cos(y))
    return torch.cat([xy, y[..., None]], -1).to(plan_world.dtype)


def plan_for_controller(plan_world: Tensor, plan_times: Tensor, elapsed: float, pose_now: Tensor) -> Tensor:
    """The `[..., T, 3]` plan to track `elapsed` seconds after it was made, in the ego frame of
    `pose_now [..., 3]` (T = 6 poses at 0.5 s)."""
    query = elapsed + STEP_SECONDS * torch.arange(1, HORIZON_STEPS + 1, dtype=torch.float32)
    target = plan_at_times(plan_world, plan_times, query)
    return se2_relative(pose_now[..., None, :].expand_as(target).to(target.dtype), target)
