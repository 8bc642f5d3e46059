"""Plan-tracking controller: pure pursuit (lateral) + PI with feed-forward (longitudinal).

Tracks an ego plan `[T, 3]` (rear-axle x, y, yaw at t = 0.5·(1..T) s in the current ego frame,
DESIGN.md §3) and returns a `Control`. Batched over B plans for the lite simulator's W worlds (the
autopilot, the counterfactual branches and every agent reuse it). The longitudinal loop inverts
the lite simulator's throttle/brake map (`agents.bicycle.control_to_command`), so a commanded
acceleration is what the vehicle gets; at or beyond the vehicle's top speed, where that map does not
hold, it never gives throttle and brakes a plan that asks to slow down (a stop plan at 200 m/s brakes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from agents import Control
from agents.bicycle import BicycleParams
from agents.se2 import se2_compose, se2_relative
from agents.trajectory import interpolate_trajectory
from planner.contracts import HORIZON_STEPS, STEP_SECONDS


@dataclass(frozen=True)
class ControllerParams:
    """Controller gains.

    Attributes:
        lookahead_min: pure-pursuit lookahead at standstill [m].
        lookahead_gain: lookahead growth with speed [s] (Ld = min + gain · v).
        lookahead_max: lookahead cap [m].
        kp: speed-error gain [1/s].
        ki: integral gain [1/s²] (only `PlanController` keeps the integral).
        integral_limit: anti-windup clamp of the integral [m].
        stop_speed: plans slower than this at t = 0 and moving less than `stop_distance`
            overall mean "stand still": hold the brake [m/s].
        stop_distance: total plan length below which the plan is a stop [m].
        stop_margin: a plan that ends standing still is braked for so as to stop this far before its
            last point at the latest [m].
        step_seconds: plan step [s].
        vehicle: the vehicle model whose throttle/brake map is inverted.
    """

    lookahead_min: float = 3.0
    lookahead_gain: float = 0.6
    lookahead_max: float = 15.0
    kp: float = 1.5
    ki: float = 0.2
    integral_limit: float = 2.0
    stop_speed: float = 0.3
    stop_distance: float = 0.5
    stop_margin: float = 0.3
    step_seconds: float = STEP_SECONDS
    vehicle: BicycleParams = field(default_factory=BicycleParams)


def _arc_length(path: Tensor) -> Tensor:
    """`[B, P, 2]` → `[B, P]` cumulative arc length from the first point."""
    seg = (path[:, 1:] - path[:, :-1]).norm(dim=-1)
    return torch.cat([torch.zeros_like(seg[:, :1]), seg.cumsum(-1)], dim=-1)


def _point_at(path: Tensor, s: Tensor, dist: Tensor) -> Tensor:
    """Point at arc length `dist [B]` along `path [B, P, 2]` (arc lengths `s [B, P]`); extrapolated
    along the last segment beyond the end. Returns `[B, 2]`."""
    p = path.shape[1]
    idx = torch.searchsorted(s.contiguous(), dist[:, None].contiguous()).squeeze(-1).clamp(1, p - 1)  # [B]
    i0 = idx - 1
    a = path.gather(1, i0[:, None, None].expand(-1, 1, 2)).squeeze(1)
    b = path.gather(1, idx[:, None, None].expand(-1, 1, 2)).squeeze(1)
    s0 = s.gather(1, i0[:, None]).squeeze(1)
    s1 = s.gather(1, idx[:, None]).squeeze(1)
    frac = (dist - s0) / (s1 - s0).clamp(min=1e-6)
    frac = torch.where(idx == p - 1, frac, frac.clamp(max=1.0))
    return a + (b - a) * frac[:, None]


def _check_inputs(plans: Tensor, speed: Tensor) -> None:
    """`ValueError` naming `plans` or `speed` when they are not `[B, T ≥ 1, 3]` / `[B]` and finite."""
    if plans.dim() != 3 or plans.shape[-1] != 3:
        raise ValueError(f"plans must have shape [B, T, 3], got {list(plans.shape)}")
    if plans.shape[1] < 1:
        raise ValueError(f"plans must hold at least one pose (T ≥ 1), got an empty plan {list(plans.shape)}")
    if not bool(torch.isfinite(plans).all()):
        raise ValueError("plans contain NaN or inf")
    if speed.shape != plans.shape[:1]:
        raise ValueError(f"speed must have shape [{plans.shape[0]}], got {list(speed.shape)}")
    if not bool(torch.isfinite(speed).all()):
        raise ValueError("speed contains NaN or inf")


def track_plans(
    plans: Tensor, speed: Tensor, params: ControllerParams, integral: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Controls that track B plans (stateless apart from the optional speed-error integral).

    Args:
        plans: `[B, T, 3]` rear-axle (x, y, yaw) at t = step·(1..T) in each current ego frame.
        speed: `[B]` current speeds [m/s].
        params: gains.
        integral: `[B]` speed-error integral [m] (None: zeros).

    Returns:
        throttle `[B]` in [0, 1], steer `[B]` in [-1, 1] (positive left), brake `[B]` in [0, 1],
        and the speed error `[B]` [m/s] (for the caller's integral).

    Raises:
        ValueError: plans not `[B, T ≥ 1, 3]`, speeds not `[B]`, or NaN/inf in either (naming the field).
    """
    _check_inputs(plans, speed)
    t = plans.shape[1]
    veh = params.vehicle
    xy = plans[..., :2]
    path = torch.cat([torch.zeros_like(xy[:, :1]), xy], dim=1)  # [B, T+1, 2]
    s = _arc_length(path)  # [B, T+1]
    dt = params.step_seconds
    # speed profile from the signed progress along the plan's heading (a plan that moves backwards
    # asks for a stop, never for speed); speeds at segment midpoints t = dt·(k + 0.5)
    seg = path[:, 1:] - path[:, :-1]  # [B, T, 2]
    head = torch.stack([torch.cos(plans[..., 2]), torch.sin(plans[..., 2])], -1)
    seg_v = (seg * head).sum(-1) / dt  # [B, T]
    v0 = seg_v[:, 0]
    a_ff = (seg_v[:, 1] - seg_v[:, 0]) / dt if t > 1 else torch.zeros_like(v0)
    v_now = (v0 - 0.5 * dt * a_ff).clamp(min=0.0)
    err = v_now - speed
    integ = torch.zeros_like(speed) if integral is None else integral
    accel = a_ff.clamp(-veh.max_brake, veh.max_accel) + params.kp * err + params.ki * integ
    # a plan that ends standing still: never carry more speed than stops at its last point
    ends_stopped = seg_v[:, -1] < params.stop_speed
    s_signed = (seg_v * dt).cumsum(-1)[:, -1]
    room = (s_signed - params.stop_margin).clamp(min=0.05)
    accel_stop = -(speed * speed) / (2.0 * room)
    accel = torch.where(ends_stopped, torch.minimum(accel, accel_stop), accel)
    # invert accel = throttle·max_accel·fade − brake·max_brake − drag·v
    net = accel + veh.drag * speed
    fade = (1.0 - speed / veh.max_speed).clamp(min=0.05)
    throttle = (net / (veh.max_accel * fade)).clamp(0.0, 1.0)
    brake = (-net / veh.max_brake).clamp(0.0, 1.0)
    # at or beyond the vehicle's top speed the throttle map does not hold (throttle adds nothing there,
    # and on a real car it would speed up): no throttle, and a plan that asks to slow down — a stop plan
    # above all — is braked for its whole deceleration, without counting on drag
    beyond = speed >= veh.max_speed
    throttle = torch.where(beyond, torch.zeros_like(throttle), throttle)
    brake = torch.where(beyond & (accel <= 0), (-accel / veh.max_brake).clamp(0.0, 1.0), brake)
    stop = (v_now < params.stop_speed) & (s_signed < params.stop_distance)
    throttle = torch.where(stop, torch.zeros_like(throttle), throttle)
    brake = torch.where(stop, torch.where(speed > 1.0, brake.clamp(min=0.5), torch.ones_like(brake)), brake)
    # pure pursuit on the rear axle
    ld = (params.lookahead_min + params.lookahead_gain * speed).clamp(max=params.lookahead_max)
    target = _point_at(path, s, ld)  # [B, 2]
    dist = target.norm(dim=-1).clamp(min=1e-3)
    sin_alpha = target[:, 1] / dist
    curvature = 2.0 * sin_alpha / dist
    delta = torch.atan(veh.wheelbase * curvature)
    steer = (delta / veh.max_steer).clamp(-1.0, 1.0)
    short = s[:, -1] < 0.2  # no direction to follow
    steer = torch.where(short, torch.zeros_like(steer), steer)
    return throttle, steer, brake, err


