"""Outside route lanes: distance the ego drives off the lanes of its route (opposite lanes,
sidewalks, off-road), as a percentage of the route length."""

from __future__ import annotations

from torch import Tensor


def outside_lanes_update(in_route_lanes: Tensor, step_distance: Tensor, outside_distance: Tensor) -> Tensor:
    """Accumulate distance driven outside the route's lanes.

    Args:
        in_route_lanes: `[W]` bool, the ego's centre lies on a lane of its route (or a same-direction
            neighbour of one).
        step_distance: `[W]` distance driven this step [m].
        outside_distance: `[W]` accumulated distance outside [m].

    Returns:
        `[W]` the updated accumulated distance [m].
    """
    return outside_distance + step_distance * (~in_route_lanes).float()


def outside_percentage(outside_distance: Tensor, route_length: Tensor | float) -> Tensor:
    """`[W]` percentage of the route length driven outside the route lanes (0..100)."""
    return (100.0 * outside_distance / route_length).clamp(0.0, 100.0)
