"""Reference world models behind the `planner.WorldModel` protocol.

- `EmptyWorldModel` ("empty"): predicts an empty, fully drivable road with no light — the floor
  every real model must beat.
- `ConstantVelocityWorldModel` ("cv" / "cv-gt"): the agents of `SceneState.agents` extrapolated at
  constant velocity and heading, blind to the ego plan (one future broadcast along N). `cv` gets its
  agents from a detector callable on the `Observation`; `cv-gt` takes ground truth through
  `encode_privileged` (its name says so) and also reads the true light state.

Both rasterize agent boxes (cell centre inside the box) into `obstacle_prob` on a forward-shifted BEV
grid (default x ∈ [-20, 80], y ∈ [-40, 40] at 0.5 m), and return the boxes as one-mode agent futures.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from agents import AgentStates
from occupancy import GridSpec
from planner.contracts import (
    LightBelief,
    Observation,
    Prediction,
    PrivilegedState,
    SceneState,
    valid_route_points,
    validate_plans,
)
from planner.proposals import project_on_polyline
from planner.timebase import STEP_SECONDS

PLANNER_BEV_GRID = GridSpec((-20.0, -40.0, -1.0), (80.0, 40.0, 5.4), (0.5, 0.5, 6.4))
"""The planner's forward-shifted BEV risk grid (a 3 s plan at 25 m/s reaches 75 m)."""


def rasterize_boxes(boxes: Tensor, valid: Tensor, grid: GridSpec) -> Tensor:
    """Occupancy of oriented boxes on a BEV grid (a cell is occupied if its centre lies in a box,
    boundary inclusive).

    Args:
        boxes: `[B, T, A, 5]` (x, y, yaw, length, width).
        valid: `[B, A]` bool.
        grid: the BEV grid (x, y used).

    Returns:
        `[B, T, X, Y]` float32 in {0, 1}.
    """
    b, t, a, _ = boxes.shape
    nx, ny = grid.bev_shape
    out = torch.zeros(b, t, nx, ny, dtype=torch.float32, device=boxes.device)
    if a == 0 or not bool(valid.any()):
        return out
    vx, vy = grid.voxel[0], grid.voxel[1]
    radius = 0.5 * float(torch.hypot(boxes[..., 3], boxes[..., 4])[valid[:, None].expand(b, t, a)].max())
    wx, wy = math.ceil(radius / vx) + 1, math.ceil(radius / vy) + 1
    off = torch.stack(
        torch.meshgrid(
            torch.arange(-wx, wx + 1, device=boxes.device),
            torch.arange(-wy, wy + 1, device=boxes.device),
            indexing="ij",
        ),
        -1,
    ).reshape(-1, 2)  # [C, 2]
    cx = torch.floor((boxes[..., 0] - grid.lower[0]) / vx).long()
    cy = torch.floor((boxes[..., 1] - grid.lower[1]) / vy).long()
    ix, iy = cx[..., None] + off[:, 0], cy[..., None] + off[:, 1]  # [B, T, A, C]
    px = grid.lower[0] + (ix.float() + 0.5) * vx - boxes[..., 0:1]
    py = grid.lower[1] + (iy.float() + 0.5) * vy - boxes[..., 1:2]
    c, s = torch.cos(boxes[..., 2:3]), torch.sin(boxes[..., 2:3])
    lon, lat = px * c + py * s, -px * s + py * c
    inside = (lon.abs() <= 0.5 * boxes[..., 3:4]) & (lat.abs() <= 0.5 * boxes[..., 4:5])
    inside &= (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny) & valid[:, None, :, None]
    bi = torch.arange(b, device=boxes.device)[:, None, None, None].expand_as(ix)
    ti = torch.arange(t, device=boxes.device)[None, :, None, None].expand_as(ix)
    out[bi[inside], ti[inside], ix[inside], iy[inside]] = 1.0
    return out


def _light(scene: SceneState) -> LightBelief:
    """The scene's light belief; "no light" for a model that knows none."""
    return scene.light if scene.light is not None else LightBelief.no_light(scene.batch_size, scene.speed.device)


class EmptyWorldModel:
    """Predicts an empty road: no obstacles, everything drivable, no light (the floor)."""

    def __init__(self, grid: GridSpec = PLANNER_BEV_GRID, name: str = "empty") -> None:
        self.grid = grid
        self.name = name

    def encode(self, obs: Observation, prev: SceneState | None = None) -> SceneState:
        """Keep the odometry and route; no agents."""
        return SceneState.from_observation(obs, AgentStates.empty((obs.batch_size,), device=obs.speed.device))

    def rollout(self, scene: SceneState, plans: Tensor) -> Prediction:
        """An empty future for every plan (`plans [B, N, T, 3]`)."""
        validate_plans(plans, scene.batch_size)
        b, n, t, _ = plans.shape
        nx, ny = self.grid.bev_shape
        dev = plans.device
        light = _light(scene)
        return Prediction(
            grid=self.grid,
            obstacle_prob=torch.zeros(b, 1, t, nx, ny, device=dev).expand(b, n, t, nx, ny),
            drivable_prob=torch.ones(b, nx, ny, device=dev),
            light_probs=light.probs,
            light_distance=light.distance,
            agent_trajs=torch.zeros(b, n, 0, 1, t, 3, device=dev),
            agent_mode_probs=torch.zeros(b, n, 0, 1, device=dev),
            agent_valid=torch.zeros(b, 0, dtype=torch.bool, device=dev),
            agent_size=torch.zeros(b, 0, 3, device=dev),
            agent_cls=torch.zeros(b, 0, dtype=torch.int64, device=dev),
        )


