"""Training losses of `DriveWorldModel`, returned as a named dict (DESIGN.md, issue 6).

* occupancy: class-weighted cross-entropy over Occ3D classes per future step (camera mask) +
  a geometry term (occupied vs free, binary CE) + the BEV obstacle probability (binary CE);
* detection: CenterNet focal loss on the class heatmaps + L1 box regression at the centres;
* agents: winner-takes-all trajectory regression over K modes + mode classification (CE on the winner);
* ego: imitation of the logged future (winner-takes-all over the ego head's proposals + score CE),
  and the ego-status baseline head (L1);
* counterfactual consistency: on branches, the rollout under branch plan k is supervised by
  branch k's future (obstacles and agents). This makes the plan conditioning causal;
* light: traffic-light state CE and stop-line distance L1 where the data has them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from occupancy import GridSpec
from occupancy.classes import NUM_CLASSES, Occ3DClass

from .heads import BOX_CHANNELS, angle_l1, encode_detection_targets, focal_heatmap_loss

# Occ3D classes the ego must not touch (objects, man-made structures, vegetation); ground is not.
OBSTACLE_CLASSES: tuple[Occ3DClass, ...] = (
    *(c for c in Occ3DClass if c <= Occ3DClass.TRUCK),  # others and the ten object classes
    Occ3DClass.MANMADE,
    Occ3DClass.VEGETATION,
)
OBSTACLE_Z_RANGE = (-0.5, 2.5)  # voxel-centre heights [m] that count for the BEV obstacle map
LOSS_WEIGHTS = {
    "occ_ce": 1.0,
    "occ_geo": 1.0,
    "occ_now": 0.5,
    "obstacle": 1.0,
    "drivable": 0.5,
    "heatmap": 2.0,
    "box": 0.5,
    "traj": 0.5,
    "mode": 1.0,
    "ego": 0.5,
    "ego_mode": 0.2,
    "ego_status": 0.2,
    "cf_obstacle": 1.0,
    "cf_traj": 0.5,
    "light": 0.2,
    "light_distance": 0.05,
}


def obstacle_bev(labels: Tensor, grid: GridSpec, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """BEV obstacle map from voxel labels.

    Args:
        labels: `[..., X, Y, Z]` uint8 Occ3D labels on `grid`.
        grid: the grid.
        mask: optional `[..., X, Y, Z]` bool visibility mask.

    Returns:
        occupied `[..., X, Y]` bool (an obstacle voxel in the height band) and known `[..., X, Y]`
        bool (some voxel of the band is visible; all True without a mask).
    """
    z = grid.axis_centers(2, labels.device)
    band = (z >= OBSTACLE_Z_RANGE[0]) & (z <= OBSTACLE_Z_RANGE[1])
    lut = torch.zeros(256, dtype=torch.bool, device=labels.device)
    lut[list(OBSTACLE_CLASSES)] = True
    occ = (lut[labels.long()] & band).any(-1)
    known = torch.ones_like(occ) if mask is None else (mask & band).any(-1)
    return occ, known


def drivable_bev(labels: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """`[..., X, Y]` bool cells whose column holds driveable surface, and where that is known."""
    d = (labels == Occ3DClass.DRIVEABLE_SURFACE).any(-1)
    known = torch.ones_like(d) if mask is None else mask.any(-1)
    return d, known


def masked_mean(x: Tensor, m: Tensor) -> Tensor:
    m = m.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def wta_losses(
    trajs: Tensor, logits: Tensor, target: Tensor, valid: Tensor, weight: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Winner-takes-all regression + mode classification.

    Args:
        trajs: `[..., K, T, 3]` predicted poses; logits `[..., K]`.
        target: `[..., T, 3]`; valid `[..., T]` bool.
        weight: optional `[...]` per-trajectory weight (e.g. branch validity).

    Returns:
        (regression loss, classification loss), means over trajectories with a valid step.
    """
    vt = valid[..., None, :].to(trajs.dtype)  # [..., 1, T]
    dist = torch.linalg.norm(trajs[..., :2] - target[..., None, :, :2], dim=-1)  # [..., K, T]
    ade = (dist * vt).sum(-1) / vt.sum(-1).clamp(min=1)
    best = ade.argmin(dim=-1)  # [...]
    pick = torch.gather(trajs, -3, best[..., None, None, None].expand(*best.shape, 1, *trajs.shape[-2:]))[..., 0, :, :]
    reg = F.smooth_l1_loss(pick[..., :2], target[..., :2], reduction="none").sum(-1) + 0.5 * angle_l1(
        pick[..., 2], target[..., 2]
    )
    has = valid.any(-1)
    if weight is not None:
        has = has & (weight > 0)
    reg = masked_mean(reg, valid & has[..., None])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), best.reshape(-1), reduction="none")
    return reg, masked_mean(ce.view(best.shape), has)


def occupancy_losses(
    sem_logits: Tensor, labels: Tensor, mask: Tensor, free_weight: float = 0.25
) -> tuple[Tensor, Tensor]:
    """Class-weighted CE and the geometry (occupied vs free) binary CE on visible voxels.

    Args:
        sem_logits: `[B, T, C, X, Y, Z]`; labels `[B, T, X, Y, Z]` uint8; mask `[B, T, X, Y, Z]` bool.
    """
    weight = torch.ones(NUM_CLASSES, device=sem_logits.device)
    weight[Occ3DClass.FREE] = free_weight
    tgt = labels.long()
    ce = F.cross_entropy(sem_logits.transpose(1, 2), tgt, weight=weight, reduction="none")  # [B, T, X, Y, Z]
    ce = (ce * mask).sum() / (weight[tgt] * mask).sum().clamp(min=1.0)
    occ_logit = (
        torch.logsumexp(torch.cat([sem_logits[:, :, : Occ3DClass.FREE], sem_logits[:, :, Occ3DClass.FREE + 1 :]], 2), 2)
        - sem_logits[:, :, Occ3DClass.FREE]
    )
    geo = F.binary_cross_entropy_with_logits(occ_logit, (tgt != Occ3DClass.FREE).float(), reduction="none")
    return ce, masked_mean(geo, mask)


def detection_losses(heat: Tensor, box: Tensor, targets, grid: GridSpec) -> tuple[Tensor, Tensor]:
    """Focal heatmap loss and L1 box regression at ground-truth centres (targets: `Targets`)."""
    tgt_heat, tgt_box, flat, inside = encode_detection_targets(
        targets.agent_box, targets.agent_cls, targets.agent_valid, targets.agent_velocity, grid
    )
    hm = focal_heatmap_loss(heat, tgt_heat)
    idx = flat[:, None, :].expand(-1, BOX_CHANNELS, -1)
    pred = torch.gather(box.flatten(2), 2, idx)
    tgt = torch.gather(tgt_box.flatten(2), 2, idx)
    l1 = (pred - tgt).abs().sum(1)  # [B, A]
    return hm, masked_mean(l1, inside)
