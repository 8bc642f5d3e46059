"""Red-light running: the ego's front crosses the stop line of a red light on its route."""

from __future__ import annotations

from torch import Tensor


def red_light_crossings(prev_front_s: Tensor, front_s: Tensor, stop_s: Tensor, is_red: Tensor, valid: Tensor) -> Tensor:
    """Which stop lines the ego ran this step.

    Args:
        prev_front_s: `[W]` route arc length of the ego's front bumper at the previous step [m].
        front_s: `[W]` the same now [m].
        stop_s: `[W, H]` route arc length of the stop line of each light head on the route [m].
        is_red: `[W, H]` bool, the head shows red (yellow does not count, as in CARLA).
        valid: `[W, H]` bool.

    Returns:
        `[W, H]` bool: the front crossed the stop line (prev < stop ≤ now) while it was red.
    """
    crossed = (prev_front_s[:, None] < stop_s) & (front_s[:, None] >= stop_s)
    return crossed & is_red & valid
