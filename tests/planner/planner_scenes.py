"""Hand-made planner scenes shared by the planner tests (a straight two-lane road along +x)."""

from __future__ import annotations

import math

import torch

from agents import AgentClass, AgentStates
from planner import LightState, Observation, PrivilegedState


def observation(speed: float = 8.0, b: int = 1) -> Observation:
    """Ego on a straight route along +x (points every 1 m from -10 to 120 m)."""
    xs = torch.arange(-10.0, 121.0)
    route = torch.stack([xs, torch.zeros_like(xs)], -1)[None].expand(b, -1, -1).clone()
    return Observation(
        images=torch.zeros(b, 6, 3, 8, 16, dtype=torch.uint8),
        intrinsics=torch.eye(3).expand(b, 6, 3, 3).clone(),
        cam_to_ego=torch.eye(4).expand(b, 6, 4, 4).clone(),
        ego_history=torch.zeros(b, 5, 3),
        speed=torch.full((b,), speed),
        ego_pose=torch.zeros(b, 3),
        route=route,
        route_valid=torch.ones(route.shape[:2], dtype=torch.bool),
        timestamp=torch.zeros(b),
    ).validate()


def agents(*specs: tuple[float, float, float, float, AgentClass]) -> AgentStates:
    """Agents `[1, A]` from (x, y, yaw, speed, class); cars 4.5 × 1.9 m, pedestrians 0.6 × 0.6 m."""
    size = [[0.6, 0.6, 1.7] if c == AgentClass.PEDESTRIAN else [4.5, 1.9, 1.5] for *_, c in specs]
    return AgentStates.create(
        xy=torch.tensor([[[x, y] for x, y, *_ in specs]]),
        yaw=torch.tensor([[yaw for _, _, yaw, *_ in specs]]),
        speed=torch.tensor([[v for *_, v, _ in specs]]),
        size=torch.tensor([size]),
        cls=torch.tensor([[int(c) for *_, c in specs]]),
    )


def privileged(ag: AgentStates, light: LightState = LightState.NONE, distance: float = math.inf) -> PrivilegedState:
    return PrivilegedState(
        agents=ag,
        light_state=torch.tensor([int(light)]),
        light_distance=torch.tensor([distance], dtype=torch.float32),
    ).validate()