class PlanController:
    """Stateful wrapper around `track_plans` keeping the speed-error integral per batch row.

    `__call__(plan [T, 3], speed)` returns one `Control`; `batch(plans [B, T, 3], speed [B])` returns
    `[B, 3]` (throttle, steer, brake) tensors.
    """

    def __init__(self, params: ControllerParams | None = None, dt: float = 0.05) -> None:
        self.params = params or ControllerParams()
        self.dt = dt
        self.integral: Tensor | None = None

    def reset(self) -> None:
        self.integral = None

    def batch(self, plans: Tensor, speed: Tensor) -> Tensor:
        """`[B, T, 3]` plans, `[B]` speeds → `[B, 3]` (throttle, steer, brake) in the plans' dtype."""
        if plans.dim() != 3 or plans.shape[-1] != 3:
            raise ValueError(f"plans must have shape [B, T, 3], got {list(plans.shape)}")
        speed = torch.as_tensor(speed, dtype=plans.dtype, device=plans.device).reshape(-1)
        _check_inputs(plans, speed)
        if self.integral is None or self.integral.shape[0] != plans.shape[0]:
            self.integral = torch.zeros(plans.shape[0], dtype=plans.dtype, device=plans.device)
        th, st, br, err = track_plans(plans, speed, self.params, self.integral.to(plans.dtype))
        lim = self.params.integral_limit
        self.integral = (self.integral + err * self.dt).clamp(-lim, lim)
        return torch.stack([th, st, br], dim=-1)

    def __call__(self, plan: Tensor, speed: float) -> Control:
        """One plan `[T, 3]` and the current speed [m/s] → `Control`."""
        plan = torch.as_tensor(plan, dtype=torch.float32)
        if plan.dim() != 2 or plan.shape[-1] != 3:
            raise ValueError(f"plan must have shape [T, 3], got {list(plan.shape)}")
        if plan.shape[0] < 1:
            raise ValueError("plan is empty: it must hold at least one pose [T ≥ 1, 3]")
        out = self.batch(plan[None], torch.tensor([float(speed)]))[0]
        return Control(throttle=float(out[0]), steer=float(out[1]), brake=float(out[2])).validate()


