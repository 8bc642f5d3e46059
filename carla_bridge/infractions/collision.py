"""Collisions of the ego with vehicles, pedestrians and static objects (box overlap, rising edge)."""

from __future__ import annotations

import torch
from torch import Tensor

from agents.boxes import boxes_overlap


def collision_update(
    ego_box: Tensor,
    ego_speed: Tensor,
    other_boxes: Tensor,
    other_valid: Tensor,
    in_contact: Tensor,
    moving_speed: float = 0.5,
) -> tuple[Tensor, Tensor, Tensor]:
    """Detect new ego collisions.

    A collision event fires when the ego box starts to overlap another box (a contact that persists
    is one collision, as in CARLA's collision sensor with its re-trigger guard).

    Args:
        ego_box: `[W, 5]` (x, y, yaw, length, width) ego box.
        ego_speed: `[W]` ego speed [m/s].
        other_boxes: `[W, A, 5]` boxes of the other actors.
        other_valid: `[W, A]` bool.
        in_contact: `[W, A]` bool, contact at the previous step.
        moving_speed: ego speed [m/s] above which the ego counts as moving.

    Returns:
        contact `[W, A]` (now), new `[W, A]` (contact began this step), and ego_at_fault `[W, A]`:
        the ego was moving and the other actor's centre is not behind the ego's rear half (being
        rear-ended while stopped or slow is not the ego's fault).
    """
    contact = boxes_overlap(ego_box[:, None, :], other_boxes)[:, 0, :] & other_valid  # [W, A]
    new = contact & ~in_contact
    yaw = ego_box[:, 2]
    rel = other_boxes[..., :2] - ego_box[:, None, :2]  # [W, A, 2]
    along = rel[..., 0] * torch.cos(yaw)[:, None] + rel[..., 1] * torch.sin(yaw)[:, None]  # [W, A]
    not_behind = along > -0.25 * ego_box[:, None, 3]
    at_fault = new & not_behind & (ego_speed[:, None] > moving_speed)
    return contact, new, at_fault
