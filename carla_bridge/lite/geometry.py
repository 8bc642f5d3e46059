"""Point-to-oriented-box distance: batched torch (the autopilot's path check) and the scalar form the
simulator's compiled kernels use; the same formula (a test compares them)."""

from __future__ import annotations

import math

import numba as nb
import torch
from torch import Tensor


def point_box_distance_paired(pts: Tensor, boxes: Tensor) -> Tensor:
    """Distance from each row's points to that row's boxes (0 inside).

    Args:
        pts: `[W, N, K, 2]`.
        boxes: `[W, N, C, 5]` (x, y, yaw, length, width).

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


@nb.njit(cache=True, inline="always")
def point_box_distance(px: float, py: float, bx: float, by: float, c: float, s: float, hl: float, hw: float) -> float:
    """Distance from point (px, py) to the box centred at (bx, by) with heading cos/sin (c, s) and
    half length / half width (hl, hw); 0 inside."""
    rx, ry = px - bx, py - by
    dx = max(abs(c * rx + s * ry) - hl, 0.0)
    dy = max(abs(-s * rx + c * ry) - hw, 0.0)
    return math.sqrt(dx * dx + dy * dy)


@nb.njit(cache=True, inline="always")
def wrap(a: float) -> float:
    """Angle wrapped to [-π, π) (Python's float modulo, as `torch.remainder`)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi
