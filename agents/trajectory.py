"""Trajectories of poses `[..., T, 3]` = (x, y, yaw): resampling in time and finite differences.

Resampling is linear in position and along the shortest arc in yaw; it never extrapolates: a
query time outside the sampled span (or between two samples of which one is invalid) is marked
invalid. Finite differences are backward differences, each with its own valid mask (a velocity
at step t needs steps t-1 and t valid, an acceleration t-2..t, a jerk t-3..t).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from agents.se2 import wrap_angle

__all__ = ["TrajectoryDerivatives", "finite_differences", "interpolate_trajectory", "resample_trajectory"]


def _check_traj(traj: Tensor, name: str = "traj") -> None:
    if not isinstance(traj, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(traj).__name__}")
    if traj.dim() < 2 or traj.shape[-1] != 3:
        raise ValueError(f"{name} must have shape [..., T, 3] (x, y, yaw), got {tuple(traj.shape)}")
    if not traj.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {traj.dtype}")
    if not bool(torch.isfinite(traj).all()):
        raise ValueError(f"{name} contains NaN or inf")


def _check_valid(valid: Tensor | None, shape: torch.Size, device: torch.device) -> Tensor:
    if valid is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if not isinstance(valid, Tensor) or valid.dtype != torch.bool:
        raise ValueError(f"valid must be a bool torch.Tensor, got {getattr(valid, 'dtype', type(valid).__name__)}")
    try:
        return valid.expand(shape)
    except RuntimeError:
        raise ValueError(f"valid has shape {tuple(valid.shape)}, expected {tuple(shape)}") from None


def interpolate_trajectory(
    traj: Tensor, times: Tensor, query: Tensor, valid: Tensor | None = None, extrapolate: bool = False
) -> tuple[Tensor, Tensor]:
    """Poses at query times, linear in (x, y) and shortest-arc in yaw.

    Args:
        traj: `[..., T, 3]` poses (x, y, yaw).
        times: `[..., T]` or `[T]` strictly increasing sample times [s].
        query: `[..., Q]` or `[Q]` query times [s].
        valid: optional `[..., T]` bool mask of the samples.
        extrapolate: continue past the ends: a query before the first (after the last) sample lies on
            the first (last) segment extended linearly in time — constant velocity and yaw rate.

    Returns:
        `(poses [..., Q, 3], valid [..., Q])`. A query is valid iff it lies within `[times[0], times[-1]]`
        (any time with `extrapolate`) and the samples it uses are valid (a query hitting a valid sample
        exactly is valid). Invalid queries hold the nearest bracketing sample's pose (finite padding).
    """
    _check_traj(traj)
    lead, T = traj.shape[:-2], traj.shape[-2]
    if not isinstance(times, Tensor) or times.shape[-1:] != (T,):
        raise ValueError(f"times must be a tensor [..., T] with T = {T}, got {getattr(times, 'shape', times)}")
    if not isinstance(query, Tensor) or query.dim() == 0:
        raise ValueError("query must be a tensor [..., Q] of times")
    if not bool(torch.isfinite(times).all()) or not bool(torch.isfinite(query).all()):
        raise ValueError("times and query must be finite")
    if T > 1 and not bool((times[..., 1:] > times[..., :-1]).all()):
        raise ValueError("times must be strictly increasing along T")
    vmask = _check_valid(valid, traj.shape[:-1], traj.device)
    # time arithmetic in float64: absolute timestamps (~1e9 s) do not fit float32
    times, query = times.to(torch.float64), query.to(torch.float64)
    shared = times.dim() == 1 and query.dim() == 1  # one set of brackets for every trajectory
    if not shared:
        try:
            times = times.expand(*lead, T).contiguous()
            query = query.expand(*lead, query.shape[-1]).contiguous()
        except RuntimeError:
            raise ValueError(
                f"times {tuple(times.shape)} and query {tuple(query.shape)} must broadcast to traj's leading dims "
                f"{tuple(lead)}"
            ) from None
    # Right bracket index hi in [1, T-1]; lo = hi - 1 (T == 1: both 0).
    hi = torch.searchsorted(times, query, right=False).clamp(min=min(1, T - 1), max=T - 1)
    lo = (hi - 1).clamp_min(0)
    t_lo, t_hi = times.gather(-1, lo), times.gather(-1, hi)
    span = (t_hi - t_lo).clamp_min(torch.finfo(torch.float64).tiny)
    alpha = (query - t_lo) / span
    alpha = (alpha if extrapolate else alpha.clamp(0.0, 1.0)).to(traj.dtype)  # [..., Q]
    if T == 1:
        alpha = torch.zeros_like(alpha)
    if shared:
        p_lo, p_hi = traj.index_select(-2, lo), traj.index_select(-2, hi)
        v_lo, v_hi = vmask.index_select(-1, lo), vmask.index_select(-1, hi)
    else:
        p_lo = traj.gather(-2, lo[..., None].expand(*lo.shape, 3))
        p_hi = traj.gather(-2, hi[..., None].expand(*hi.shape, 3))
        v_lo, v_hi = vmask.gather(-1, lo), vmask.gather(-1, hi)
    a = alpha[..., None]
    xy = p_lo[..., :2] + a * (p_hi[..., :2] - p_lo[..., :2])
    yaw = wrap_angle(p_lo[..., 2] + alpha * wrap_angle(p_hi[..., 2] - p_lo[..., 2]))
    # Exactly on a sample: only that sample must be valid.
    need_lo = alpha != 1.0
    need_hi = alpha != 0.0
    inside = (query >= times[..., :1]) & (query <= times[..., -1:])
    if extrapolate:
        inside = torch.ones_like(inside)
    out_valid = inside & (v_lo | ~need_lo) & (v_hi | ~need_hi)
    return torch.cat([xy, yaw[..., None]], dim=-1), out_valid.expand(xy.shape[:-1])


def resample_trajectory(
    traj: Tensor, times: Tensor, dt: float, valid: Tensor | None = None, start: float | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Resample a trajectory to a uniform time step.

    Args:
        traj: `[..., T, 3]` poses.
        times: `[T]` or `[..., T]` strictly increasing sample times [s].
        dt: new time step [s], > 0.
        valid: optional `[..., T]` bool sample mask.
        start: first new time [s]; default the earliest `times[..., 0]` over the batch.

    Returns:
        `(poses [..., Q, 3], new_times [Q], valid [..., Q])` with `new_times = start + dt·(0..Q-1)`
        reaching the latest `times[..., -1]` (within 1e-9·dt); see `interpolate_trajectory` for validity.
    """
    if not isinstance(dt, (int, float)) or not dt > 0 or dt == float("inf"):
        raise ValueError(f"dt must be a positive finite number, got {dt!r}")
    _check_traj(traj)
    if not isinstance(times, Tensor) or times.dim() == 0:
        raise ValueError("times must be a tensor [..., T]")
    t0 = float(times[..., 0].min()) if start is None else float(start)
    t1 = float(times[..., -1].max())
    count = int((t1 - t0) / dt + 1e-9) + 1 if t1 >= t0 else 0
    new_times = t0 + dt * torch.arange(count, dtype=torch.float64, device=traj.device)
    poses, out_valid = interpolate_trajectory(traj, times.to(torch.float64), new_times, valid)
    return poses, new_times.to(traj.dtype), out_valid


