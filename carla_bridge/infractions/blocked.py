"""ActorBlockedTest (scenario_runner `atomic_criteria.py`): the ego stood below `min_speed` for more
than `max_time` seconds (ends the route). The clock restarts at every step at or above `min_speed`
and when a scenario switches the test back on; while it is off nothing is tracked."""

from __future__ import annotations

import math

import numba as nb
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
    return _update(
        np.asarray(speed, dtype=np.float64),
        np.asarray(time, dtype=np.float64),
        np.asarray(since, dtype=np.float64),
        np.asarray(active, dtype=np.bool_),
        float(rule.min_speed),
        float(rule.max_time),
    )


@nb.njit(cache=True)
def _update(speed, time, since, active, min_speed, max_time):
    W = speed.shape[0]
    out = since.copy()
    blocked = np.zeros(W, dtype=np.bool_)
    for w in range(W):
        if not active[w]:
            continue
        if speed[w] < min_speed and math.isfinite(since[w]):
            blocked[w] = time[w] - since[w] > max_time
        else:
            out[w] = time[w]
    return out, blocked
