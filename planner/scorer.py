"""The vectorized plan scorer: all N plans of all B scenes in one tensor pass (PDM-Closed style).

score = ∏ hard gates × weighted mean of soft terms, with rows indexed by `Gate` and `Soft`.

Hard gates (1 = pass), checked at every dense step (0.1 s) of each plan:
- `FEASIBLE`: the proposal's kinematic feasibility flag.
- `NO_COLLISION`: the ego box (`agents.EGO`, rear-axle offset, the plan's yaw) never overlaps a BEV
  cell whose predicted obstacle probability is ≥ `obstacle_threshold` (a dense step between two
  predicted frames sees both frames), and for no agent does the probability-weighted share of its
  modes hit so far reach `agent_threshold` (agent poses interpolated linearly in time between
  predicted frames, extrapolated before the first).
- `DRIVABLE`: every ego-box corner inside the grid lies in cells with drivable probability ≥
  `drivable_threshold` (cells are closed: a corner on a cell edge touches both cells; corners
  outside the grid are not judged).
- `NO_RED_LIGHT`: if P(red) ≥ `red_threshold` and the stop line lies ahead of the front bumper, the
  front bumper's route progress (rear-axle projection on the route + front overhang) stays ≤ the
  line's distance (`Prediction.light_distance`, measured along the route from the ego origin).

Soft terms in [0, 1]: progress along the route (relative to the best gate-passing plan), time to
collision (the ego box pushed ahead by speed × τ at each predicted frame stays clear), comfort
(share of PDM comfort limits met), lane centring (mean lateral distance to the route).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import torch
from torch import Tensor

from agents import EGO
from agents.boxes import box_corners, boxes_overlap_paired, ego_boxes
from agents.trajectory import interpolate_trajectory
from planner.contracts import LightState, Prediction, valid_route_points, validate_plans
from planner.kinematics import dense_kinematics
from planner.proposals import Proposals, project_on_polyline
from planner.timebase import DENSE_DT, DENSE_PER_STEP, STEP_SECONDS


class Gate(IntEnum):
    """Rows of `ScoreResult.gates`."""

    FEASIBLE = 0
    NO_COLLISION = 1
    DRIVABLE = 2
    NO_RED_LIGHT = 3


class Soft(IntEnum):
    """Rows of `ScoreResult.soft`."""

    PROGRESS = 0
    TTC = 1
    COMFORT = 2
    LANE_CENTRING = 3


class LossReason(IntEnum):
    """Why a plan was not chosen (`SELECTED` for the winner)."""

    SELECTED = 0
    NON_FINITE = 1
    INFEASIBLE = 2
    COLLISION = 3
    OFF_ROAD = 4
    RED_LIGHT = 5
    LOWER_SCORE = 6


GATE_REASON = {
    Gate.FEASIBLE: LossReason.INFEASIBLE,
    Gate.NO_COLLISION: LossReason.COLLISION,
    Gate.DRIVABLE: LossReason.OFF_ROAD,
    Gate.NO_RED_LIGHT: LossReason.RED_LIGHT,
}


@dataclass(frozen=True)
class ScorerConfig:
    """Thresholds and weights.

    Attributes:
        obstacle_threshold: BEV obstacle probability at which a cell blocks the ego.
        agent_threshold: expected collision probability with one agent (mode-weighted) that fails.
        drivable_threshold: drivable probability a corner's cell needs.
        red_threshold: P(red) at which the red-light gate applies.
        ttc_horizons: look-ahead times of the TTC term [s].
        weights: (progress, ttc, comfort, lane centring), indexed by `Soft`.
        min_progress: if the best gate-passing plan progresses less than this, progress scores 1 [m].
        centring_scale: mean lateral distance scoring 0 [m].
        max_lon_accel, max_lon_decel [m/s²], max_lon_jerk [m/s³], max_lat_accel [m/s²],
        max_yaw_rate [rad/s], max_yaw_accel [rad/s²]: comfort limits (nuPlan's).
    """

    obstacle_threshold: float = 0.5
    agent_threshold: float = 0.3
    drivable_threshold: float = 0.5
    red_threshold: float = 0.5
    ttc_horizons: tuple[float, ...] = (0.5, 1.0)
    weights: tuple[float, float, float, float] = (5.0, 5.0, 2.0, 2.0)
    min_progress: float = 5.0
    centring_scale: float = 1.0
    max_lon_accel: float = 2.40
    max_lon_decel: float = 4.05
    max_lon_jerk: float = 4.13
    max_lat_accel: float = 4.89
    max_yaw_rate: float = 0.95
    max_yaw_accel: float = 1.93


@dataclass(frozen=True)
class ScoreResult:
    """Scores of N plans in B scenes.

    Attributes:
        gates: `[B, len(Gate), N]` 0/1.
        soft: `[B, len(Soft), N]` in [0, 1].
        score: `[B, N]` gates product × weighted soft mean (0 for every plan of a non-finite scene).
        reason: `[B, N]` int64 `LossReason`.
        best: `[B]` int64 argmax of `score`.
        collision_time: `[B, N]` first dense time [s] at which the collision gate fails (inf if never).
        obstacle_risk: `[B, N]` max obstacle probability under the ego footprint over the horizon.
        agent_risk: `[B, N]` max over agents of the expected (mode-weighted) collision probability.
        progress: `[B, N]` route progress of the rear axle at the horizon [m].
        finite: `[B]` bool, the prediction was finite.
    """

    gates: Tensor
    soft: Tensor
    score: Tensor
    reason: Tensor
    best: Tensor
    collision_time: Tensor
    obstacle_risk: Tensor
    agent_risk: Tensor
    progress: Tensor
    finite: Tensor

    @property
    def passes(self) -> Tensor:
        """`[B, N]` bool: every hard gate passes."""
        return self.gates.prod(1) > 0


# ----------------------------------------------------------------------------------------------- geometry helpers


def frame_brackets(num_dense: int, num_frames: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Predicted frames (t = 0.5·(1..T)) bracketing each dense time t = 0.1·(1..D): `(lo [D], hi [D])`
    int64, equal on a frame time; times before the first frame map to frame 0."""
    ratio = DENSE_PER_STEP
    d = torch.arange(1, num_dense + 1, device=device)
    lo = (torch.div(d, ratio, rounding_mode="floor") - 1).clamp(0, num_frames - 1)
    hi = (torch.div(d + ratio - 1, ratio, rounding_mode="floor") - 1).clamp(0, num_frames - 1)
    return lo, hi


def interpolate_agents(trajs: Tensor, num_dense: int) -> Tensor:
    """Agent poses at the dense times (`agents.trajectory.interpolate_trajectory`): linear in time
    between predicted frames, extended along the first segment before the first frame; yaw along the
    wrapped difference.

    Args:
        trajs: `[..., T, 3]` (x, y, yaw) at t = 0.5·(1..T).

    Returns:
        `[..., D, 3]` at t = 0.1·(1..D).
    """
    t = trajs.shape[-2]
    times = STEP_SECONDS * torch.arange(1, t + 1, dtype=torch.float64, device=trajs.device)
    query = DENSE_DT * torch.arange(1, num_dense + 1, dtype=torch.float64, device=trajs.device)
    out, _ = interpolate_trajectory(trajs, times, query, extrapolate=True)
    return out


def footprint_max(
    prob: Tensor, grid_lower: tuple[float, float], voxel: tuple[float, float], boxes: Tensor, frames: list[Tensor]
) -> Tensor:
    """Max probability over the BEV cells each box overlaps (separating axis test of the oriented box
    against each axis-aligned cell square, touching counts), across the given frames.

    Args:
        prob: `[B, N', T, X, Y]` (N' = N or 1 broadcast).
        boxes: `[B, N, S, 5]` boxes at S steps.
        frames: list of `[S]` int64 frame indices per step (the maximum over all is taken).

    Returns:
        `[B, N, S]` max probability (0 where no cell of the grid is overlapped).
    """
    b, n, s, _ = boxes.shape
    nx, ny = prob.shape[-2:]
    vx, vy = voxel
    hx_c, hy_c = 0.5 * vx, 0.5 * vy
    c, sn = torch.cos(boxes[..., 2]), torch.sin(boxes[..., 2])
    ac, as_ = c.abs(), sn.abs()
    hl, hw = 0.5 * boxes[..., 3], 0.5 * boxes[..., 4]
    ext_x, ext_y = hl * ac + hw * as_, hl * as_ + hw * ac  # [B, N, S] half extents of the box's AABB
    # window of cells: from the cell holding the AABB's lower corner, as wide as the widest AABB
    # (ceil - 1 rather than floor: a cell whose edge touches the box exactly is included, touching overlaps)
    x0 = torch.ceil((boxes[..., 0] - ext_x - grid_lower[0]) / vx).long() - 1
    y0 = torch.ceil((boxes[..., 1] - ext_y - grid_lower[1]) / vy).long() - 1
    x1 = torch.floor((boxes[..., 0] + ext_x - grid_lower[0]) / vx).long()
    y1 = torch.floor((boxes[..., 1] + ext_y - grid_lower[1]) / vy).long()
    wx = int((x1 - x0).max()) + 1 if boxes.numel() else 1
    wy = int((y1 - y0).max()) + 1 if boxes.numel() else 1
    ox = torch.arange(wx, device=boxes.device)
    oy = torch.arange(wy, device=boxes.device)
    # cell-centre offsets from the box centre, separable: dx [B, N, S, wx, 1], dy [B, N, S, 1, wy]
    dx0 = grid_lower[0] + (x0.to(boxes.dtype) + 0.5) * vx - boxes[..., 0]
    dy0 = grid_lower[1] + (y0.to(boxes.dtype) + 0.5) * vy - boxes[..., 1]
    dx = (dx0[..., None] + ox.to(boxes.dtype) * vx)[..., :, None]
    dy = (dy0[..., None] + oy.to(boxes.dtype) * vy)[..., None, :]
    e = lambda t: t[..., None, None]  # noqa: E731  [B, N, S] -> [B, N, S, 1, 1]
    # the cell's axes and the grid bounds (separable), then the box's two axes
    in_x = (
        (dx.abs() <= e(ext_x + hx_c))
        & (x0[..., None, None] + ox[:, None] >= 0)
        & (x0[..., None, None] + ox[:, None] < nx)
    )
    in_y = (
        (dy.abs() <= e(ext_y + hy_c))
        & (y0[..., None, None] + oy[None, :] >= 0)
        & (y0[..., None, None] + oy[None, :] < ny)
    )
    hit = in_x & in_y  # [B, N, S, wx, wy]
    hit &= (dx * e(c) + dy * e(sn)).abs() <= e(hl + hx_c * ac + hy_c * as_)
    hit &= (dy * e(c) - dx * e(sn)).abs() <= e(hw + hx_c * as_ + hy_c * ac)
    # gather every window cell by its flat index into the contiguous probabilities; mask by `hit`
    n_prob = prob.shape[1]
    if n_prob == 1 and len(frames) > 1:  # plan-blind: merge the frames once per step, gather once
        merged = prob[:, 0, frames[0]]
        for fr in frames[1:]:
            merged = torch.maximum(merged, prob[:, 0, fr])  # [B, S, X, Y]
        prob, frames = merged[:, None], [torch.arange(s, device=boxes.device)]
    flat_prob = prob.contiguous().reshape(-1)
    t_prob = prob.shape[2]
    idx_t = torch.int32 if flat_prob.numel() < 2**31 else torch.int64
    bn = torch.arange(b, device=boxes.device)[:, None] * n_prob + (
        torch.arange(n, device=boxes.device)[None, :] if n_prob == n else 0
    )  # [B, N]
    cell0 = x0 * ny + y0  # [B, N, S] flat index of the window's first cell
    offs = (ox[:, None] * ny + oy[None, :]).to(idx_t)  # [wx, wy]
    best = torch.zeros(b, n, s, dtype=prob.dtype, device=boxes.device)
    for fr in frames:
        start = ((bn[..., None] * t_prob + fr) * (nx * ny) + cell0).to(idx_t)  # [B, N, S]
        idx = (start[..., None, None] + offs).clamp_(0, flat_prob.numel() - 1)  # [B, N, S, wx, wy]
        v = flat_prob[idx].mul_(hit).amax((-2, -1))
        best = torch.maximum(best, v)
    return best


def agent_overlaps(ego: Tensor, agent_boxes: Tensor, valid: Tensor) -> Tensor:
    """Overlap of ego boxes with agent boxes at the same steps.

    Args:
        ego: `[B, N, S, 5]`.
        agent_boxes: `[B, N', A, K, S, 5]` (N' = N or 1).
        valid: `[B, A]` bool.

    Returns:
        `[B, N, A, K, S]` bool.
    """
    b, n, s, _ = ego.shape
    a, k = agent_boxes.shape[2:4]
    out = torch.zeros(b, n, a, k, s, dtype=torch.bool, device=ego.device)
    if a == 0 or k == 0:
        return out
    e = ego[:, :, None, None]  # [B, N, 1, 1, S, 5]
    # circumscribed-circle pre-filter, then the exact SAT on the candidates only
    r_e = 0.5 * torch.hypot(e[..., 3], e[..., 4])
    r_a = 0.5 * torch.hypot(agent_boxes[..., 3], agent_boxes[..., 4])
    d2 = (e[..., 0] - agent_boxes[..., 0]) ** 2 + (e[..., 1] - agent_boxes[..., 1]) ** 2
    cand = (d2 <= (r_e + r_a) ** 2) & valid[:, None, :, None, None]  # [B, N, A, K, S]
    idx = cand.nonzero(as_tuple=True)
    if idx[0].numel():
        eb = ego[idx[0], idx[1], idx[4]]
        ab = agent_boxes[
            idx[0], idx[1] if agent_boxes.shape[1] == n else torch.zeros_like(idx[1]), idx[2], idx[3], idx[4]
        ]
        out[idx] = boxes_overlap_paired(eb, ab)
    return out


def _route_lines(route: Tensor, route_valid: Tensor) -> Tensor:
    """Compact each scene's valid route points and pad with the last one: `[B, R', 2]`."""
    lines = [valid_route_points(route, route_valid, b) for b in range(route.shape[0])]
    r = max(p.shape[0] for p in lines)
    return torch.stack([torch.cat([p, p[-1:].expand(r - p.shape[0], 2)]) for p in lines])


# ----------------------------------------------------------------------------------------------- the scorer


def _compact(t: Tensor) -> Tensor:
    """Undo broadcasting along the plan dim (dim 1): a stride-0 dim becomes size 1."""
    if t.dim() > 1 and t.shape[1] > 1 and t.stride(1) == 0:
        return t[:, :1]
    return t


def _validate(proposals: Proposals, prediction: Prediction, route: Tensor, route_valid: Tensor) -> None:
    validate_plans(proposals.plans)
    dense = proposals.dense
    b, n = proposals.plans.shape[:2]
    if not isinstance(dense, Tensor) or dense.dim() != 4 or dense.shape[:2] != (b, n) or dense.shape[-1] != 3:
        raise ValueError(f"Proposals.dense has shape {list(getattr(dense, 'shape', []))}, expected [{b}, {n}, D, 3]")
    if not bool(torch.isfinite(dense).all()):
        raise ValueError("Proposals.dense contains NaN or inf")
    prediction.validate(finite=False)
    pb, pn, pt = prediction.obstacle_prob.shape[:3]
    if pb != b or pn not in (1, n):
        raise ValueError(f"Prediction.obstacle_prob has batch/plans {pb}/{pn}, proposals have {b}/{n}")
    if pt * DENSE_PER_STEP != dense.shape[2]:
        raise ValueError(f"Prediction has {pt} frames but the proposals have {dense.shape[2]} dense steps")
    if prediction.agent_trajs.shape[1] not in (1, n):
        raise ValueError(f"Prediction.agent_trajs has {prediction.agent_trajs.shape[1]} plans, expected {n}")
    if not isinstance(route, Tensor) or route.dim() != 3 or route.shape[0] != b or route.shape[-1] != 2:
        raise ValueError(f"route has shape {list(getattr(route, 'shape', []))}, expected [{b}, R, 2]")
    if not bool(torch.isfinite(route).all()):
        raise ValueError("route contains NaN or inf")
    if route_valid.shape != route.shape[:2] or route_valid.dtype != torch.bool:
        raise ValueError(f"route_valid must be bool {list(route.shape[:2])}")


def score_plans(
    proposals: Proposals,
    prediction: Prediction,
    route: Tensor,
    route_valid: Tensor,
    cfg: ScorerConfig | None = None,
) -> ScoreResult:
    """Score every plan of every scene in one vectorized pass.

    Args:
        proposals: N plans per scene (dense poses `[B, N, D, 3]`, D = 5·T).
        prediction: the world model's future for those plans (N or 1 broadcast along plans);
            non-finite scenes score 0 with reason `NON_FINITE`.
        route: `[B, R, 2]` ego-frame route; route_valid `[B, R]` bool.
        cfg: thresholds and weights.

    Returns:
        `ScoreResult`.
    """
    cfg = cfg or ScorerConfig()
    _validate(proposals, prediction, route, route_valid)
    dense = proposals.dense
    b, n, d, _ = dense.shape
    dev = dense.device
    # plan-blind models broadcast along N with stride 0: keep that (no copies of [B, N, T, X, Y])
    obstacle, drivable = _compact(prediction.obstacle_prob), prediction.drivable_prob
    trajs, mode_p = _compact(prediction.agent_trajs), _compact(prediction.agent_mode_probs)
    size = prediction.agent_size
    finite = torch.ones(b, dtype=torch.bool, device=dev)
    for v in (obstacle, drivable, trajs, mode_p, size, prediction.light_probs):
        # one reduction, no boolean copy: a sum is finite iff every term is (or it overflows: rejected, safe)
        finite &= torch.isfinite(v.reshape(b, -1).sum(-1))
    finite &= ~torch.isnan(prediction.light_distance)
    if not bool(finite.all()):
        obstacle = torch.nan_to_num(obstacle, nan=1.0, posinf=1.0, neginf=0.0)
        drivable = torch.nan_to_num(drivable, nan=0.0, posinf=1.0, neginf=0.0)
        trajs, mode_p = torch.nan_to_num(trajs), torch.nan_to_num(mode_p)
        size = torch.nan_to_num(size, nan=1.0).clamp_min(0.0)
    grid = prediction.grid
    lower, voxel = (grid.lower[0], grid.lower[1]), (grid.voxel[0], grid.voxel[1])
    t = prediction.obstacle_prob.shape[2]

    ego = ego_boxes(dense)  # [B, N, D, 5]
    lo, hi = frame_brackets(d, t, dev)

    # 1. collision with the BEV obstacle probability: max under the footprint per dense step
    obst = footprint_max(obstacle, lower, voxel, ego, [lo, hi])  # [B, N, D]
    obst_hit = obst >= cfg.obstacle_threshold

    # 2. collision with agent modes: share of mode probability that has hit by each step
    agent_dense = interpolate_agents(trajs, d)  # [B, N', A, K, D, 3]
    wl = size[:, None, :, None, None, :2].expand(*agent_dense.shape[:-1], 2)
    agent_box = torch.cat([agent_dense, wl], -1)  # [B, N', A, K, D, 5]
    hits = agent_overlaps(ego, agent_box, prediction.agent_valid)  # [B, N, A, K, D]
    cum = hits.to(mode_p.dtype).cummax(-1).values
    expected = (cum * mode_p[..., None]).sum(3)  # [B, N, A, D]
    expected = expected * prediction.agent_valid[:, None, :, None]
    agent_step = expected.amax(2) if expected.shape[2] else torch.zeros(b, n, d, device=dev)  # [B, N, D]
    agent_hit = agent_step >= cfg.agent_threshold
    coll = obst_hit | agent_hit
    first = torch.where(coll.any(-1), coll.float().argmax(-1).to(dense.dtype), torch.full((b, n), math.inf, device=dev))
    collision_time = (first + 1.0) * DENSE_DT

    # 3. drivable area: every ego corner inside the grid on drivable cells (a corner on a cell edge or
    #    vertex touches every cell sharing it: cells are closed, like the collision test)
    corners = box_corners(ego)  # [B, N, D, 4, 2]
    nx, ny = grid.bev_shape
    qx = (corners[..., 0] - lower[0]) / voxel[0]
    qy = (corners[..., 1] - lower[1]) / voxel[1]
    inside = (qx >= 0) & (qx < nx) & (qy >= 0) & (qy < ny)
    bi = torch.arange(b, device=dev)[:, None, None, None]
    off_corner = torch.zeros_like(inside)
    for ix in (torch.floor(qx).long(), torch.ceil(qx).long() - 1):
        for iy in (torch.floor(qy).long(), torch.ceil(qy).long() - 1):
            ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
            val = drivable[bi, ix.clamp(0, nx - 1), iy.clamp(0, ny - 1)]
            off_corner |= ok & (val < cfg.drivable_threshold)
    off_road = (inside & off_corner).flatten(2).any(-1)  # [B, N]

    # 4. route progress and lateral offset; red light
    lines = _route_lines(route.to(dense.dtype), route_valid)  # [B, R', 2]
    proj = [project_on_polyline(dense[i, ..., :2].reshape(n * d, 2), lines[i]) for i in range(b)]
    s_all, lat = torch.stack([p[0] for p in proj]), torch.stack([p[1] for p in proj])
    s0, _ = project_on_polyline(dense.new_zeros(b, 1, 2), lines)
    s_rel = (s_all - s0).reshape(b, n, d)
    lat = lat.reshape(b, n, d)
    light_p = torch.nan_to_num(prediction.light_probs)
    dist = torch.nan_to_num(prediction.light_distance, nan=-1.0)
    red = (light_p[:, LightState.RED] >= cfg.red_threshold) & (dist >= EGO.front_overhang)  # [B]
    runs_red = red[:, None] & ((s_rel.amax(-1) + EGO.front_overhang) > dist[:, None])

    gates = torch.stack([proposals.feasible, ~(coll.any(-1)), ~off_road, ~runs_red], 1).to(dense.dtype)  # [B, G, N]
    gates = gates * finite[:, None, None]

    # 5. soft terms
    progress = s_rel[..., -1].clamp_min(0.0)
    passing = gates.prod(1) > 0
    ref = torch.where(passing, progress, torch.zeros_like(progress)).amax(-1)
    ref = torch.where(passing.any(-1), ref, progress.amax(-1))
    prog_term = torch.where(
        ref[:, None] >= cfg.min_progress,
        (progress / ref[:, None].clamp_min(1e-6)).clamp(0, 1),
        torch.ones_like(progress),
    )

    kin = dense_kinematics(dense, proposals.speed0[:, None], DENSE_DT)
    ttc_ok = _ttc_clear(ego, kin.speed, obstacle, lower, voxel, agent_box, mode_p, prediction.agent_valid, cfg)
    comfort = (
        torch.stack(
            [
                (kin.accel <= cfg.max_lon_accel).all(-1),
                (kin.accel >= -cfg.max_lon_decel).all(-1),
                (kin.jerk.abs() <= cfg.max_lon_jerk).all(-1),
                (kin.lat_accel.abs() <= cfg.max_lat_accel).all(-1),
                (kin.yaw_rate.abs() <= cfg.max_yaw_rate).all(-1),
                (kin.yaw_accel.abs() <= cfg.max_yaw_accel).all(-1),
            ],
            0,
        )
        .to(dense.dtype)
        .mean(0)
    )
    centring = (1.0 - lat.abs().mean(-1) / cfg.centring_scale).clamp(0.0, 1.0)
    soft = torch.stack([prog_term, ttc_ok.to(dense.dtype), comfort, centring], 1)  # [B, S, N]
    w = torch.tensor(cfg.weights, dtype=dense.dtype, device=dev)
    score = gates.prod(1) * (soft * w[:, None]).sum(1) / w.sum()

    # 6. best plan and why the others lost
    best = score.argmax(-1)
    reason = torch.full((b, n), int(LossReason.LOWER_SCORE), dtype=torch.int64, device=dev)
    for g in reversed(Gate):
        reason = torch.where(gates[:, g] < 0.5, torch.full_like(reason, int(GATE_REASON[g])), reason)
    winner = torch.zeros_like(reason, dtype=torch.bool)
    winner[torch.arange(b, device=dev), best] = True
    reason = torch.where(winner & (score > 0), torch.full_like(reason, int(LossReason.SELECTED)), reason)
    reason = torch.where(finite[:, None], reason, torch.full_like(reason, int(LossReason.NON_FINITE)))
    return ScoreResult(
        gates=gates,
        soft=soft,
        score=score,
        reason=reason,
        best=best,
        collision_time=torch.where(finite[:, None], collision_time, torch.zeros_like(collision_time)),
        obstacle_risk=obst.amax(-1),
        agent_risk=agent_step.amax(-1),
        progress=progress,
        finite=finite,
    )


def _ttc_clear(
    ego: Tensor,
    speed: Tensor,
    obstacle: Tensor,
    lower: tuple[float, float],
    voxel: tuple[float, float],
    agent_box: Tensor,
    mode_p: Tensor,
    agent_valid: Tensor,
    cfg: ScorerConfig,
) -> Tensor:
    """`[B, N]` bool: at every predicted frame, the ego box pushed ahead by speed × τ (τ in
    `ttc_horizons`) overlaps no obstacle cell ≥ threshold and no agent with expected overlap ≥ threshold."""
    d = ego.shape[2]
    steps = torch.arange(DENSE_PER_STEP - 1, d, DENSE_PER_STEP, device=ego.device)  # the predicted frames
    base = ego[:, :, steps]  # [B, N, T, 5]
    v = speed[:, :, steps].clamp_min(0.0)
    shifted = []
    for tau in cfg.ttc_horizons:
        dx = v * tau
        shifted.append(
            torch.stack(
                [
                    base[..., 0] + dx * torch.cos(base[..., 2]),
                    base[..., 1] + dx * torch.sin(base[..., 2]),
                    *base[..., 2:].unbind(-1),
                ],
                -1,
            )
        )
    boxes = torch.cat(shifted, 2)  # [B, N, H·T, 5]
    frames = torch.arange(len(steps), device=ego.device).repeat(len(cfg.ttc_horizons))
    hit = footprint_max(obstacle, lower, voxel, boxes, [frames]) >= cfg.obstacle_threshold  # [B, N, H·T]
    ab = torch.cat([agent_box[..., steps, :]] * len(cfg.ttc_horizons), dim=-2)  # [B, N', A, K, H·T, 5]
    ov = agent_overlaps(boxes, ab, agent_valid).to(mode_p.dtype)  # [B, N, A, K, H·T]
    expected = (ov * mode_p[..., None]).sum(3) * agent_valid[:, None, :, None]
    if expected.shape[2]:
        hit |= expected.amax(2) >= cfg.agent_threshold
    return ~hit.any(-1)