class PlanFollower:
    """Follows B plans as time goes on: each plan is anchored in the world frame when it is made, and
    at any later time re-sampled at now + step·(1..T) (`agents.trajectory.interpolate_trajectory`,
    linear in time, extended along its last segment past its end), expressed in the current ego
    frame and tracked by a `PlanController` that keeps this follower's own speed-error integral.

    The driving agent follows its chosen plan with it between replans, the counterfactual branches
    (`carla_bridge.lite.branching.run_plans`) follow one plan per world.

    Args:
        params: controller gains; dt: control period [s].
    """

    def __init__(self, params: ControllerParams | None = None, dt: float = 0.05) -> None:
        self.controller = PlanController(params, dt)
        self.plan_world: Tensor | None = None
        self.plan_times: Tensor | None = None
        self.plan_time = 0.0

    def reset(self) -> None:
        """Forget the plans and the controller state."""
        self.controller.reset()
        self.plan_world = self.plan_times = None

    def set_plans(self, pose: Tensor, plans: Tensor, time: float, plan_dt: float = STEP_SECONDS) -> None:
        """Anchor new plans (the controller state carries over).

        Args:
            pose: `[B, 3]` world rear-axle pose when the plans were made.
            plans: `[B, D, 3]` rear-axle poses at t = plan_dt·(1..D) in that ego frame.
            time: when they were made [s].
            plan_dt: their step [s].
        """
        if plans.dim() != 3 or plans.shape[-1] != 3 or pose.shape != (plans.shape[0], 3):
            raise ValueError(
                f"plans must be [B, D, 3] with pose [B, 3], got {list(plans.shape)} and {list(pose.shape)}"
            )
        if plans.shape[1] < 1:
            raise ValueError(f"plans are empty: each needs at least one pose [B, D ≥ 1, 3], got {list(plans.shape)}")
        if not bool(torch.isfinite(plans).all()) or not bool(torch.isfinite(pose).all()):
            raise ValueError("plans or pose contain NaN or inf")
        pose = pose.double()
        local = torch.cat([torch.zeros_like(plans[:, :1]), plans], 1).double()  # the pose itself at t = 0
        self.plan_world = se2_compose(pose[:, None].expand_as(local), local)
        self.plan_times = plan_dt * torch.arange(local.shape[1], dtype=torch.float64)
        self.plan_time = float(time)

    def targets(self, pose: Tensor, time: float) -> Tensor:
        """`[B, T, 3]` float64: the plans at time + step·(1..T) in the ego frame of `pose [B, 3]`."""
        if self.plan_world is None or self.plan_times is None:
            raise RuntimeError("PlanFollower has no plans: call set_plans first")
        step = self.controller.params.step_seconds
        query = (time - self.plan_time) + step * torch.arange(1, HORIZON_STEPS + 1, dtype=torch.float64)
        target, _ = interpolate_trajectory(self.plan_world, self.plan_times, query, extrapolate=True)
        return se2_relative(pose.double()[:, None].expand_as(target), target)

    def controls(self, pose: Tensor, speed: Tensor, time: float) -> Tensor:
        """`[B, 3]` float64 (throttle, steer, brake) for egos at `pose [B, 3]` with `speed [B]` at `time`."""
        return self.controller.batch(self.targets(pose, time), speed.double())

    def control(self, pose: Tensor, speed: float, time: float) -> Control:
        """One `Control` for B = 1 (`pose [3]`)."""
        c = self.controls(pose.reshape(1, 3), torch.tensor([float(speed)]), time)[0]
        return Control(throttle=float(c[0]), steer=float(c[1]), brake=float(c[2])).validate()
