"""Candidate ego plans: a route-following lattice in the style of PDM-Closed (lateral offsets ×
target-speed fractions with IDM-shaped speed profiles), learned plans from a model's ego head,
perturbations of the previous plan, and always a comfortable stop.

Every proposal carries dense rear-axle poses at 0.1 s (what the scorer sweeps the ego box along)
and the coarse plan `[N, T, 3]` at t = 0.5·(1..T) s that a world model is conditioned on. A
kinematic feasibility filter (curvature, acceleration, jerk) marks plans a car cannot drive;
infeasible plans stay in the tensor (batching) and fail the scorer's feasibility gate.

Ordering: the comfortable stop is proposal 0 of every scene, then lattice, learned, previous.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import torch
from torch import Tensor

from agents.se2 import se2_compose, wrap_angle
from agents.trajectory import interpolate_trajectory
from planner.contracts import HORIZON_STEPS, STEP_SECONDS
from planner.kinematics import dense_kinematics

DENSE_DT = 0.1
"""Dense pose step [s] for scoring."""
DENSE_PER_STEP = round(STEP_SECONDS / DENSE_DT)
EGO_HEAD_KEY = "ego_plans"
"""`SceneState.extras` key of a model's ego-head plans `[B, M, T, 3]` (learned proposals)."""


class ProposalSource(IntEnum):
    """Where a proposal came from (`Proposals.source`)."""

    STOP = 0
    LATTICE = 1
    LEARNED = 2
    PREVIOUS = 3
    EMERGENCY = 4


@dataclass(frozen=True)
class ProposalConfig:
    """Proposal generation and feasibility limits.

    Attributes:
        lateral_offsets: lattice offsets from the route centreline, left positive [m].
        speed_fractions: lattice target speeds as fractions of `target_speed` (> 0; the stop is added separately).
        target_speed: cruise speed of the lattice [m/s] (the route's limit when known).
        max_accel: IDM maximum acceleration a [m/s²].
        comfortable_decel: IDM comfortable deceleration b, also the stop's deceleration [m/s²].
        soft_stop_speed: below this speed the stop's deceleration fades linearly (smooth stop) [m/s].
        profile_jerk: jerk limit of the generated speed profiles [m/s³].
        blend_time: the lattice reaches its offset within max(blend_min, speed·blend_time) metres [s].
        blend_min: minimum blend length [m].
        path_step: arc-length resolution of lattice paths [m].
        num_previous: perturbations of the previous plan (plus the unperturbed one).
        previous_sigma_lateral: std of the lateral perturbation at the horizon [m].
        previous_sigma_longitudinal: std of the longitudinal perturbation at the horizon [m].
        max_curvature: feasibility limit |κ| [1/m] (checked where |speed| ≥ `curvature_min_speed`).
        curvature_min_speed: [m/s].
        max_feasible_accel: [m/s²].
        max_feasible_decel: [m/s²] (positive).
        max_feasible_jerk: [m/s³].
    """

    lateral_offsets: tuple[float, ...] = (-1.0, 0.0, 1.0)
    speed_fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    target_speed: float = 8.0
    max_accel: float = 1.5
    comfortable_decel: float = 3.0
    soft_stop_speed: float = 1.5
    profile_jerk: float = 4.0
    blend_time: float = 2.0
    blend_min: float = 8.0
    path_step: float = 0.25
    num_previous: int = 4
    previous_sigma_lateral: float = 0.4
    previous_sigma_longitudinal: float = 1.0
    max_curvature: float = 0.3
    curvature_min_speed: float = 1.0
    max_feasible_accel: float = 4.0
    max_feasible_decel: float = 8.5
    max_feasible_jerk: float = 12.0


@dataclass(frozen=True)
class Proposals:
    """N candidate plans per scene.

    Attributes:
        plans: `[B, N, T, 3]` rear-axle (x, y, yaw) at t = 0.5·(1..T) s, ego frame.
        dense: `[B, N, D, 3]` the same trajectories at t = 0.1·(1..D) s, D = 5·T.
        speed0: `[B]` ego speed at t = 0 [m/s].
        source: `[B, N]` int64 `ProposalSource`.
        feasible: `[B, N]` bool, passes the kinematic limits.
    """

    plans: Tensor
    dense: Tensor
    speed0: Tensor
    source: Tensor
    feasible: Tensor

    @property
    def num_plans(self) -> int:
        return int(self.plans.shape[1])

    def stop_index(self) -> Tensor:
        """`[B]` int64 index of the comfortable stop (always 0)."""
        return torch.zeros(self.plans.shape[0], dtype=torch.int64, device=self.plans.device)


