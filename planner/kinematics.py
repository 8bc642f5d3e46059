"""Finite-difference kinematics of dense ego trajectories (0.1 s poses), shared by the
feasibility filter (`planner.proposals`) and the comfort term (`planner.scorer`).

The trajectory starts implicitly at the ego origin (0, 0, 0) at t = 0 with a known speed; poses are
given at t = dt·(1..D). Positions are differenced into signed speeds at the mid-points
t = dt·(i - 0.5), which makes the acceleration of a profile integrated with piecewise-constant
acceleration exact (see `planner.proposals`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from agents.se2 import wrap_angle


@dataclass(frozen=True)
class Kinematics:
    """Kinematic quantities of dense trajectories `[..., D]` (D dense steps).

    Attributes:
        speed: `[..., D]` signed speed along the heading at the mid-points t = dt·(i - 0.5) [m/s].
        accel: `[..., D]` longitudinal acceleration at t = dt·(i - 1) (the first uses the initial
            speed) [m/s²].
        jerk: `[..., D-1]` [m/s³].
        yaw_rate: `[..., D]` [rad/s] over each step.
        yaw_accel: `[..., D-1]` [rad/s²].
        lat_accel: `[..., D]` speed · yaw rate [m/s²].
        curvature: `[..., D]` yaw rate / |speed| [1/m] (0 where |speed| < 1e-3).
    """

    speed: Tensor
    accel: Tensor
    jerk: Tensor
    yaw_rate: Tensor
    yaw_accel: Tensor
    lat_accel: Tensor
    curvature: Tensor


def dense_kinematics(dense: Tensor, speed0: Tensor, dt: float) -> Kinematics:
    """Kinematics of dense poses.

    Args:
        dense: `[..., D, 3]` rear-axle poses (x, y, yaw) at t = dt·(1..D) in the ego frame, whose
            origin is the pose at t = 0.
        speed0: `[...]` speed at t = 0 [m/s] (broadcastable to the leading dims).
        dt: step [s].
    """
    lead = dense.shape[:-2]
    origin = torch.zeros((*lead, 1, 3), dtype=dense.dtype, device=dense.device)
    poses = torch.cat([origin, dense], dim=-2)  # [..., D+1, 3]
    disp = poses[..., 1:, :2] - poses[..., :-1, :2]  # [..., D, 2]
    dyaw = wrap_angle(poses[..., 1:, 2] - poses[..., :-1, 2])  # [..., D]
    mid_yaw = poses[..., :-1, 2] + 0.5 * dyaw
    heading = torch.stack([torch.cos(mid_yaw), torch.sin(mid_yaw)], dim=-1)
    speed = (disp * heading).sum(-1) / dt  # [..., D]
    v0 = torch.as_tensor(speed0, dtype=dense.dtype, device=dense.device).expand(lead).unsqueeze(-1)
    first = (speed[..., :1] - v0) / (0.5 * dt)
    accel = torch.cat([first, (speed[..., 1:] - speed[..., :-1]) / dt], dim=-1)
    jerk = (accel[..., 1:] - accel[..., :-1]) / dt
    yaw_rate = dyaw / dt
    yaw_accel = (yaw_rate[..., 1:] - yaw_rate[..., :-1]) / dt
    moving = speed.abs() > 1e-3
    curvature = torch.where(moving, yaw_rate / speed.abs().clamp_min(1e-3), torch.zeros_like(speed))
    return Kinematics(speed, accel, jerk, yaw_rate, yaw_accel, speed * yaw_rate, curvature)
