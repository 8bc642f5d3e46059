"""Point-to-oriented-box distances used by the lite simulator's behaviour models."""

from __future__ import annotations

import torch
from torch import Tensor


def point_box_distance(pts: Tensor, boxes: Tensor) -> Tensor:
    """Distance from points to oriented boxes (0 inside).

    Args:
        pts: `[W, N, K, 2]`.
        boxes: `[W, M, 5]` (x, y, yaw, length, width).

    Returns:
        `[W, N, K, M]`.
    """
    rel = pts[:, :, :, None, :] - boxes[:, None, None, :, :2]  # [W, N, K, M, 2]
    c = torch.cos(boxes[..., 2])[:, None, None, :]
    s = torch.sin(boxes[..., 2])[:, None, None, :]
    lx = c * rel[..., 0] + s * rel[..., 1]
    ly = -s * rel[..., 0] + c * rel[..., 1]
    dx = (lx.abs() - 0.5 * boxes[..., 3][:, None, None, :]).clamp(min=0.0)
    dy = (ly.abs() - 0.5 * boxes[..., 4][:, None, None, :]).clamp(min=0.0)
    return torch.sqrt(dx * dx + dy * dy)


def point_box_distance_paired(pts: Tensor, boxes: Tensor) -> Tensor:
    """Distance from each vehicle's path points to its own candidate boxes (0 inside).

    Args:
        pts: `[W, N, K, 2]`.
        boxes: `[W, N, C, 5]`.

    Returns:
        `[W, N, K, C]`.
    """
    rel = pts[:, :, :, None, :] - boxes[:, :, None, :, :2]  # [W, N, K, C, 2]
    c = torch.cos(boxes[..., 2])[:, :, None, :]
    s = torch.sin(boxes[..., 2])[:, :, None, :]
    lx = c * rel[..., 0] + s * rel[..., 1]
    ly = -s * rel[..., 0] + c * rel[..., 1]
    dx = (lx.abs() - 0.5 * boxes[..., 3][:, :, None, :]).clamp(min=0.0)
    dy = (ly.abs() - 0.5 * boxes[..., 4][:, :, None, :]).clamp(min=0.0)
    return torch.sqrt(dx * dx + dy * dy)