def _check(name: str, t: object, dims: int, last: int | None = None) -> Tensor:
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != dims or (last is not None and t.shape[-1] != last):
        raise ValueError(
            f"{name} has shape {list(t.shape)}, expected {dims} dims" + (f" ending in {last}" if last else "")
        )
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return t


# ----------------------------------------------------------------------------------------------- speed profiles


def speed_profiles(speed0: Tensor, target: Tensor, cfg: ProposalConfig, steps: int) -> tuple[Tensor, Tensor]:
    """IDM-shaped longitudinal profiles, integrated at `DENSE_DT` with piecewise-constant, jerk-limited
    acceleration.

    The commanded acceleration is the IDM free-road term a·(1 - (v/v0)⁴), bounded below by -b; a
    target of 0 is a comfortable stop: -b·min(1, v / soft_stop_speed).

    Args:
        speed0: `[B]` initial speed [m/s] (≥ 0).
        target: `[B, P]` target speeds [m/s] (0 = stop).
        cfg: limits.
        steps: number of dense steps D.

    Returns:
        (`s [B, P, D]` distance travelled at t = dt·(1..D) [m], `v [B, P, D]` speed at those times).
    """
    dt = DENSE_DT
    v = speed0[:, None].expand_as(target).clone()
    a = torch.zeros_like(v)
    s = torch.zeros_like(v)
    s_out, v_out = [], []
    stop = target <= 1e-6
    v0 = target.clamp_min(1e-6)
    for _ in range(steps):
        free = cfg.max_accel * (1.0 - (v / v0) ** 4)
        cmd_go = free.clamp_min(-cfg.comfortable_decel)
        cmd_stop = -cfg.comfortable_decel * (v / cfg.soft_stop_speed).clamp(max=1.0)
        cmd = torch.where(stop, cmd_stop, cmd_go)
        a = a + (cmd - a).clamp(-cfg.profile_jerk * dt, cfg.profile_jerk * dt)
        # never reverse: the step ends at v = 0 at the latest
        a = torch.maximum(a, -v / dt)
        s = s + v * dt + 0.5 * a * dt * dt
        v = v + a * dt
        s_out.append(s)
        v_out.append(v)
    return torch.stack(s_out, -1), torch.stack(v_out, -1)


# ----------------------------------------------------------------------------------------------- paths


def _resample_polyline(points: Tensor, s_query: Tensor) -> Tensor:
    """Points `[R, 2]` → positions at arc lengths `s_query [S]` (linear; extrapolated past both ends)."""
    seg = points[1:] - points[:-1]
    seg_len = seg.norm(dim=-1)
    keep = torch.cat([torch.ones(1, dtype=torch.bool, device=points.device), seg_len > 1e-6])
    points = points[keep]
    if points.shape[0] < 2:
        raise ValueError("route needs at least two distinct valid points")
    seg = points[1:] - points[:-1]
    seg_len = seg.norm(dim=-1)
    cum = torch.cat([seg_len.new_zeros(1), seg_len.cumsum(0)])
    idx = (torch.searchsorted(cum, s_query.contiguous(), right=True) - 1).clamp(0, seg.shape[0] - 1)
    u = (s_query - cum[idx]) / seg_len[idx]
    return points[idx] + u[:, None] * seg[idx]


