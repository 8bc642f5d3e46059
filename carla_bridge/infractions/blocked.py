"""Agent blocked (standing still too long) and the route time budget; both end the route."""

from __future__ import annotations

from torch import Tensor


def blocked_update(
    speed: Tensor, still_time: Tensor, dt: float, min_speed: float = 0.1, max_time: float = 90.0
) -> tuple[Tensor, Tensor]:
    """Track how long the ego has stood still.

    Args:
        speed: `[W]` ego speed [m/s].
        still_time: `[W]` seconds spent below `min_speed` without interruption.
        dt: step [s].
        min_speed: [m/s].
        max_time: [s] after which the ego is blocked.

    Returns:
        still_time `[W]` updated, blocked `[W]` bool (reached `max_time` this step).
    """
    slow = speed < min_speed
    new_time = (still_time + dt) * slow.float()
    blocked = (new_time >= max_time) & (still_time < max_time)
    return new_time, blocked


def route_timeout_seconds(route_length: float, min_average_speed: float = 2.0, slack: float = 60.0) -> float:
    """Time budget of a route [s]: its length at `min_average_speed` [m/s] plus `slack` [s]."""
    if route_length <= 0:
        raise ValueError(f"route_length must be positive, got {route_length}")
    return route_length / min_average_speed + slack