@dataclass(frozen=True)
class TrajectoryDerivatives:
    """Backward finite differences of a trajectory `[..., T, 3]`; every field `[..., T]` or `[..., T, 2]`.

    Attributes:
        velocity: `[..., T, 2]` [m/s]; valid from step 1.
        speed: `[..., T]` [m/s] (norm of `velocity`).
        acceleration: `[..., T, 2]` [m/s²]; valid from step 2.
        lon_accel: `[..., T]` acceleration along the heading [m/s²] (the heading at step t-1, where the
            second backward difference is centred).
        lat_accel: `[..., T]` acceleration to the left of that heading [m/s²].
        jerk: `[..., T, 2]` [m/s³]; valid from step 3.
        yaw_rate: `[..., T]` wrapped yaw difference / dt [rad/s]; valid from step 1.
        yaw_accel: `[..., T]` [rad/s²]; valid from step 2.
        valid_velocity, valid_acceleration, valid_jerk: `[..., T]` bool masks (yaw_rate shares the
            velocity mask, yaw_accel the acceleration mask).
    """

    velocity: Tensor
    speed: Tensor
    acceleration: Tensor
    lon_accel: Tensor
    lat_accel: Tensor
    jerk: Tensor
    yaw_rate: Tensor
    yaw_accel: Tensor
    valid_velocity: Tensor
    valid_acceleration: Tensor
    valid_jerk: Tensor


def _bdiff(x: Tensor, dim: int, dt: float, wrap: bool = False) -> Tensor:
    """Backward difference along `dim` / dt, zero at the first step."""
    d = x.narrow(dim, 1, x.shape[dim] - 1) - x.narrow(dim, 0, x.shape[dim] - 1)
    if wrap:
        d = wrap_angle(d)
    pad = torch.zeros_like(x.narrow(dim, 0, 1))
    return torch.cat([pad, d / dt], dim=dim)


def _mask_run(valid: Tensor, n: int) -> Tensor:
    """`[..., T]`: True where steps t-n..t are all valid."""
    out = valid.clone()
    for k in range(1, n + 1):
        shifted = torch.zeros_like(valid)
        shifted[..., k:] = valid[..., :-k]
        out &= shifted
    return out


def finite_differences(traj: Tensor, dt: float, valid: Tensor | None = None) -> TrajectoryDerivatives:
    """Velocity, acceleration, jerk, yaw rate and yaw acceleration by backward differences.

    Args:
        traj: `[..., T, 3]` poses sampled every `dt`.
        dt: time step [s], > 0.
        valid: optional `[..., T]` bool sample mask.

    Returns:
        A `TrajectoryDerivatives`; values under a False mask are finite but meaningless (0 at the start).
    """
    if not isinstance(dt, (int, float)) or not dt > 0 or dt == float("inf"):
        raise ValueError(f"dt must be a positive finite number, got {dt!r}")
    _check_traj(traj)
    vmask = _check_valid(valid, traj.shape[:-1], traj.device)
    vel = _bdiff(traj[..., :2], -2, dt)
    acc = _bdiff(vel, -2, dt)
    jerk = _bdiff(acc, -2, dt)
    yaw_rate = _bdiff(traj[..., 2], -1, dt, wrap=True)
    yaw_accel = _bdiff(yaw_rate, -1, dt)
    # The second backward difference at step t is centred on step t-1: project it on that heading.
    yaw_c = torch.cat([traj[..., :1, 2], traj[..., :-1, 2]], dim=-1)
    c, s = torch.cos(yaw_c), torch.sin(yaw_c)
    return TrajectoryDerivatives(
        velocity=vel,
        speed=torch.linalg.vector_norm(vel, dim=-1),
        acceleration=acc,
        lon_accel=acc[..., 0] * c + acc[..., 1] * s,
        lat_accel=-acc[..., 0] * s + acc[..., 1] * c,
        jerk=jerk,
        yaw_rate=yaw_rate,
        yaw_accel=yaw_accel,
        valid_velocity=_mask_run(vmask, 1),
        valid_acceleration=_mask_run(vmask, 2),
        valid_jerk=_mask_run(vmask, 3),
    )