def project_on_polyline(points: Tensor, line: Tensor) -> tuple[Tensor, Tensor]:
    """Arc length and signed lateral offset (left positive) of points on a polyline.

    For an un-batched line (`[R, 2]`) only the segments that can hold a nearest point are tested:
    every point lies within M of a vertex (M = the largest point-to-nearest-vertex distance), so a
    segment whose bounding box misses the points' bounding box grown by M is never the nearest.

    Args:
        points: `[..., P, 2]`.
        line: `[..., R, 2]` polyline (R ≥ 2; zero-length segments allowed), leading dims broadcast.

    Returns:
        (`s [..., P]`, `lateral [..., P]`) of the nearest point on the polyline (first segment on ties).
    """
    a = line[..., :-1, :]  # [..., R-1, 2]
    e = line[..., 1:, :] - a
    ee = (e * e).sum(-1)  # [..., R-1]
    seg_len = ee.sqrt()
    cum = torch.cat([torch.zeros_like(seg_len[..., :1]), seg_len.cumsum(-1)[..., :-1]], dim=-1)
    if line.dim() == 2 and points.dim() == 2 and points.shape[0] > 0 and line.shape[0] > 8:
        m = torch.cdist(points, line).amin(-1).max() * 1.001 + 1e-3
        lo, hi = points.amin(0) - m, points.amax(0) + m
        seg_lo, seg_hi = torch.minimum(a, a + e), torch.maximum(a, a + e)
        keep = ((seg_hi >= lo) & (seg_lo <= hi)).all(-1)
        a, e, ee, seg_len, cum = a[keep], e[keep], ee[keep], seg_len[keep], cum[keep]
    px, py = points[..., :, None, 0], points[..., :, None, 1]  # [..., P, 1]
    dx = px - a[..., None, :, 0]  # [..., P, R-1]
    dy = py - a[..., None, :, 1]
    ex, ey = e[..., None, :, 0], e[..., None, :, 1]
    u = ((dx * ex + dy * ey) / ee.clamp_min(1e-12)[..., None, :]).clamp(0.0, 1.0)
    rx, ry = dx - u * ex, dy - u * ey
    dist2 = rx * rx + ry * ry
    j = dist2.argmin(-1, keepdim=True)  # [..., P, 1]
    pick = lambda t: t.gather(-1, j).squeeze(-1)  # noqa: E731
    s = pick(cum[..., None, :].expand_as(dist2)) + pick(u) * pick(seg_len[..., None, :].expand_as(dist2))
    cross = pick(ex.expand_as(dist2)) * pick(dy) - pick(ey.expand_as(dist2)) * pick(dx)
    lateral = torch.sign(cross) * pick(dist2).sqrt()
    return s, lateral


def valid_route(route: Tensor, route_valid: Tensor, b: int) -> Tensor:
    """The valid points `[R', 2]` of scene b's route; `ValueError` if fewer than two."""
    pts = route[b][route_valid[b]]
    if pts.shape[0] < 2:
        raise ValueError(f"route of scene {b} has {pts.shape[0]} valid points; at least 2 are needed")
    return pts


def lattice_paths(route_pts: Tensor, offsets: Tensor, length: float, speed0: float, cfg: ProposalConfig):
    """Paths that leave the ego pose heading straight and blend (smoothstep) onto the route shifted
    laterally by each offset.

    Args:
        route_pts: `[R, 2]` route polyline in the ego frame.
        offsets: `[L]` lateral offsets [m].
        length: path length to build [m].
        speed0: ego speed (sets the blend length) [m/s].

    Returns:
        (`xy [L, S, 2]`, `yaw [L, S]` unwrapped, `arc [L, S]` true arc length from the ego) at S samples.
    """
    ds = cfg.path_step
    n = int(length / ds) + 2
    u = torch.arange(n, dtype=route_pts.dtype, device=route_pts.device) * ds  # [S]
    s0, _ = project_on_polyline(route_pts.new_zeros(1, 2), route_pts)
    centre = _resample_polyline(route_pts, s0 + u)  # [S, 2]
    ahead = _resample_polyline(route_pts, s0 + u + 1.0)
    behind = _resample_polyline(route_pts, s0 + u - 1.0)
    tangent = ahead - behind
    tangent = tangent / tangent.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    normal = torch.stack([-tangent[:, 1], tangent[:, 0]], -1)
    target = centre[None] + offsets[:, None, None] * normal[None]  # [L, S, 2]
    blend = max(cfg.blend_min, speed0 * cfg.blend_time)
    w = (u / blend).clamp(0.0, 1.0)
    beta = (w * w * (3.0 - 2.0 * w))[None, :, None]
    straight = torch.stack([u, torch.zeros_like(u)], -1)[None]
    xy = (1.0 - beta) * straight + beta * target  # [L, S, 2]
    d = xy[:, 1:] - xy[:, :-1]
    arc = torch.cat([xy.new_zeros(xy.shape[0], 1), d.norm(dim=-1).cumsum(-1)], dim=-1)
    grad = torch.cat([d[:, :1], 0.5 * (d[:, 1:] + d[:, :-1]), d[:, -1:]], dim=1)
    yaw = torch.atan2(grad[..., 1], grad[..., 0])
    yaw = torch.cat([yaw[:, :1], yaw[:, :1] + wrap_angle(yaw[:, 1:] - yaw[:, :-1]).cumsum(-1)], dim=-1)
    yaw = yaw - yaw[:, :1]  # the ego heads along x at t = 0
    return xy, yaw, arc


