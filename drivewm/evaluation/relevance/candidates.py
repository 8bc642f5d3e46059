"""The N candidate plans of a relevance scene: the planner's own proposals (stop + route lattice)
plus plans that are unsafe on purpose, built from the scene — swerves into the adjacent / oncoming
lane and off the road, keeping speed or accelerating behind a slow or stopped car, running a red
light that is close, steering at the nearest road users. The truth (simulating each plan) decides
whether they really are unsafe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from agents import EGO
from planner import LightState, Observation, PrivilegedState, valid_route_points
from planner.proposals import (
    ProposalConfig,
    Proposals,
    ProposalSource,
    feasibility,
    generate_proposals,
    project_on_polyline,
)
from planner.timebase import DENSE_DT, DENSE_PER_STEP, HORIZON_SECONDS, HORIZON_STEPS


@dataclass(frozen=True)
class Candidates:
    """The N plans of one scene.

    Attributes:
        proposals: `Proposals` (B = 1).
        kinds: N names ("stop", "lattice", "no_brake", "accelerate", "swerve_left", …).
        constructed_unsafe: `[N]` bool, built to be unsafe (the truth decides whether they are).
    """

    proposals: Proposals
    kinds: list[str]
    constructed_unsafe: np.ndarray


def route_following_plan(route: Tensor, speed0: float, accel: float, v_max: float, lateral: float) -> Tensor:
    """A plan along the ego-frame route `[R, 2]`: speed from `speed0` with constant `accel` (clamped to
    [0, v_max]), lateral offset ramping smoothly to `lateral` [m] (left +) by t = 3 s. Returns the dense
    poses `[D, 3]` at t = 0.1·(1..D) s (the plan is `dense[4::5]`)."""
    line = route.double()
    seg = line[1:] - line[:-1]
    cum = torch.cat([torch.zeros(1, dtype=line.dtype), seg.norm(dim=-1).cumsum(0)])
    s0, _ = project_on_polyline(torch.zeros(1, 2, dtype=line.dtype), line)
    t = torch.arange(1, HORIZON_STEPS * DENSE_PER_STEP + 1, dtype=torch.float64) * DENSE_DT
    a = accel * (t / 0.5).clamp(max=1.0)  # jerk-limited onset
    v = (speed0 + torch.cumsum(a * DENSE_DT, 0)).clamp(0.0, max(v_max, speed0))
    s = float(s0.reshape(-1)[0]) + torch.cumsum(v * DENSE_DT, 0)
    u = (t / HORIZON_SECONDS).clamp(max=1.0)
    d = lateral * u**3 * (10.0 - 15.0 * u + 6.0 * u**2)  # quintic: no jump in lateral acceleration

    def centre(q: Tensor) -> Tensor:
        q = q.clamp(0.0, float(cum[-1]))
        i = torch.searchsorted(cum, q).clamp(1, len(cum) - 1)
        frac = ((q - cum[i - 1]) / (cum[i] - cum[i - 1]).clamp(min=1e-9)).clamp(0.0, 1.0)
        return line[i - 1] + frac[:, None] * seg[i - 1]

    tangent = centre(s + 1.0) - centre(s - 1.0)  # smooth tangent (no jumps at polyline vertices)
    tangent = tangent / tangent.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    normal = torch.stack([-tangent[:, 1], tangent[:, 0]], -1)
    xy = centre(s) + d[:, None] * normal
    pts = torch.cat([torch.zeros(1, 2, dtype=xy.dtype), xy])
    step = pts[1:] - pts[:-1]
    heading = torch.atan2(tangent[:, 1], tangent[:, 0])
    yaw = torch.where(step.norm(dim=-1) > 0.05, torch.atan2(step[:, 1], step[:, 0]), heading)
    return torch.cat([xy, yaw[:, None]], -1).float()


def intercept(xy: Tensor, velocity: Tensor, v0: float) -> tuple[float, float] | None:
    """(acceleration, final lateral offset) of a route-following plan whose box centre meets a road user
    (ego-frame position `xy [2]`, velocity `[2]`, constant-velocity) at the earliest t ∈ {1, 1.5, …, 3} s
    that needs an acceleration in [-3, 4] m/s² and a lateral offset within 8 m; None if unreachable."""
    for t_hit in (1.0, 1.5, 2.0, 2.5, 3.0):
        target = xy + t_hit * velocity
        reach = float(target[0]) - EGO.rear_axle_to_center  # the box centre meets it, not the rear axle
        te = t_hit - 0.25  # the acceleration ramps up over 0.5 s
        accel = 2.0 * (reach - v0 * t_hit) / max(te, 0.5) ** 2
        u = t_hit / HORIZON_SECONDS
        lateral = float(target[1]) / (u**3 * (10.0 - 15.0 * u + 6.0 * u**2))
        if reach > 0.0 and -3.0 <= accel <= 4.0 and abs(lateral) <= 8.0:
            return accel, lateral
    return None


def build_candidates(
    obs: Observation, privileged: PrivilegedState, num_plans: int, unsafe_fraction: float, rng: np.random.Generator
) -> Candidates:
    """`num_plans` plans: the planner's proposals (stop first) plus plans that are unsafe on purpose,
    built from the scene (see the module docstring)."""
    route = valid_route_points(obs.route, obs.route_valid, 0)
    v0 = float(obs.speed[0])
    cruise = max(v0, 8.0)
    plan = lambda accel, v_max, lateral: route_following_plan(route, v0, accel, v_max, lateral)  # noqa: E731
    unsafe: list[tuple[str, Tensor]] = []
    a = privileged.agents
    ok = a.valid[0] & (a.xy[0, :, 0] > 3.0) & (a.xy[0, :, 0] < 45.0) & (a.xy[0, :, 1].abs() < 12.0)
    dist = torch.where(ok, a.xy[0].norm(dim=-1), torch.full_like(a.xy[0, :, 0], math.inf))
    found = 0
    for j in dist.argsort()[: int(ok.sum())][:6].tolist():  # the nearest road users ahead we can reach: hit them
        hit = intercept(a.xy[0, j], a.velocity[0, j], v0)
        if hit is None:
            continue
        kind = "into_lead" if abs(float(a.xy[0, j, 1])) < 1.5 else "toward_agent"
        unsafe.append((kind, plan(hit[0], 16.0, hit[1])))
        found += 1
        if found == 2:
            break
    if float(privileged.light_distance[0]) < 40.0 and int(privileged.light_state[0]) == LightState.RED:
        unsafe.append(("run_red_light", plan(2.0, cruise, 0.0)))
    unsafe += [
        ("no_brake", plan(0.0, max(v0, 3.0), 0.0)),
        ("swerve_left", plan(0.0, cruise, 3.5)),
        ("swerve_right", plan(0.0, cruise, -3.5)),
        ("accelerate", plan(3.0, 14.0, 0.0)),
        ("swerve_left_far", plan(1.0, cruise, 7.0)),
        ("swerve_right_far", plan(1.0, cruise, -7.0)),
    ]
    n_unsafe = min(len(unsafe), max(1, round(unsafe_fraction * num_plans)))
    unsafe = unsafe[:n_unsafe]
    n_prop = num_plans - n_unsafe
    pcfg = ProposalConfig(lateral_offsets=(-1.5, -0.75, 0.0, 0.75, 1.5), speed_fractions=(0.25, 0.5, 0.75, 1.0, 1.25))
    props = generate_proposals(obs.route, obs.route_valid, obs.speed, pcfg)
    m = props.num_plans
    if n_prop >= m:
        idx = np.concatenate([np.arange(m), rng.integers(1, m, n_prop - m)]) if n_prop > m else np.arange(m)
    else:  # the stop plan plus an even spread of the lattice
        idx = np.concatenate([[0], np.linspace(1, m - 1, n_prop - 1).round().astype(int)])
    idx_t = torch.as_tensor(idx, dtype=torch.int64)
    u_dense = torch.stack([d for _, d in unsafe])[None]  # [1, U, D, 3]
    dense = torch.cat([props.dense[:, idx_t], u_dense], 1)
    plans = torch.cat([props.plans[:, idx_t], u_dense[:, :, DENSE_PER_STEP - 1 :: DENSE_PER_STEP]], 1)
    source = torch.cat(
        [props.source[0, idx_t], torch.full((n_unsafe,), int(ProposalSource.LATTICE), dtype=torch.int64)]
    )[None]
    feasible = torch.cat([props.feasible[:, idx_t], feasibility(u_dense, obs.speed, ProposalConfig())], 1)
    proposals = Proposals(plans=plans, dense=dense, speed0=obs.speed.clone(), source=source, feasible=feasible)
    kinds = ["stop" if int(props.source[0, i]) == int(ProposalSource.STOP) else "lattice" for i in idx]
    kinds += [k for k, _ in unsafe]
    flags = np.array([False] * n_prop + [True] * n_unsafe)
    return Candidates(proposals, kinds, flags)


__all__ = ["Candidates", "build_candidates", "intercept", "route_following_plan"]
