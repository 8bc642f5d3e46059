"""Kinematic bicycle model about the rear axle, and the `Control` → (acceleration, steer angle) map.

State `[..., 4]` = (x, y, yaw, v): rear-axle position [m], heading [rad], speed [m/s] (v ≥ 0, no
reverse). The ego of the lite simulator and every background vehicle use it at dt = 0.05 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from agents.ego import EGO
from agents.se2 import wrap_angle


@dataclass(frozen=True)
class BicycleParams:
    """Vehicle limits of the kinematic bicycle.

    Attributes:
        wheelbase: rear axle → front axle [m].
        max_steer: road-wheel steering angle at |steer| = 1 [rad].
        max_accel: acceleration at full throttle from standstill [m/s²].
        max_brake: deceleration at full brake [m/s²].
        max_speed: top speed [m/s]; throttle acceleration fades linearly to 0 there.
        drag: rolling/air resistance per unit speed [1/s] (deceleration = drag · v when coasting).
    """

    wheelbase: float = EGO.wheelbase
    max_steer: float = 0.6
    max_accel: float = 3.0
    max_brake: float = 8.0
    max_speed: float = 30.0
    drag: float = 0.02


def bicycle_step(state: Tensor, accel: Tensor, steer_angle: Tensor, dt: float, params: BicycleParams) -> Tensor:
    """Advance the kinematic bicycle one step.

    Args:
        state: `[..., 4]` (x, y, yaw, v), rear axle, v ≥ 0.
        accel: `[...]` longitudinal acceleration [m/s²] (clipped to [-max_brake, max_accel]).
        steer_angle: `[...]` road-wheel angle [rad], positive left (clipped to ±max_steer).
        dt: step [s].
        params: vehicle limits.

    Returns:
        `[..., 4]` the next state; speed clipped to [0, max_speed], yaw wrapped to (-π, π].
        Position integrates with the mean speed and the mid-step heading (second order).
    """
    x, y, yaw, v = state.unbind(-1)
    a = accel.clamp(-params.max_brake, params.max_accel)
    delta = steer_angle.clamp(-params.max_steer, params.max_steer)
    v_next = (v + a * dt).clamp(0.0, params.max_speed)
    v_mean = 0.5 * (v + v_next)
    yaw_rate = v_mean * torch.tan(delta) / params.wheelbase
    yaw_mid = yaw + 0.5 * yaw_rate * dt
    x_next = x + v_mean * torch.cos(yaw_mid) * dt
    y_next = y + v_mean * torch.sin(yaw_mid) * dt
    yaw_next = wrap_angle(yaw + yaw_rate * dt)
    return torch.stack([x_next, y_next, yaw_next, v_next], dim=-1)


def control_to_command(
    throttle: Tensor, steer: Tensor, brake: Tensor, v: Tensor, params: BicycleParams
) -> tuple[Tensor, Tensor]:
    """Map `Control` fields (batched) to (acceleration [m/s²], road-wheel steer angle [rad]).

    Args:
        throttle: `[...]` in [0, 1].
        steer: `[...]` in [-1, 1], positive left.
        brake: `[...]` in [0, 1].
        v: `[...]` current speed [m/s].
        params: vehicle limits.

    Returns:
        accel `[...]` = throttle·max_accel·(1 − v/max_speed) − brake·max_brake − drag·v, and
        steer_angle `[...]` = steer·max_steer.
    """
    fade = (1.0 - v / params.max_speed).clamp(min=0.0)
    accel = throttle * params.max_accel * fade - brake * params.max_brake - params.drag * v
    return accel, steer * params.max_steer


def bicycle_control_step(
    x: float,
    y: float,
    yaw: float,
    v: float,
    throttle: float,
    steer: float,
    brake: float,
    dt: float,
    wheelbase: float,
    max_steer: float,
    max_accel: float,
    max_brake: float,
    max_speed: float,
    drag: float,
) -> tuple[float, float, float, float]:
    """`control_to_command` then `bicycle_step` for one vehicle in plain arithmetic (the lite
    simulator's compiled kernels compile it; the vehicle limits are `BicycleParams`' fields in order).
    Returns the next (x, y, yaw, v)."""
    accel = throttle * max_accel * max(1.0 - v / max_speed, 0.0) - brake * max_brake - drag * v
    a = min(max(accel, -max_brake), max_accel)
    delta = min(max(steer * max_steer, -max_steer), max_steer)
    v_next = min(max(v + a * dt, 0.0), max_speed)
    v_mean = 0.5 * (v + v_next)
    yaw_rate = v_mean * math.tan(delta) / wheelbase
    yaw_mid = yaw + 0.5 * yaw_rate * dt
    r = (yaw + yaw_rate * dt + math.pi) % (2.0 * math.pi) - math.pi
    return (
        x + v_mean * math.cos(yaw_mid) * dt,
        y + v_mean * math.sin(yaw_mid) * dt,
        r + 2.0 * math.pi if r <= -math.pi else r,
        v_next,
    )
