"""Stop signs: the ego must come to a full stop near the stop line before passing it."""

from __future__ import annotations

from torch import Tensor


def stop_sign_update(
    front_s: Tensor,
    speed: Tensor,
    stop_s: Tensor,
    valid: Tensor,
    stopped: Tensor,
    done: Tensor,
    zone: float = 6.0,
    stop_speed: float = 0.1,
    clear: float = 3.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Update stop-sign bookkeeping and report violations.

    Args:
        front_s: `[W]` route arc length of the ego's front bumper [m].
        speed: `[W]` ego speed [m/s].
        stop_s: `[W, S]` route arc length of each stop line on the route [m].
        valid: `[W, S]` bool.
        stopped: `[W, S]` bool, the ego has stopped in the zone of that sign.
        done: `[W, S]` bool, the sign has been passed (judged once).
        zone: the stop counts within `zone` metres before the line (and up to `clear`/2 past it) [m].
        stop_speed: speed below which the ego counts as stopped [m/s].
        clear: the sign is judged once the front is `clear` metres past the line [m].

    Returns:
        stopped `[W, S]`, done `[W, S]`, violated `[W, S]` (judged this step without a stop).
    """
    near = (front_s[:, None] >= stop_s - zone) & (front_s[:, None] <= stop_s + 0.5 * clear)
    stopped = stopped | (near & (speed[:, None] < stop_speed) & valid)
    passed = (front_s[:, None] >= stop_s + clear) & valid & ~done
    violated = passed & ~stopped
    return stopped, done | passed, violated
