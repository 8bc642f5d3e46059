"""Small synthetic batches shaped exactly like the dataset's (for unit tests and benchmarks that
must not depend on a recorded dataset). Geometry is consistent: a nuScenes-like 6-camera rig,
agents driving at constant velocity, occupancy painted from their boxes, and counterfactual
branches where the lead agent yields when the branch plan comes close."""

from __future__ import annotations

import math

import torch

from agents.se2 import se2_compose
from drivewm.data.types import Batch, Features, Sample, Targets, collate

# nuScenes camera yaws (CAM_FRONT, FRONT_RIGHT, FRONT_LEFT, BACK, BACK_LEFT, BACK_RIGHT) [rad] and FOVs
RIG_YAWS = (0.0, -0.96, 0.96, math.pi, 1.92, -1.92)
RIG_FOVS = (1.22, 1.22, 1.22, 1.92, 1.22, 1.22)


TINY = dict(
    image_size=[32, 64],
    backbone_channels=[8, 16],
    feat_dim=8,
    bev_dim=16,
    plan_dim=16,
    max_agents=6,
    grid_voxel=[3.2, 3.2, 1.6],
)
"""`ModelConfig` overrides of the tiny model the unit tests train and run (seconds on a CPU)."""


def simple_rig(image_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A nuScenes-like rig: intrinsics `[6, 3, 3]` at `image_hw` and cam_to_ego `[6, 4, 4]`
    (camera z forward, x right, y down; mounted 1.5 m high near the roof centre)."""
    h, w = image_hw
    ks, ms = [], []
    for yaw, fov in zip(RIG_YAWS, RIG_FOVS):
        f = (w / 2) / math.tan(fov / 2)
        ks.append(torch.tensor([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]]))
        m = torch.eye(4)
        fwd = torch.tensor([math.cos(yaw), math.sin(yaw), 0.0])
        m[:3, 0] = torch.tensor([math.sin(yaw), -math.cos(yaw), 0.0])
        m[:3, 1] = torch.tensor([0.0, 0.0, -1.0])
        m[:3, 2] = fwd
        m[:3, 3] = torch.tensor([1.0, 0.0, 1.5]) + 0.5 * fwd
        ms.append(m)
    return torch.stack(ks), torch.stack(ms)


def _paint(grid_shape, grid, boxes, cls_occ):
    """Labels `[X, Y, Z]` uint8: ground (driveable) at the lowest layers, boxes (x, y, yaw, l, w) as `cls_occ`."""
    gx, gy, gz = grid_shape
    labels = torch.full((gx, gy, gz), 17, dtype=torch.uint8)
    z = grid.axis_centers(2)
    labels[:, :, z < 0.0] = 11
    cells = grid.bev_centers()
    for (x, y, yaw, l, w), c in zip(boxes.tolist(), cls_occ):
        d = cells - torch.tensor([x, y])
        lx = d[..., 0] * math.cos(yaw) + d[..., 1] * math.sin(yaw)
        ly = -d[..., 0] * math.sin(yaw) + d[..., 1] * math.cos(yaw)
        inside = (lx.abs() <= l / 2) & (ly.abs() <= w / 2)
        col = labels[inside]
        col[:, (z >= 0.0) & (z < 1.6)] = c
        labels[inside] = col
    return labels


def synthetic_sample(
    config, num_agents: int = 4, num_branches: int = 2, seed: int = 0, max_future_boxes: int = 32
) -> Sample:
    """One sample for `config` (a `ModelConfig`): see the module docstring."""
    g = torch.Generator().manual_seed(seed)
    grid = config.grid
    gx, gy, gz = grid.shape
    h, w = config.image_size
    t_steps, a_slots = config.horizon, config.max_agents
    k, m = simple_rig((h, w))
    speed = float(3.0 + 5.0 * torch.rand((), generator=g))
    t = torch.arange(1, t_steps + 1, dtype=torch.float32) * 0.5
    ego_future = torch.stack([speed * t, torch.zeros(t_steps), torch.zeros(t_steps)], -1)
    hist_t = torch.arange(-config.history, 1, dtype=torch.float32) * 0.5
    ego_history = torch.stack([speed * hist_t, torch.zeros_like(hist_t), torch.zeros_like(hist_t)], -1)
    route = torch.stack([torch.linspace(-10, 60, 24), torch.zeros(24)], -1)
    images = (torch.rand(6, 3, h, w, generator=g) * 255).to(torch.uint8)
    # agents: a lead vehicle ahead in the ego lane, others around, all at constant velocity
    n = min(num_agents, a_slots)
    box = torch.zeros(a_slots, 7)
    vel = torch.zeros(a_slots, 2)
    cls = torch.zeros(a_slots, dtype=torch.int64)
    valid = torch.zeros(a_slots, dtype=torch.bool)
    for i in range(n):
        if i == 0:
            x, y, yaw = 15.0 + 5 * float(torch.rand((), generator=g)), 0.0, 0.0
        else:
            x, y = (torch.rand(2, generator=g) * 50 - 25).tolist()
            yaw = float(torch.rand((), generator=g) * 2 * math.pi - math.pi)
        v = float(torch.rand((), generator=g) * 6)
        box[i] = torch.tensor([x, y, 0.8, yaw, 4.5, 1.9, 1.6])
        vel[i] = torch.tensor([v * math.cos(yaw), v * math.sin(yaw)])
        valid[i] = True
    local = torch.stack([torch.ones(t_steps), torch.zeros(t_steps), torch.zeros(t_steps)], -1)
    speeds = vel.norm(dim=-1)
    agent_future = se2_compose(box[:, None, [0, 1, 3]], local[None] * (speeds[:, None, None] * t[None, :, None]))
    agent_future[..., 2] = box[:, None, 3]
    fvalid = valid[:, None].expand(-1, t_steps).clone()

    def occ_at(futures, plan_offset=None):
        out = []
        for s in range(t_steps):
            bx = torch.cat([futures[:n, s, :2], futures[:n, s, 2:3], box[:n, 4:6]], -1)[:, [0, 1, 2, 3, 4]]
            out.append(_paint((gx, gy, gz), grid, bx, [4] * n))
        return torch.stack(out)

    occ = occ_at(agent_future)
    occ_now = _paint((gx, gy, gz), grid, box[:n][:, [0, 1, 3, 4, 5]], [4] * n)
    # branches: lateral offsets of the logged plan; the lead agent brakes if the branch stays in lane
    kb = num_branches
    offsets = torch.linspace(-3.0, 3.0, kb) if kb > 1 else torch.zeros(kb)
    branch_plans = ego_future[None].repeat(kb, 1, 1)
    branch_plans[..., 1] = offsets[:, None] * (t / t[-1])[None]
    branch_agent = agent_future[None].repeat(kb, 1, 1, 1)
    for j in range(kb):
        if abs(float(offsets[j])) < 1.5 and n > 0:  # yields: the lead agent stops
            branch_agent[j, 0, :, 0] = box[0, 0]
    branch_occ = (
        torch.stack([occ_at(branch_agent[j]) for j in range(kb)]) if kb else torch.zeros(0, t_steps, gx, gy, gz)
    )
    fb = torch.zeros(t_steps, max_future_boxes, 5)
    fbv = torch.zeros(t_steps, max_future_boxes, dtype=torch.bool)
    fb[:, :n] = torch.cat([agent_future[:n], box[:n, None, 4:6].expand(-1, t_steps, -1)], -1).transpose(0, 1)
    fbv[:, :n] = True
    feats = Features(
        images=images,
        intrinsics=k,
        cam_to_ego=m,
        ego_history=ego_history,
        speed=torch.tensor(speed),
        ego_pose=torch.tensor([100.0, 50.0, 0.3]),
        route=route,
        route_valid=torch.ones(24, dtype=torch.bool),
        route_is_command=torch.tensor(False),
        timestamp=torch.tensor(5.0),
        prev_images=images.clone(),
        prev_intrinsics=k.clone(),
        prev_cam_to_ego=m.clone(),
        prev_ego_history=ego_history.clone(),
        prev_speed=torch.tensor(speed),
        prev_ego_pose=torch.tensor([100.0 - 0.5 * speed * math.cos(0.3), 50.0 - 0.5 * speed * math.sin(0.3), 0.3]),
        prev_route=route.clone(),
        prev_route_valid=torch.ones(24, dtype=torch.bool),
        prev_valid=torch.tensor(True),
    )
    targets = Targets(
        ego_future=ego_future,
        ego_future_valid=torch.ones(t_steps, dtype=torch.bool),
        occ=occ,
        occ_mask=torch.ones(t_steps, gx, gy, gz, dtype=torch.bool),
        occ_valid=torch.ones(t_steps, dtype=torch.bool),
        occ_now=occ_now,
        occ_now_mask=torch.ones(gx, gy, gz, dtype=torch.bool),
        agent_box=box,
        agent_cls=cls,
        agent_velocity=vel,
        agent_valid=valid,
        agent_future=agent_future,
        agent_future_valid=fvalid,
        future_boxes=fb,
        future_boxes_valid=fbv,
        branch_plans=branch_plans,
        branch_valid=torch.ones(kb, dtype=torch.bool),
        branch_occ=branch_occ,
        branch_agent_future=branch_agent,
        branch_agent_valid=fvalid[None].repeat(kb, 1, 1),
        branch_collision=torch.zeros(kb, dtype=torch.bool),
        light_state=torch.tensor(1),
        light_distance=torch.tensor(-1.0),
    )
    return Sample(feats, targets, f"synthetic-{seed}")


def synthetic_batch(config, batch_size: int = 2, num_branches: int = 2, seed: int = 0) -> Batch:
    """`batch_size` synthetic samples collated (seeds `seed`, `seed + 1`, ...)."""
    return collate([synthetic_sample(config, num_branches=num_branches, seed=seed + i) for i in range(batch_size)])
