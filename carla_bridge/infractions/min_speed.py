"""MinimumSpeedRouteTest (scenario_runner `atomic_criteria.py`): the ego's mean speed against the
background traffic's, per route checkpoint.

The route is cut into `checkpoints` equal parts. Every step where background vehicles exist, the
frame's mean speed of **all** of them (stopped ones at 0) and the ego's speed are summed. When the
last waypoint passed (window `window`) lies more than one part beyond the previous checkpoint, the
checkpoint is judged with the sums so far — value = round(ego mean / (`ratio` × traffic mean) × 100, 2),
or 100 when no traffic moved — and the sums restart (that step's speeds count for the next part).
When the route ends beyond `final_fraction` of its length, the last part is judged too. An event is
emitted below 100 % (or at every checkpoint with `event_every_checkpoint`, Bench2Drive).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from carla_bridge.infractions.route_points import RoutePoints, passed_index
from carla_bridge.rules import MinSpeedRule


@dataclass(frozen=True)
class MinSpeedState:
    """Bookkeeping of W egos (`[W]` numpy arrays).

    Attributes:
        index: last waypoint passed; current: route distance of the last checkpoint [m];
        traffic_sum / ego_sum: summed frame mean traffic speed and ego speed [m/s]; points: frames summed.
    """

    index: np.ndarray
    current: np.ndarray
    traffic_sum: np.ndarray
    ego_sum: np.ndarray
    points: np.ndarray


def traffic_mean_speed(speed: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per world the mean speed of its background vehicles (`speed`, `background` `[W, N]`) and
    whether it has any (`[W]` each)."""
    count = background.sum(-1)
    total = np.where(background, speed, 0.0).sum(-1)
    return total / np.maximum(count, 1), count > 0


def checkpoint_value(state: MinSpeedState, w: int, rule: MinSpeedRule) -> float:
    """The value [%] of world `w`'s current checkpoint (`_set_traffic_event`)."""
    n = float(state.points[w])
    traffic = float(state.traffic_sum[w])
    if n > 0 and traffic:
        return round((float(state.ego_sum[w]) / n) / (rule.ratio * (traffic / n)) * 100, 2)
    return 100.0


def emits(value: float, rule: MinSpeedRule) -> bool:
    """Whether a checkpoint of `value` [%] gives an event."""
    return rule.event_every_checkpoint or value < 100.0


def min_speed_update(
    points: RoutePoints,
    location: np.ndarray,
    ego_speed: np.ndarray,
    traffic_speed: np.ndarray,
    has_traffic: np.ndarray,
    state: MinSpeedState,
    rule: MinSpeedRule,
) -> tuple[MinSpeedState, dict[int, float]]:
    """One step for W egos.

    Args:
        points: the route; location: `[W, 2]` ego box centres; ego_speed: `[W]` [m/s];
        traffic_speed / has_traffic: `traffic_mean_speed` of this frame.

    Returns:
        The new state and {world: value [%]} of the checkpoints judged this step.
    """
    index = passed_index(
        points.xy, points.forward, np.ascontiguousarray(location, dtype=np.float64), state.index, int(rule.window)
    )
    reached = points.accum[index] - state.current > points.length / rule.checkpoints
    judged = {int(w): checkpoint_value(state, int(w), rule) for w in np.flatnonzero(reached)}
    current, traffic_sum, ego_sum, count = _accumulate(
        points.accum,
        index,
        reached,
        state.current,
        state.traffic_sum,
        state.ego_sum,
        state.points,
        np.asarray(has_traffic, dtype=np.bool_),
        np.asarray(traffic_speed, dtype=np.float64),
        np.asarray(ego_speed, dtype=np.float64),
    )
    return MinSpeedState(index, current, traffic_sum, ego_sum, count), judged


@nb.njit(cache=True)
def _accumulate(accum, index, reached, current, traffic_sum, ego_sum, points, has, traffic, ego):
    """Restart the sums where a checkpoint was `reached`, then add this frame's speeds where traffic exists."""
    W = index.shape[0]
    cur, ts, es, n = current.copy(), traffic_sum.copy(), ego_sum.copy(), points.copy()
    for w in range(W):
        if reached[w]:
            cur[w], ts[w], es[w], n[w] = accum[index[w]], 0.0, 0.0, 0.0
        if has[w]:
            ts[w] += traffic[w]
            es[w] += ego[w]
            n[w] += 1.0
    return cur, ts, es, n


def min_speed_finish(
    points: RoutePoints, state: MinSpeedState, worlds: np.ndarray, rule: MinSpeedRule
) -> dict[int, float]:
    """{world: value} of the last checkpoint of the ending `worlds` (those beyond `final_fraction`)."""
    return {
        int(w): checkpoint_value(state, int(w), rule)
        for w in np.asarray(worlds).reshape(-1)
        if points.accum[state.index[w]] / points.length > rule.final_fraction
    }
