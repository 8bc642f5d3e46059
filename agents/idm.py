"""Intelligent Driver Model (Treiber et al. 2000): car-following acceleration, vectorized."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class IDMParams:
    """IDM parameters.

    Attributes:
        max_accel: a, maximum acceleration [m/s²].
        comfort_decel: b, comfortable deceleration [m/s²].
        max_decel: hard limit of the returned deceleration [m/s²].
        min_gap: s0, standstill gap [m].
        time_headway: T, desired time gap [s].
        delta: acceleration exponent.
    """

    max_accel: float = 2.0
    comfort_decel: float = 3.0
    max_decel: float = 8.0
    min_gap: float = 2.0
    time_headway: float = 1.2
    delta: float = 4.0


def idm_acceleration(v: Tensor, v_desired: Tensor, gap: Tensor, lead_v: Tensor, params: IDMParams) -> Tensor:
    """IDM acceleration toward a leader.

    Args:
        v: `[...]` own speed [m/s].
        v_desired: `[...]` desired speed [m/s] (0 means: stop).
        gap: `[...]` bumper-to-bumper gap to the leader [m]; `inf` = free road; ≤ 0 → full brake.
        lead_v: `[...]` leader speed [m/s] (ignored where the gap is infinite).
        params: IDM parameters.

    Returns:
        `[...]` acceleration [m/s²], clipped to [-max_decel, max_accel].
    """
    v = v.clamp(min=0.0)
    v0 = v_desired.clamp(min=0.1)
    free = 1.0 - (v / v0) ** params.delta
    dv = v - lead_v
    s_star = params.min_gap + (
        v * params.time_headway + v * dv / (2.0 * math.sqrt(params.max_accel * params.comfort_decel))
    ).clamp(min=0.0)
    finite = torch.isfinite(gap)
    safe_gap = torch.where(finite, gap.clamp(min=1e-3), torch.ones_like(gap))
    interaction = torch.where(finite, (s_star / safe_gap) ** 2, torch.zeros_like(gap))
    acc = params.max_accel * (free - interaction)
    acc = torch.where(finite & (gap <= 0.0), torch.full_like(acc, -params.max_decel), acc)
    return acc.clamp(-params.max_decel, params.max_accel)


def idm_scalar(
    v: float,
    v_desired: float,
    gap: float,
    lead_v: float,
    max_accel: float,
    comfort_decel: float,
    max_decel: float,
    min_gap: float,
    time_headway: float,
    delta: float,
) -> float:
    """`idm_acceleration` for one vehicle in plain arithmetic (the lite simulator's compiled kernels
    compile it; the parameters are `IDMParams`' fields in order)."""
    v = max(v, 0.0)
    free = 1.0 - (v / max(v_desired, 0.1)) ** delta
    interaction = 0.0
    if math.isfinite(gap):
        if gap <= 0.0:
            return -max_decel
        s_star = min_gap + max(v * time_headway + v * (v - lead_v) / (2.0 * math.sqrt(max_accel * comfort_decel)), 0.0)
        interaction = (s_star / max(gap, 1e-3)) ** 2
    return min(max(max_accel * (free - interaction), -max_decel), max_accel)