def _interp_along(values: Tensor, arc: Tensor, s: Tensor) -> Tensor:
    """Interpolate `values [L, S, C]` sampled at increasing `arc [L, S]` at `s [L, P, D]` → `[L, P, D, C]`."""
    L, P, D = s.shape
    q = s.reshape(L, P * D).contiguous()
    idx = (torch.searchsorted(arc.contiguous(), q, right=True) - 1).clamp(0, arc.shape[1] - 2)
    a0, a1 = arc.gather(1, idx), arc.gather(1, idx + 1)
    u = ((q - a0) / (a1 - a0).clamp_min(1e-9)).clamp(0.0, 1.0)[..., None]
    c = values.shape[-1]
    v0 = values.gather(1, idx[..., None].expand(L, P * D, c))
    v1 = values.gather(1, (idx + 1)[..., None].expand(L, P * D, c))
    return (v0 + u * (v1 - v0)).reshape(L, P, D, c)


def lattice_proposals(
    route: Tensor, route_valid: Tensor, speed0: Tensor, cfg: ProposalConfig, steps: int = HORIZON_STEPS
) -> tuple[Tensor, Tensor]:
    """The comfortable stop (on the route centreline) followed by the lattice offsets × speed fractions.

    Args:
        route: `[B, R, 2]` route in the ego frame; route_valid `[B, R]` bool.
        speed0: `[B]` ego speed [m/s].

    Returns:
        (`dense [B, 1 + L·F, D, 3]`, `source [B, 1 + L·F]`), D = 5·steps.
    """
    d_steps = steps * DENSE_PER_STEP
    fractions = torch.tensor(cfg.speed_fractions, dtype=torch.float32, device=route.device)
    offsets = torch.tensor(cfg.lateral_offsets, dtype=torch.float32, device=route.device)
    if (fractions <= 0).any():
        raise ValueError("ProposalConfig.speed_fractions must be positive (the stop is always added)")
    targets = torch.cat([fractions.new_zeros(1), fractions * cfg.target_speed])  # [1 + F]
    s_all, _ = speed_profiles(speed0, targets[None].expand(speed0.shape[0], -1), cfg, d_steps)  # [B, 1+F, D]
    out = []
    for b in range(route.shape[0]):
        pts = valid_route(route, route_valid, b)
        length = float(s_all[b].max()) + 2.0
        offs = torch.cat([offsets.new_zeros(1), offsets])  # stop path: offset 0
        xy, yaw, arc = lattice_paths(pts, offs, length, float(speed0[b]), cfg)
        values = torch.cat([xy, yaw[..., None]], -1)  # [1+L, S, 3]
        stop = _interp_along(values[:1], arc[:1], s_all[b, :1][None])[0]  # [1, D, 3]
        s_go = s_all[b, 1:][None].expand(len(offsets), -1, -1)  # [L, F, D]
        go = _interp_along(values[1:], arc[1:], s_go).reshape(-1, d_steps, 3)  # [L·F, D, 3]
        out.append(torch.cat([stop, go], 0))
    dense = torch.stack(out, 0)
    dense[..., 2] = wrap_angle(dense[..., 2])
    source = torch.full(dense.shape[:2], int(ProposalSource.LATTICE), dtype=torch.int64, device=route.device)
    source[:, 0] = int(ProposalSource.STOP)
    return dense, source


def emergency_brake(speed0: Tensor, decel: float = 8.0, steps: int = HORIZON_STEPS) -> Tensor:
    """Straight-line emergency brake at constant `decel` [m/s²]: dense poses `[B, D, 3]`."""
    t = torch.arange(1, steps * DENSE_PER_STEP + 1, dtype=torch.float32, device=speed0.device) * DENSE_DT
    t_stop = (speed0 / decel)[:, None]
    tt = torch.minimum(t[None], t_stop)
    x = speed0[:, None] * tt - 0.5 * decel * tt * tt
    return torch.stack([x, torch.zeros_like(x), torch.zeros_like(x)], -1)


# ----------------------------------------------------------------------------------------------- coarse ↔ dense


