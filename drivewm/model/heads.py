"""Detection encoding/decoding (CenterNet-style heatmap + box regression), trajectory decoding
and the soft ego-footprint raster used by the plan-conditioned occupancy correction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from agents import EGO, AgentClass, AgentStates
from agents.se2 import se2_compose, wrap_angle
from occupancy import GridSpec

NUM_AGENT_CLASSES = len(AgentClass)
# box regression channels: offset x, y (in cells), log l, w, h, sin yaw, cos yaw, z, vx, vy
BOX_CHANNELS = 10
VELOCITY_CHANNELS = slice(8, 10)
TRAJ_SCALE = (1.0, 0.5, 0.1)  # per-step scale of the raw (dx, dy, dyaw) outputs [m, m, rad]


def decode_detections(heatmap_logits: Tensor, box: Tensor, grid: GridSpec, max_agents: int, threshold: float):
    """Top-A peaks of the class heatmaps → agent states in the ego frame.

    Args:
        heatmap_logits: `[B, Ca, X, Y]` per-class centre logits.
        box: `[B, 10, X, Y]` box regression (see `BOX_CHANNELS`).
        grid: the BEV grid.
        max_agents: A.
        threshold: score threshold for `valid`.

    Returns:
        (`AgentStates` `[B, A]`, scores `[B, A]`).
    """
    b, _, gx, gy = heatmap_logits.shape
    heat = torch.sigmoid(heatmap_logits)
    score, cls = heat.max(dim=1)  # [B, X, Y]
    peak = F.max_pool2d(score[:, None], 3, stride=1, padding=1)[:, 0]
    score = torch.where(score >= peak, score, torch.zeros_like(score))
    k = min(max_agents, gx * gy)
    top, idx = score.flatten(1).topk(k, dim=1)  # [B, A]
    ix, iy = idx // gy, idx % gy
    flat_box = box.flatten(2)  # [B, 10, X·Y]
    g = torch.gather(flat_box, 2, idx[:, None, :].expand(-1, BOX_CHANNELS, -1)).transpose(1, 2)  # [B, A, 10]
    vx, vy = grid.voxel[0], grid.voxel[1]
    x = grid.lower[0] + (ix.float() + 0.5 + g[..., 0]) * vx
    y = grid.lower[1] + (iy.float() + 0.5 + g[..., 1]) * vy
    size = torch.exp(g[..., 2:5].clamp(-3.0, 3.5))
    yaw = wrap_angle(torch.atan2(g[..., 5], g[..., 6]))
    velocity = g[..., VELOCITY_CHANNELS]
    agent_cls = torch.gather(cls.flatten(1), 1, idx)
    valid = top > threshold
    if k < max_agents:  # pad to A slots
        pad = max_agents - k
        x, y, yaw, top = (F.pad(t, (0, pad)) for t in (x, y, yaw, top))
        size = F.pad(size, (0, 0, 0, pad), value=1.0)
        velocity = F.pad(velocity, (0, 0, 0, pad))
        agent_cls = F.pad(agent_cls, (0, pad))
        valid = F.pad(valid, (0, pad), value=False)
    agents = AgentStates(
        xy=torch.stack([x, y], -1),
        z=g[..., 7] if k == max_agents else F.pad(g[..., 7], (0, max_agents - k)),
        yaw=yaw,
        speed=(velocity * torch.stack([torch.cos(yaw), torch.sin(yaw)], -1)).sum(-1),
        velocity=velocity,
        size=size,
        cls=agent_cls,
        track_id=torch.arange(max_agents, device=x.device).expand(b, -1).clone(),
        valid=valid,
    )
    return agents, top


def bev_cells(grid: GridSpec, xy: Tensor) -> tuple[Tensor, Tensor]:
    """The BEV cell of each point `[..., 2]` (ego frame [m]), clamped into the grid: indices `[..., 2]`
    int64 and the flat index `[...]` into `X·Y` (row-major, as `tensor.flatten(-2)` of `[.., X, Y]`)."""
    gx, gy = grid.bev_shape
    ij = grid.world_to_voxel(xy).clamp(min=0)
    ij = torch.minimum(ij, torch.tensor([gx - 1, gy - 1], device=xy.device))
    return ij, ij[..., 0] * gy + ij[..., 1]


def encode_detection_targets(
    boxes: Tensor, cls: Tensor, valid: Tensor, velocity: Tensor, grid: GridSpec
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Heatmap and regression targets from ground-truth boxes at t0.

    Args:
        boxes: `[B, A, 7]` (x, y, z, yaw, l, w, h) in the ego frame.
        cls: `[B, A]` int64 `AgentClass`; valid `[B, A]` bool; velocity `[B, A, 2]` [m/s].
        grid: the BEV grid.

    Returns:
        heat `[B, Ca, X, Y]` Gaussian peaks (1 at the centre cell), box `[B, 10, X, Y]`,
        centre cell index `[B, A]` int64 (flat X·Y), and in-grid mask `[B, A]` bool.
    """
    b = cls.shape[0]
    gx, gy = grid.bev_shape
    dev = boxes.device
    cells = grid.bev_centers(dev)  # [X, Y, 2]
    inside = valid & grid.contains(boxes[..., :2])
    ij, flat = bev_cells(grid, boxes[..., :2])
    centre = grid.voxel_to_world(ij)  # [B, A, 2]
    # Gaussian radius from the box footprint (CenterNet-like, at least one cell)
    sigma = (0.25 * torch.sqrt(boxes[..., 4] * boxes[..., 5]).clamp(min=0.5)).clamp(min=grid.voxel[0] * 0.5)
    d2 = ((cells[None, None] - centre[:, :, None, None, :]) ** 2).sum(-1)  # [B, A, X, Y]
    g = torch.exp(-d2 / (2 * sigma[..., None, None] ** 2)) * inside[..., None, None]
    heat = torch.zeros(b, NUM_AGENT_CLASSES, gx, gy, device=dev)
    heat.scatter_reduce_(1, cls.clamp(0, NUM_AGENT_CLASSES - 1)[..., None, None].expand(-1, -1, gx, gy), g, "amax")
    off = (boxes[..., :2] - centre) / torch.tensor(grid.voxel[:2], device=dev)
    reg = torch.cat(
        [
            off,
            torch.log(boxes[..., 4:7].clamp(min=0.05)),
            torch.sin(boxes[..., 3:4]),
            torch.cos(boxes[..., 3:4]),
            boxes[..., 2:3],
            velocity,
        ],
        dim=-1,
    )  # [B, A, 10]
    box = torch.zeros(b, BOX_CHANNELS, gx * gy, device=dev)
    box.scatter_(2, flat[:, None, :].expand(-1, BOX_CHANNELS, -1), reg.transpose(1, 2) * inside[:, None, :])
    return heat, box.view(b, BOX_CHANNELS, gx, gy), flat, inside


