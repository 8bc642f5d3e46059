"""ActorBlockedTest (scenario_runner `atomic_criteria.py`): the ego stood below `min_speed` for more
than `max_time` seconds (ends the route). The clock restarts at every step at or above `min_speed`
and when a scenario switches the test back on; while it is off nothing is tracked."""

from __future__ import annotations

import numpy as np

from carla_bridge.rules import BlockedRule


def blocked_update(
    speed: np.ndarray, time: np.ndarray, since: np.ndarray, active: np.ndarray, rule: BlockedRule
) -> tuple[np.ndarray, np.ndarray]:
    """One step for W egos.

    Args:
        speed: `[W]` [m/s]; time: `[W]` simulation time [s]; since: `[W]` time of the last valid state
            (-inf before the first step); active: `[W]` bool, the test is on.

    Returns:
        since `[W]`, blocked `[W]` bool.
    """
    speed, time, since = (np.asarray(x, dtype=np.float64) for x in (speed, time, since))
    active = np.asarray(active, dtype=bool)
    slow = (speed < rule.min_speed) & np.isfinite(since)
    blocked = active & slow & (time - since > rule.max_time)
    return np.where(active & ~slow, time, since), blocked
