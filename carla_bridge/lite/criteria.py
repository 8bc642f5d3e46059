"""The infraction criteria of the lite simulator, judged after each step for all W worlds: route
progress, collisions, red lights, stop signs, driving outside the route lanes, minimum speed, and
the terminal criteria (blocked, route deviation, timeout, completion). Each criterion's rule is a pure
function of `carla_bridge.infractions`; here they read the new `WorldState` and turn into `Event`s."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numba as nb
import numpy as np
import torch
from torch import Tensor

from agents import EGO, AgentClass
from carla_bridge.backend import Event
from carla_bridge.infractions import (
    blocked_update,
    collision_update,
    min_speed_percentage,
    outside_lanes_update,
    outside_percentage,
    red_light_crossings,
    route_deviation,
    stop_sign_update,
)
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.lights import HeadState
from carla_bridge.lite.population import PED_SIZE
from carla_bridge.lite.route import RouteData
from carla_bridge.lite.state import RouteState, WorldState
from carla_bridge.lite.step import StepInfo
from carla_bridge.lite.views import agent_boxes
from carla_bridge.progress import FRONT, project_progress, route_completion
from carla_bridge.scoring import InfractionKind

MIN_SPEED_CHECKPOINTS = 10
TRAFFIC_RADIUS = 50.0
"""Moving vehicles this close to the ego are the minimum-speed criterion's reference traffic [m]."""
_EGO_REACH = 0.5 * math.hypot(EGO.length, EGO.width)


def update_progress(
    route: RouteData, state: RouteState, ego_pose: Tensor, first: bool = False
) -> tuple[RouteState, Tensor]:
    """Project the egos `ego_pose [W, 3]` on the route (`carla_bridge.progress`); returns the new
    route state (progress, lateral) and the index `[W]` of the segment each projects on."""
    prog, lat, seg = project_progress(
        route.xy.numpy(), route.s.numpy(), ego_pose[:, :2].contiguous().numpy(), state.progress.numpy(), not first
    )
    return replace(state, progress=torch.from_numpy(prog), lateral=torch.from_numpy(lat)), torch.from_numpy(seg)


def completion(route: RouteData, progress: Tensor) -> Tensor:
    """`[W]` route completion [%] of rear-axle `progress [W]` (`carla_bridge.progress.route_completion`)."""
    return torch.from_numpy(route_completion(progress.numpy(), route.length))


@nb.njit(cache=True)
def _near_ego(ego_box, vxy, vsize, vvalid, vspeed, pxy, pvalid, sbox, svalid, ped_radius, traffic_radius):
    """Per world: which agents' bounding circles touch the ego box's (`[W, N + P + S]` bool, vehicles,
    pedestrians, statics), and the count and summed speed of the moving vehicles (> 0.1 m/s) within
    `traffic_radius` of the ego (`[W]` each)."""
    W, N = vvalid.shape
    P, S = pvalid.shape[1], svalid.shape[1]
    close = np.zeros((W, N + P + S), dtype=np.bool_)
    count = np.zeros(W)
    total = np.zeros(W)
    for w in range(W):
        ex, ey = ego_box[w, 0], ego_box[w, 1]
        for n in range(N):
            if not vvalid[w, n]:
                continue
            d2 = (vxy[w, n, 0] - ex) ** 2 + (vxy[w, n, 1] - ey) ** 2
            r = 0.5 * math.hypot(vsize[w, n, 0], vsize[w, n, 1]) + _EGO_REACH
            close[w, n] = d2 <= r * r
            if d2 < traffic_radius * traffic_radius and vspeed[w, n] > 0.1:
                count[w] += 1.0
                total[w] += vspeed[w, n]
        for p in range(P):
            r = ped_radius + _EGO_REACH
            close[w, N + p] = pvalid[w, p] and (pxy[w, p, 0] - ex) ** 2 + (pxy[w, p, 1] - ey) ** 2 <= r * r
        for k in range(S):
            r = 0.5 * math.hypot(sbox[w, k, 3], sbox[w, k, 4]) + _EGO_REACH
            close[w, N + P + k] = svalid[w, k] and (sbox[w, k, 0] - ex) ** 2 + (sbox[w, k, 1] - ey) ** 2 <= r * r
    return close, count, total


class _Emitter:
    """Collects the events of one step (only for worlds whose route had not ended before it)."""

    def __init__(self, active: Tensor, time: float, ego_xy: Tensor) -> None:
        self.active, self.time, self.ego_xy = active, time, ego_xy
        self.events: list[Event] = []

    def __call__(
        self,
        kind: InfractionKind,
        mask: Tensor,
        others: Tensor | None = None,
        details: Callable[[int, int], dict] | None = None,
    ) -> None:
        mask = mask & (self.active[:, None] if mask.dim() == 2 else self.active)
        if not bool(mask.any()):
            return
        for row in mask.nonzero().tolist():
            w, a = row[0], (row[1] if len(row) > 1 else -1)
            ids = () if others is None else (int(others[w, a]),)
            loc = (float(self.ego_xy[w, 0]), float(self.ego_xy[w, 1]))
            self.events.append(Event(kind.value, self.time, loc, ids, details(w, a) if details else {}, world=w))