def coarse_from_dense(dense: Tensor) -> Tensor:
    """`[..., D, 3]` at 0.1 s → `[..., T, 3]` at 0.5 s (every fifth pose)."""
    return dense[..., DENSE_PER_STEP - 1 :: DENSE_PER_STEP, :]


def densify(plans: Tensor, speed0: Tensor) -> Tensor:
    """Cubic Hermite interpolation of coarse plans to `DENSE_DT`, starting at the origin with speed `speed0`.

    Positions use finite-difference tangents (the initial tangent is (speed0, 0)); yaw is interpolated
    linearly along the unwrapped sequence. The coarse poses are reproduced exactly.

    Args:
        plans: `[B, M, T, 3]`.
        speed0: `[B]`.

    Returns:
        `[B, M, 5·T, 3]`.
    """
    b, m, t, _ = plans.shape
    h = STEP_SECONDS
    origin = plans.new_zeros(b, m, 1, 3)
    p = torch.cat([origin, plans], dim=2)  # [B, M, T+1, 3]
    xy = p[..., :2]
    tan = torch.empty_like(xy)
    tan[:, :, 0] = torch.stack([speed0, torch.zeros_like(speed0)], -1)[:, None]
    tan[:, :, 1:-1] = (xy[:, :, 2:] - xy[:, :, :-2]) / (2 * h)
    tan[:, :, -1] = (xy[:, :, -1] - xy[:, :, -2]) / h
    yaw = torch.cat([p[..., :1, 2], p[..., :1, 2] + wrap_angle(p[..., 1:, 2] - p[..., :-1, 2]).cumsum(-1)], -1)
    u = torch.arange(1, DENSE_PER_STEP + 1, dtype=plans.dtype, device=plans.device) / DENSE_PER_STEP  # (0, 1]
    h00 = 2 * u**3 - 3 * u**2 + 1
    h10 = u**3 - 2 * u**2 + u
    h01 = -2 * u**3 + 3 * u**2
    h11 = u**3 - u**2
    p0, p1 = xy[:, :, :-1, None], xy[:, :, 1:, None]  # [B, M, T, 1, 2]
    m0, m1 = tan[:, :, :-1, None] * h, tan[:, :, 1:, None] * h
    pos = h00[:, None] * p0 + h10[:, None] * m0 + h01[:, None] * p1 + h11[:, None] * m1  # [B, M, T, 5, 2]
    y = yaw[..., :-1, None] + u * (yaw[..., 1:, None] - yaw[..., :-1, None])  # [B, M, T, 5]
    dense = torch.cat([pos, y[..., None]], -1).reshape(b, m, t * DENSE_PER_STEP, 3)
    dense[..., 2] = wrap_angle(dense[..., 2])
    return dense


# ----------------------------------------------------------------------------------------------- previous plan


