"""The ego's route as the lite simulator sees it: the polyline with the lane width and speed limit at
each point, the lanes the ego may use, the stop lines of the lights and stop signs on it, the time
budget, what the criteria need (`carla_bridge.infractions.context`); and the route ahead of a progress."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from carla_bridge.infractions.context import CriteriaContext, criteria_context
from carla_bridge.infractions.route_timeout import full_route_budget
from carla_bridge.rules import RuleSet, load_rules


@dataclass(frozen=True)
class RouteData:
    """The ego's route, shared by all worlds (float64 tensors).

    Attributes:
        xy: `[R, 2]` polyline; s `[R]` arc length; width `[R]` lane width and speed_limit `[R]` [m/s]
            of the lane at each point.
        length: route length [m].
        lanes: lane ids the ego may use (route lanes and their same-direction neighbours).
        light_s / light_head: `[Hr]` stop-line arc lengths and head ids of lights on the route.
        stop_s: `[Sr]` stop-sign line arc lengths on the route; stop_sign `[Sr]` their `town.stop_signs` index.
        timeout: the most time a run of the route can get (its route-timeout budget driven to the end) [s].
        criteria: the criteria's view of the route and town.
    """

    xy: Tensor
    s: Tensor
    width: Tensor
    speed_limit: Tensor
    length: float
    lanes: frozenset[int]
    light_s: Tensor
    light_head: Tensor
    stop_s: Tensor
    stop_sign: Tensor
    timeout: float
    criteria: CriteriaContext


def _nearest_on(point_lane: np.ndarray, xy: np.ndarray, lane_id: int, stop_xy: np.ndarray) -> int | None:
    """Index of the route point on `lane_id` nearest to `stop_xy` if within 3 m, else None."""
    on = np.flatnonzero(point_lane == lane_id)
    if not len(on):
        return None
    k = on[np.argmin(np.linalg.norm(xy[on] - stop_xy[None], axis=1))]
    return int(k) if np.linalg.norm(xy[k] - stop_xy) < 3.0 else None


def route_data(town, plan, rules: RuleSet | None = None) -> RouteData:
    """`RouteData` of a `RoutePlan` (polyline, s, point_lane, lane_ids) on `town`, judged under `rules`
    (default leaderboard-2.0)."""
    rules = rules or load_rules()
    xy = np.asarray(plan.polyline, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 2:
        raise ValueError(f"route polyline must have shape [R>=2, 2], got {list(xy.shape)}")
    s = np.asarray(plan.s, dtype=np.float64)
    length = float(s[-1])
    if not length > 1.0:
        raise ValueError(f"route is too short ({length:.2f} m)")
    point_lane = np.asarray(plan.point_lane, dtype=np.int64)
    lanes = {int(i) for i in plan.lane_ids}
    for i in list(lanes):
        ln = town.lanes[i]
        lanes.update(j for j in (ln.left, ln.right) if j is not None)
    light_s, light_head = [], []
    heads = [h for g in town.traffic_lights for h in g.heads]
    for head_index, h in enumerate(heads):
        for lane_id, stop_xy in zip(h.lane_ids, np.asarray(h.stop_xy).reshape(-1, 2)):
            k = _nearest_on(point_lane, xy, lane_id, stop_xy)
            if k is not None:
                light_s.append(s[k])
                light_head.append(head_index)
    stop_s, stop_sign = [], []
    for index, st in enumerate(town.stop_signs):
        k = _nearest_on(point_lane, xy, st.lane_id, np.asarray(st.stop_xy))
        if k is not None:
            stop_s.append(s[k])
            stop_sign.append(index)
    context = criteria_context(town, plan, rules)
    f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64).reshape(-1))  # noqa: E731
    return RouteData(
        xy=torch.as_tensor(xy),
        s=f(s),
        width=f([town.lanes[int(i)].width for i in point_lane]),
        speed_limit=f([town.lanes[int(i)].speed_limit for i in point_lane]),
        length=length,
        lanes=frozenset(lanes),
        light_s=f(light_s),
        light_head=torch.as_tensor(np.array(light_head, dtype=np.int64).reshape(-1)),
        stop_s=f(stop_s),
        stop_sign=torch.as_tensor(np.array(stop_sign, dtype=np.int64).reshape(-1)),
        timeout=full_route_budget(context.points, rules.route_timeout),
        criteria=context,
    )


def route_ahead(
    r: RouteData, progress: Tensor, points: int, spacing: float, start: float = 0.0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The route ahead of each world's rear-axle `progress [W]`.

    Args:
        points: K; spacing: [m] between points; start: arc length of the first point from the progress [m].

    Returns:
        float32 xy `[W, K, 2]`, yaw `[W, K]`, speed limit `[W, K]`, valid `[W, K]` (False past the route's end).
    """
    q = progress[:, None] + start + spacing * torch.arange(points, dtype=torch.float64)  # [W, K]
    valid = q <= r.length
    qc = q.clamp(max=r.length)
    R = r.s.shape[0]
    i1 = torch.searchsorted(r.s, qc.contiguous()).clamp(1, R - 1)
    i0 = i1 - 1
    s0, s1 = r.s[i0], r.s[i1]
    frac = ((qc - s0) / (s1 - s0).clamp(min=1e-6)).clamp(0.0, 1.0)
    a, b = r.xy[i0], r.xy[i1]
    d = b - a
    xy = a + d * frac[..., None]
    yaw = torch.atan2(d[..., 1], d[..., 0])
    return xy.float(), yaw.float(), r.speed_limit[i0].float(), valid