def judge(
    prev: WorldState, state: WorldState, info: StepInfo, route: RouteData, cfg: LiteConfig, on_allowed_lane
) -> tuple[WorldState, list[Event]]:
    """Judge one step: update the route bookkeeping of `state` (after the step from `prev`) and emit
    the step's events.

    Args:
        on_allowed_lane: `(ego_pose [K, 3]) -> [K]` bool, the ego centre lies on a same-direction lane of
            the route (asked only for egos off the route's own lane).
    """
    W = state.num_worlds
    r0 = prev.route
    active = ~r0.done
    ego_xy, speed = state.ego.pose[:, :2], state.ego.speed
    emit = _Emitter(active, float(state.time[0]), ego_xy)
    rs, seg = update_progress(route, r0, state.ego.pose)
    prev_front, front = r0.progress + FRONT, rs.progress + FRONT
    # collisions (the exact box test only where a bounding circle is close: same result, fewer ops)
    v, p, s = state.vehicles, state.pedestrians, state.statics
    ego_box = info.ego_box
    close, traffic_count, traffic_sum = _near_ego(
        ego_box.numpy(),
        v.xy.numpy(),
        v.size.numpy(),
        v.valid.numpy(),
        v.speed.numpy(),
        p.xy.numpy(),
        p.valid.numpy(),
        s.box.numpy(),
        s.valid.numpy(),
        0.5 * math.hypot(*PED_SIZE[:2]),
        TRAFFIC_RADIUS,
    )
    in_contact = rs.in_contact
    if close.any() or bool(in_contact.any()):
        boxes, _, cls, ids, is_static = agent_boxes(state)
        contact, new, fault = collision_update(ego_box, speed, boxes, torch.from_numpy(close), in_contact)
        in_contact = contact
        ped = cls == int(AgentClass.PEDESTRIAN)
        kinds = {
            InfractionKind.COLLISION_PEDESTRIAN: ped,
            InfractionKind.COLLISION_STATIC: is_static,
            InfractionKind.COLLISION_VEHICLE: ~ped & ~is_static,
        }
        for kind, m in kinds.items():
            emit(
                kind,
                new & m,
                ids,
                lambda w, a: {
                    "ego_at_fault": bool(fault[w, a]),
                    "ego_speed": round(float(speed[w]), 3),
                    "other_class": AgentClass(int(cls[w, a])).name.lower(),
                },
            )
    # red lights
    if route.light_s.numel():
        red = info.lights[:, route.light_head] == int(HeadState.RED)  # [W, Hr]
        ran = red_light_crossings(prev_front, front, route.light_s[None].expand(W, -1), red, torch.ones_like(red))
        emit(InfractionKind.RED_LIGHT, ran.any(-1), details=lambda w, a: {"stop_line_s": None})
    # stop signs
    stop_stopped, stop_judged = rs.stop_stopped, rs.stop_judged
    if route.stop_s.numel():
        sv = torch.ones(W, route.stop_s.shape[0], dtype=torch.bool)
        stop_stopped, stop_judged, vio = stop_sign_update(
            front, speed, route.stop_s[None].expand(W, -1), sv, stop_stopped, stop_judged
        )
        emit(InfractionKind.STOP_SIGN, vio.any(-1))
    # outside route lanes
    inside = rs.lateral <= 0.5 * route.width[seg] + 0.6
    if not bool(inside.all()):
        off = (~inside).nonzero().flatten()
        inside = inside.clone()
        inside[off] = torch.as_tensor(on_allowed_lane(state.ego.pose[off]), dtype=torch.bool)
    outside = outside_lanes_update(inside, info.step_distance * active.double(), rs.outside)
    # minimum speed per checkpoint (the moving vehicles within TRAFFIC_RADIUS of the ego)
    cnt, traffic_sum = torch.from_numpy(traffic_count), torch.from_numpy(traffic_sum)
    has = cnt > 0
    zero = torch.zeros_like(speed)
    ms_ego = rs.ms_ego + torch.where(has, speed, zero)
    ms_traffic = rs.ms_traffic + torch.where(has, traffic_sum / cnt.clamp(min=1.0), zero)
    ms_count = rs.ms_count + has.double()
    ms_next = rs.ms_next
    reached = rs.progress >= ms_next.double() * route.length / MIN_SPEED_CHECKPOINTS
    if bool((reached & active).any()):
        pct = min_speed_percentage(ms_ego, ms_traffic, ms_count)
        emit(InfractionKind.MIN_SPEED, reached & (pct < 100.0), details=lambda w, a: {"percentage": float(pct[w])})
        ms_ego, ms_traffic, ms_count = (torch.where(reached, zero, x) for x in (ms_ego, ms_traffic, ms_count))
        ms_next = ms_next + reached.long()
    # terminal criteria
    still, blocked = blocked_update(speed, rs.still, cfg.dt, max_time=cfg.blocked_seconds)
    deviated = route_deviation(rs.lateral, cfg.deviation_distance)
    timeout = state.time >= route.timeout
    complete = completion(route, rs.progress) >= 100.0
    ending = active & (blocked | deviated | timeout | complete)
    if bool(ending.any()):
        emit(InfractionKind.AGENT_BLOCKED, blocked)
        emit(InfractionKind.ROUTE_DEVIATION, deviated)
        emit(InfractionKind.ROUTE_TIMEOUT, timeout & ~blocked & ~deviated)
        pct = outside_percentage(outside, route.length)
        emit(
            InfractionKind.OUTSIDE_ROUTE_LANES, ending & (pct > 0.0), details=lambda w, a: {"percentage": float(pct[w])}
        )
    rs = replace(
        rs,
        in_contact=in_contact,
        stop_stopped=stop_stopped,
        stop_judged=stop_judged,
        outside=outside,
        still=still,
        ms_ego=ms_ego,
        ms_traffic=ms_traffic,
        ms_count=ms_count,
        ms_next=ms_next,
        odometer=rs.odometer + info.step_distance,
        done=r0.done | ending,
    )
    return replace(state, route=rs), emit.events
