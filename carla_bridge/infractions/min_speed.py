"""Minimum speed: the ego's mean speed compared with the surrounding traffic's, per route
checkpoint (leaderboard 2.0 MinSpeedRouteTest)."""

from __future__ import annotations

import torch
from torch import Tensor


def min_speed_percentage(ego_speed_sum: Tensor, traffic_speed_sum: Tensor, traffic_count: Tensor) -> Tensor:
    """Percentage of the traffic's mean speed the ego reached over one checkpoint segment.

    Args:
        ego_speed_sum: `[W]` sum of ego speeds over the segment's steps [m/s].
        traffic_speed_sum: `[W]` sum over the same steps of the mean speed of the moving vehicles
            near the ego [m/s].
        traffic_count: `[W]` number of steps that had traffic nearby.

    Returns:
        `[W]` percentage (100 when there was no traffic to compare with, capped at 100).
    """
    has = (traffic_count > 0) & (traffic_speed_sum > 1e-3)
    pct = 100.0 * ego_speed_sum / traffic_speed_sum.clamp(min=1e-3)
    return torch.where(has, pct.clamp(max=100.0), torch.full_like(pct, 100.0))