class ConstantVelocityWorldModel:
    """Agents extrapolated at constant velocity, blind to the ego plan.

    Args:
        name: "cv" (agents from `detector`) or "cv-gt" (ground truth through `encode_privileged`).
        grid: BEV grid of `obstacle_prob`.
        detector: for "cv": `Observation -> AgentStates [B, A]` in the ego frame (e.g. a learned
            model's detections).
        route_corridor: if set, `drivable_prob` is 1 within this lateral distance [m] of the route
            and 0 elsewhere; else everything is drivable (the model knows no map).
    """

    def __init__(
        self,
        name: str = "cv",
        grid: GridSpec = PLANNER_BEV_GRID,
        detector: Callable[[Observation], AgentStates] | None = None,
        route_corridor: float | None = None,
    ) -> None:
        if name not in ("cv", "cv-gt"):
            raise ValueError(f"name must be 'cv' or 'cv-gt', got {name!r}")
        self.name = name
        self.grid = grid
        self.detector = detector
        self.route_corridor = route_corridor

    @property
    def privileged(self) -> bool:
        """True for the ground-truth variant."""
        return self.name == "cv-gt"

    def encode(self, obs: Observation, prev: SceneState | None = None) -> SceneState:
        """Detect agents with the detector ("cv" only)."""
        if self.privileged:
            raise ValueError("cv-gt reads ground truth: call encode_privileged(obs, privileged, prev)")
        if self.detector is None:
            raise ValueError("cv needs a detector (Observation -> AgentStates) to encode observations")
        return SceneState.from_observation(obs, self.detector(obs))

    def encode_privileged(
        self, obs: Observation, privileged: PrivilegedState, prev: SceneState | None = None
    ) -> SceneState:
        """Take the true agents and light state ("cv-gt" only)."""
        if not self.privileged:
            raise ValueError(f"{self.name} must not read privileged state; use the 'cv-gt' variant")
        privileged.validate()
        light = LightBelief.from_states(privileged.light_state, privileged.light_distance)
        return SceneState.from_observation(obs, privileged.agents, light=light)

    def rollout(self, scene: SceneState, plans: Tensor) -> Prediction:
        """Constant-velocity futures of `scene.agents`, the same for every plan (`plans [B, N, T, 3]`)."""
        validate_plans(plans, scene.batch_size)
        b, n, t, _ = plans.shape
        ag = scene.agents
        a = ag.num_agents
        dev = plans.device
        times = torch.arange(1, t + 1, dtype=torch.float32, device=dev) * STEP_SECONDS
        xy = ag.xy[:, None] + ag.velocity[:, None] * times[None, :, None, None]  # [B, T, A, 2]
        yaw = ag.yaw[:, None].expand(b, t, a)
        boxes = torch.cat([xy, yaw[..., None], ag.size[:, None, :, :2].expand(b, t, a, 2)], -1)  # [B, T, A, 5]
        occ = rasterize_boxes(boxes, ag.valid, self.grid)  # [B, T, X, Y]
        nx, ny = self.grid.bev_shape
        trajs = torch.cat([xy, yaw[..., None]], -1).permute(0, 2, 1, 3)  # [B, A, T, 3]
        light = _light(scene)
        return Prediction(
            grid=self.grid,
            obstacle_prob=occ[:, None].expand(b, n, t, nx, ny),
            drivable_prob=self._drivable(scene),
            light_probs=light.probs,
            light_distance=light.distance,
            agent_trajs=trajs[:, None, :, None].expand(b, n, a, 1, t, 3),
            agent_mode_probs=torch.ones(b, 1, a, 1, device=dev).expand(b, n, a, 1),
            agent_valid=ag.valid,
            agent_size=ag.size,
            agent_cls=ag.cls,
        )

    def _drivable(self, scene: SceneState) -> Tensor:
        b = scene.batch_size
        nx, ny = self.grid.bev_shape
        if self.route_corridor is None:
            return torch.ones(b, nx, ny, device=scene.speed.device)
        centres = self.grid.bev_centers(scene.speed.device).reshape(-1, 2)
        out = []
        for i in range(b):
            pts = valid_route_points(scene.route, scene.route_valid, i)
            _, lat = project_on_polyline(centres, pts)
            out.append((lat.abs() <= self.route_corridor).float().reshape(nx, ny))
        return torch.stack(out)
