"""Route deviation: the ego is too far from its route polyline (ends the route)."""

from __future__ import annotations

from torch import Tensor


def route_deviation(distance_to_route: Tensor, threshold: float = 30.0) -> Tensor:
    """`[W]` bool: the ego's distance [m] to the route polyline exceeds `threshold` (CARLA's 30 m)."""
    return distance_to_route > threshold
