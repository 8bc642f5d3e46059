"""Kinematic extrapolation of agents: constant velocity (CV) and constant turn rate and velocity (CTRV).

Pure functions over batches: an `AgentStates` `[..., A]` and future time offsets `[T]` give poses
`[..., A, T, 3]` = (x, y, yaw) in the states' frame. Validity is the states' `valid` mask,
unchanged over T (broadcast it as `states.valid[..., None]`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from agents.se2 import wrap_angle
from agents.states import AgentStates

__all__ = ["constant_turn_rate", "constant_velocity", "ctrv_rollout", "cv_rollout", "future_times"]


def future_times(horizon: int = 6, dt: float = 0.5, device: torch.device | str = "cpu") -> Tensor:
    """`[T]` future offsets `dt·(1..horizon)` [s] (default the nuScenes 0.5 … 3.0 s)."""
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive int, got {horizon!r}")
    if not dt > 0 or not math.isfinite(dt):
        raise ValueError(f"dt must be a positive finite number, got {dt!r}")
    return dt * torch.arange(1, horizon + 1, dtype=torch.float32, device=device)


def _times(times: Tensor | Sequence[float], like: Tensor) -> Tensor:
    t = torch.as_tensor(times, dtype=like.dtype, device=like.device)
    if t.dim() != 1:
        raise ValueError(f"times must be a 1-D tensor [T] of future offsets, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("times contains NaN or inf")
    return t


def cv_rollout(xy: Tensor, yaw: Tensor, velocity: Tensor, times: Tensor | Sequence[float]) -> Tensor:
    """Constant-velocity poses: `xy + velocity·t`, heading kept.

    Args:
        xy: `[..., 2]` position [m].
        yaw: `[...]` heading [rad].
        velocity: `[..., 2]` velocity [m/s].
        times: `[T]` offsets [s].

    Returns:
        `[..., T, 3]` poses.
    """
    t = _times(times, xy)
    pos = xy[..., None, :] + velocity[..., None, :] * t[:, None]  # [..., T, 2]
    heading = wrap_angle(yaw)[..., None].expand(pos.shape[:-1])  # [..., T]
    return torch.cat([pos, heading[..., None]], dim=-1)


def ctrv_rollout(xy: Tensor, yaw: Tensor, speed: Tensor, yaw_rate: Tensor, times: Tensor | Sequence[float]) -> Tensor:
    """Constant turn rate and velocity: the pose moves at `speed` along a heading `yaw + yaw_rate·t`.

    Uses the exact arc `x(t) = x + v·t·cos(yaw + ωt/2)·sinc(ωt/2)` (likewise y), which is smooth
    at ω = 0 (where it equals constant velocity along the heading).

    Args:
        xy: `[..., 2]` [m]; yaw: `[...]` [rad]; speed: `[...]` signed speed along the heading [m/s];
        yaw_rate: `[...]` [rad/s]; times: `[T]` offsets [s].

    Returns:
        `[..., T, 3]` poses.
    """
    t = _times(times, xy)
    half = 0.5 * yaw_rate[..., None] * t  # [..., T] half the heading change
    dist = speed[..., None] * t * torch.sinc(half / math.pi)  # chord length [..., T]
    mid = yaw[..., None] + half  # chord direction
    pos = xy[..., None, :] + dist[..., None] * torch.stack([torch.cos(mid), torch.sin(mid)], dim=-1)
    heading = wrap_angle(yaw[..., None] + 2.0 * half)
    return torch.cat([pos, heading[..., None]], dim=-1)


def constant_velocity(states: AgentStates, times: Tensor | Sequence[float]) -> Tensor:
    """Extrapolate agents with their velocity vectors.

    Args:
        states: `AgentStates` `[..., A]`.
        times: `[T]` future offsets [s].

    Returns:
        `[..., A, T, 3]` box-centre poses; valid where `states.valid`.
    """
    return cv_rollout(states.xy, states.yaw, states.velocity, times)


def constant_turn_rate(states: AgentStates, yaw_rate: Tensor, times: Tensor | Sequence[float]) -> Tensor:
    """Extrapolate agents with constant speed (along the heading) and constant yaw rate.

    Args:
        states: `AgentStates` `[..., A]`.
        yaw_rate: `[..., A]` [rad/s] (e.g. from `agents.trajectory.finite_differences` on the history).
        times: `[T]` future offsets [s].

    Returns:
        `[..., A, T, 3]` box-centre poses; valid where `states.valid`.
    """
    if not isinstance(yaw_rate, Tensor) or yaw_rate.shape != states.valid.shape:
        shape = tuple(yaw_rate.shape) if isinstance(yaw_rate, Tensor) else type(yaw_rate).__name__
        raise ValueError(f"yaw_rate must be a tensor of shape {tuple(states.valid.shape)}, got {shape}")
    if not bool(torch.isfinite(yaw_rate).all()):
        raise ValueError("yaw_rate contains NaN or inf")
    return ctrv_rollout(states.xy, states.yaw, states.speed, yaw_rate.to(states.xy.dtype), times)