def previous_plan_proposals(
    prev_plan: Tensor,
    prev_pose_in_current: Tensor,
    elapsed: float | Tensor,
    cfg: ProposalConfig,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The previous plan shifted to now and expressed in the current ego frame, plus perturbations.

    Args:
        prev_plan: `[B, T, 3]` the plan chosen at the previous replan, in that replan's ego frame.
        prev_pose_in_current: `[B, 3]` the previous ego pose expressed in the current ego frame.
        elapsed: time since the previous replan [s] (> 0), a float or `[B]`.
        cfg: `num_previous` and the perturbation scales.
        generator: for the perturbations.

    Returns:
        `[B, 1 + num_previous, T, 3]` coarse plans (the first unperturbed); past the old horizon the
        plan is extrapolated along its last segment.
    """
    _check("prev_plan", prev_plan, 3, 3)
    _check("prev_pose_in_current", prev_pose_in_current, 2, 3)
    b, t, _ = prev_plan.shape
    el = torch.as_tensor(elapsed, dtype=prev_plan.dtype, device=prev_plan.device).expand(b)
    if not bool((el > 0).all()) or not bool(torch.isfinite(el).all()):
        raise ValueError(f"elapsed must be positive and finite, got {el.tolist()}")
    p = torch.cat([prev_plan.new_zeros(b, 1, 3), prev_plan], 1)  # poses at 0, 0.5, …, T·0.5 in the old frame
    times = torch.arange(t + 1, dtype=torch.float64, device=prev_plan.device) * STEP_SECONDS
    query = times[None, 1:] + el[:, None].double()  # [B, T]
    shifted, _ = interpolate_trajectory(p, times, query, extrapolate=True)  # past the horizon: last segment
    cur = se2_compose(prev_pose_in_current[:, None], shifted)  # [B, T, 3]
    k = cfg.num_previous
    noise = torch.randn(b, k, 2, generator=generator, dtype=prev_plan.dtype).to(prev_plan.device)
    ramp = (torch.arange(1, t + 1, dtype=prev_plan.dtype, device=prev_plan.device) / t)[None, None, :]
    d_lon = noise[..., 0:1] * cfg.previous_sigma_longitudinal * ramp  # [B, K, T]
    d_lat = noise[..., 1:2] * cfg.previous_sigma_lateral * ramp
    yaw = cur[:, None, :, 2]
    c, s = torch.cos(yaw), torch.sin(yaw)
    pert = cur[:, None].repeat(1, k, 1, 1)
    pert[..., 0] = pert[..., 0] + c * d_lon - s * d_lat
    pert[..., 1] = pert[..., 1] + s * d_lon + c * d_lat
    return torch.cat([cur[:, None], pert], 1)


# ----------------------------------------------------------------------------------------------- feasibility


def feasibility(dense: Tensor, speed0: Tensor, cfg: ProposalConfig) -> Tensor:
    """`[B, N]` bool: finite and within the curvature, acceleration and jerk limits.

    Args:
        dense: `[B, N, D, 3]` dense poses; speed0 `[B]`.
    """
    finite = torch.isfinite(dense).flatten(2).all(-1)
    k = dense_kinematics(torch.nan_to_num(dense), speed0[:, None], DENSE_DT)
    fast = k.speed.abs() >= cfg.curvature_min_speed
    ok = ((k.curvature.abs() <= cfg.max_curvature) | ~fast).all(-1)
    ok &= (k.accel <= cfg.max_feasible_accel + 1e-4).all(-1) & (k.accel >= -cfg.max_feasible_decel - 1e-4).all(-1)
    ok &= (k.jerk.abs() <= cfg.max_feasible_jerk + 1e-3).all(-1)
    return finite & ok


def generate_proposals(
    route: Tensor,
    route_valid: Tensor,
    speed0: Tensor,
    cfg: ProposalConfig | None = None,
    learned: Tensor | None = None,
    previous: Tensor | None = None,
) -> Proposals:
    """All proposals of a replan step: stop, lattice, learned (optional), previous (optional).

    Args:
        route: `[B, R, 2]` ego-frame route; route_valid `[B, R]` bool.
        speed0: `[B]` ego speed [m/s] (negative values are treated as 0).
        cfg: generation settings (default `ProposalConfig()`).
        learned: optional `[B, M, T, 3]` plans from a model's ego head.
        previous: optional `[B, K, T, 3]` previous-plan proposals (`previous_plan_proposals`).

    Returns:
        `Proposals` with N = 1 + L·F (+ M) (+ K).
    """
    cfg = cfg or ProposalConfig()
    _check("route", route, 3, 2)
    _check("route_valid", route_valid, 2)
    _check("speed", speed0, 1)
    b = route.shape[0]
    if route_valid.shape != route.shape[:2] or route_valid.dtype != torch.bool:
        raise ValueError(
            f"route_valid must be bool {list(route.shape[:2])}, got {route_valid.dtype} {list(route_valid.shape)}"
        )
    if speed0.shape[0] != b:
        raise ValueError(f"speed has batch {speed0.shape[0]}, route has {b}")
    v0 = speed0.float().clamp_min(0.0)
    dense, source = lattice_proposals(route.float(), route_valid, v0, cfg)
    parts, sources = [dense], [source]
    t = dense.shape[2] // DENSE_PER_STEP
    for name, extra, kind in (
        ("learned", learned, ProposalSource.LEARNED),
        ("previous", previous, ProposalSource.PREVIOUS),
    ):
        if extra is None:
            continue
        _check(name, extra, 4, 3)
        if extra.shape[0] != b or extra.shape[2] != t:
            raise ValueError(f"{name} has shape {list(extra.shape)}, expected [{b}, M, {t}, 3]")
        parts.append(densify(extra.float(), v0))
        sources.append(torch.full(extra.shape[:2], int(kind), dtype=torch.int64, device=route.device))
    dense = torch.cat(parts, 1)
    source = torch.cat(sources, 1)
    feasible = feasibility(dense, v0, cfg)
    return Proposals(coarse_from_dense(dense), dense, v0, source, feasible)