def decode_trajectories(raw: Tensor, pose: Tensor, speed: Tensor, horizon: int, dt: float) -> Tensor:
    """Per-step (dx, dy, dyaw) increments in the agent's t0 frame → poses in the ego frame.

    A constant-velocity prior (`speed`·t along x) is added, so the network predicts deviations.

    Args:
        raw: `[..., K, T·3]` raw outputs.
        pose: `[..., 3]` t0 pose (x, y, yaw) in the ego frame (broadcast against `raw[..., 0, 0]`).
        speed: `[...]` signed speed [m/s].
        horizon: T; dt: step [s].

    Returns:
        `[..., K, T, 3]` (x, y, yaw) in the ego frame, yaw wrapped.
    """
    scale = torch.tensor(TRAJ_SCALE, device=raw.device, dtype=raw.dtype)
    steps = raw.unflatten(-1, (horizon, 3)) * scale
    local = steps.cumsum(dim=-2)  # [..., K, T, 3]
    t = torch.arange(1, horizon + 1, device=raw.device, dtype=raw.dtype) * dt
    cv = speed[..., None, None] * t  # [..., 1, T]
    local = torch.cat([local[..., :1] + cv[..., None], local[..., 1:]], dim=-1)
    return se2_compose(pose[..., None, None, :], local)


def ego_footprint_raster(plans: Tensor, cells: Tensor, cell_size: float) -> Tensor:
    """Soft rasters of the ego box along each plan.

    Args:
        plans: `[B, N, T, 3]` rear-axle poses in the ego frame.
        cells: `[Xc, Yc, 2]` cell centres [m].
        cell_size: [m].

    Returns:
        `[B, N, T, Xc, Yc, 2]`: (soft inside-the-box, Gaussian proximity to the box centre).
    """
    c, s = torch.cos(plans[..., 2]), torch.sin(plans[..., 2])
    cx = plans[..., 0] + EGO.rear_axle_to_center * c
    cy = plans[..., 1] + EGO.rear_axle_to_center * s
    dx = cells[..., 0] - cx[..., None, None]  # [B, N, T, Xc, Yc]
    dy = cells[..., 1] - cy[..., None, None]
    c, s = c[..., None, None], s[..., None, None]
    lx, ly = c * dx + s * dy, -s * dx + c * dy
    tau = cell_size / 4.0
    inside = torch.sigmoid((EGO.length / 2 + cell_size / 2 - lx.abs()) / tau) * torch.sigmoid(
        (EGO.width / 2 + cell_size / 2 - ly.abs()) / tau
    )
    near = torch.exp(-(lx * lx + ly * ly) / (2.0 * cell_size**2))
    return torch.stack([inside, near], dim=-1)


def plan_features(plans: Tensor) -> Tensor:
    """`[..., T, 3]` poses → `[..., T, 4]` normalised (x/30, y/30, cos yaw, sin yaw)."""
    return torch.stack(
        [plans[..., 0] / 30.0, plans[..., 1] / 30.0, torch.cos(plans[..., 2]), torch.sin(plans[..., 2])], dim=-1
    )


def focal_heatmap_loss(logits: Tensor, target: Tensor, alpha: float = 2.0, beta: float = 4.0) -> Tensor:
    """CenterNet penalty-reduced focal loss, normalised by the number of peaks (at least 1)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target >= 0.999
    pos_loss = -torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = -torch.log(1 - p) * p**alpha * (1 - target) ** beta * (~pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def angle_l1(a: Tensor, b: Tensor) -> Tensor:
    """|wrap(a - b)| elementwise [rad]."""
    return wrap_angle(a - b).abs()
