"""Read-only views of a lite `WorldState`: every agent as one `AgentStates` (world or ego frame), the
privileged state the autopilot / oracle / `-gt` baselines take, one world's ground truth for the
recorder, the ego's history, and the light governing the route. Views return float32 tensors."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from agents import AgentClass, AgentStates
from agents.se2 import se2_relative, wrap_angle
from carla_bridge.lite.lights import to_light_state
from carla_bridge.lite.population import PED_SIZE
from carla_bridge.lite.route import RouteData
from carla_bridge.lite.state import WorldState
from carla_bridge.progress import FRONT
from planner import LightState, PrivilegedState

PEDESTRIAN_COLOR = (60, 60, 160)
STATIC_COLOR = (230, 120, 20)


def agent_boxes(state: WorldState) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Every agent in the order vehicles, pedestrians, statics (`A = N + P + S`): boxes `[W, A, 5]`
    float64 (x, y, yaw, length, width), valid `[W, A]`, `AgentClass` `[W, A]`, track ids `[W, A]`,
    is_static `[W, A]` bool."""
    v, p, s = state.vehicles, state.pedestrians, state.statics
    W, P = p.valid.shape
    ped_size = torch.tensor(PED_SIZE[:2], dtype=torch.float64).expand(W, P, 2)
    boxes = torch.cat(
        [
            torch.cat([v.xy, v.yaw[..., None], v.size[..., :2]], -1),
            torch.cat([p.xy, p.yaw[..., None], ped_size], -1),
            s.box,
        ],
        1,
    )
    valid = torch.cat([v.valid, p.valid, s.valid], 1)
    cls = torch.cat([v.cls, torch.full_like(p.track_id, int(AgentClass.PEDESTRIAN)), s.cls], 1)
    ids = torch.cat([v.track_id, p.track_id, s.track_id], 1)
    is_static = torch.cat([torch.zeros_like(v.valid), torch.zeros_like(p.valid), torch.ones_like(s.valid)], 1)
    return boxes, valid, cls, ids, is_static


def agents_world(state: WorldState) -> AgentStates:
    """Every agent (vehicles, pedestrians, statics) in the world frame, `[W, A]` box centres; z is the
    box centre's height above the lane surface."""
    v, p, s = state.vehicles, state.pedestrians, state.statics
    boxes, valid, cls, ids, _ = agent_boxes(state)
    W, P = p.valid.shape
    size = torch.cat(
        [
            v.size,
            torch.tensor(PED_SIZE, dtype=torch.float64).expand(W, P, 3),
            torch.cat([s.box[..., 3:5], s.height[..., None]], -1),
        ],
        1,
    )
    ground = torch.cat([v.z, torch.zeros_like(p.u), torch.zeros_like(s.height)], 1)
    speed = torch.cat([v.speed, p.speed, torch.zeros_like(s.height)], 1)
    return AgentStates.create(
        xy=boxes[..., :2].float(),
        z=(ground + 0.5 * size[..., 2]).float(),
        yaw=wrap_angle(boxes[..., 2]).float(),
        speed=speed.float(),
        size=size.float(),
        cls=cls,
        track_id=ids,
        valid=valid,
    )


def route_light(state: WorldState, route: RouteData, head_states: Tensor) -> tuple[Tensor, Tensor]:
    """The next light on the route ahead of the ego's front: (`LightState` `[W]` int64 and the distance
    `[W]` float32 [m] to its stop line, inf and `NONE` if there is none)."""
    W = state.num_worlds
    if route.light_s.numel() == 0:
        return torch.full((W,), int(LightState.NONE), dtype=torch.int64), torch.full((W,), math.inf)
    ahead = route.light_s[None] - (state.route.progress + FRONT)[:, None]  # [W, Hr]
    ahead = torch.where(ahead > -0.5, ahead, torch.full_like(ahead, math.inf))
    k = ahead.argmin(-1)
    dist = ahead.gather(1, k[:, None]).squeeze(1)
    head = head_states[:, route.light_head].gather(1, k[:, None]).squeeze(1)
    light = torch.where(torch.isfinite(dist), to_light_state(head), int(LightState.NONE))
    return light, dist.float()


def privileged(state: WorldState, route: RouteData, head_states: Tensor) -> PrivilegedState:
    """`planner.PrivilegedState` `[W]`: every agent in each ego frame, the route's light and its distance."""
    a = agents_world(state)
    pose = state.ego.pose.float()
    rel = se2_relative(pose[:, None, :].expand(-1, a.xy.shape[1], 3), torch.cat([a.xy, a.yaw[..., None]], -1))
    c, s = torch.cos(pose[:, 2])[:, None], torch.sin(pose[:, 2])[:, None]
    vel = torch.stack(
        [c * a.velocity[..., 0] + s * a.velocity[..., 1], -s * a.velocity[..., 0] + c * a.velocity[..., 1]], -1
    )
    agents = AgentStates(
        xy=rel[..., :2].contiguous(),
        z=a.z,
        yaw=rel[..., 2].contiguous(),
        speed=a.speed,
        velocity=vel,
        size=a.size,
        cls=a.cls,
        track_id=a.track_id,
        valid=a.valid,
    )
    light, dist = route_light(state, route, head_states)
    return PrivilegedState(agents=agents, light_state=light, light_distance=dist).validate()


def agent_colors(state: WorldState, world: int) -> Tensor:
    """`[A, 3]` uint8 colours of world `world`'s agents (vehicles' own, pedestrians and props fixed)."""
    n_ped, n_st = state.pedestrians.valid.shape[1], state.statics.valid.shape[1]
    return torch.cat(
        [
            state.vehicles.color[world],
            torch.tensor([PEDESTRIAN_COLOR], dtype=torch.int64).expand(n_ped, 3),
            torch.tensor([STATIC_COLOR], dtype=torch.int64).expand(n_st, 3),
        ]
    ).to(torch.uint8)


def parked_mask(state: WorldState, world: int) -> Tensor:
    """`[A]` bool: the agent is a parked vehicle (never moves)."""
    n = state.vehicles.valid.shape[1] + state.pedestrians.valid.shape[1]
    out = torch.zeros(n + state.statics.valid.shape[1], dtype=torch.bool)
    out[n:] = state.statics.parked[world]
    return out


def ego_history(state: WorldState, keyframes: int, steps_per_keyframe: int) -> Tensor:
    """`[W, H+1, 3]` float32 past rear-axle poses every keyframe (the last = now) in each current ego frame."""
    buf = state.ego.history
    idx = torch.arange(buf.shape[1] - 1 - keyframes * steps_per_keyframe, buf.shape[1], steps_per_keyframe)
    past = buf[:, idx].float()
    now = state.ego.pose.float()
    return se2_relative(now[:, None].expand_as(past), past)
