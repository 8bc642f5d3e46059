"""The contract every world model and simulator meets (DESIGN.md §4).

`Observation` is what a deployed car has: cameras, calibration, odometry, the route. It never
holds ground-truth agents, lights or future poses; those live in `PrivilegedState`, which only the
autopilot, the oracle and the `-gt` baselines may take (their names say so).

Batching: every tensor carries a leading batch dim B (closed loop uses B = 1). Ego-frame tensors
are in the current ego frame (rear axle, x forward, y left).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from agents import AgentStates
from occupancy import GridSpec

# Future steps: T = 6 at 0.5 s (t = 0.5 … 3.0 s); history H = 4 past keyframes at 0.5 s.
HORIZON_STEPS = 6
STEP_SECONDS = 0.5
HISTORY_STEPS = 4


class LightState(IntEnum):
    """State of the traffic light governing the ego's route (index into `Prediction.light_probs`)."""

    RED = 0
    GREEN = 1
    NONE = 2


def _check(
    name: str, t: object, shape: tuple[int | None, ...], dtype: torch.dtype | None = None, finite: bool = True
) -> None:
    """Raise `ValueError` naming `name` unless `t` is a tensor of `shape` (None = any) and dtype."""
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        want = "[" + ",".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} has shape {list(t.shape)}, expected {want}")
    if dtype is not None and t.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {t.dtype}")
    if finite and t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")


@dataclass(frozen=True)
class Observation:
    """Sensor input of one replan step, batched.

    Attributes:
        images: `[B, V, 3, h, w]` uint8, cameras in rig order (CAM_FRONT, CAM_FRONT_RIGHT,
            CAM_FRONT_LEFT, CAM_BACK, CAM_BACK_LEFT, CAM_BACK_RIGHT).
        intrinsics: `[B, V, 3, 3]` pinhole intrinsics at the image resolution (h, w).
        cam_to_ego: `[B, V, 4, 4]` camera (z forward, x right, y down) → ego transforms.
        ego_history: `[B, H+1, 3]` past ego rear-axle poses (x, y, yaw) in the current ego frame at
            t = -H·0.5 … 0 s; the last row is (0, 0, 0).
        speed: `[B]` ego speed [m/s] (odometry).
        ego_pose: `[B, 3]` ego pose (x, y, yaw) in the world frame (localisation), used to warp
            the previous scene latent; never used as a feature that leaks the future.
        route: `[B, R, 2]` route polyline ahead (and a little behind) in the ego frame [m].
        route_valid: `[B, R]` bool.
        timestamp: `[B]` seconds since the start of the run.
        lidar: optional `[B, P, 5]` (x, y, z, intensity, ring) in the ego frame.
    """

    images: Tensor
    intrinsics: Tensor
    cam_to_ego: Tensor
    ego_history: Tensor
    speed: Tensor
    ego_pose: Tensor
    route: Tensor
    route_valid: Tensor
    timestamp: Tensor
    lidar: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.images.shape[0])

    def validate(self) -> Observation:
        _check("Observation.images", self.images, (None, None, 3, None, None), torch.uint8)
        b, v = self.images.shape[:2]
        _check("Observation.intrinsics", self.intrinsics, (b, v, 3, 3), torch.float32)
        _check("Observation.cam_to_ego", self.cam_to_ego, (b, v, 4, 4), torch.float32)
        _check("Observation.ego_history", self.ego_history, (b, None, 3), torch.float32)
        _check("Observation.speed", self.speed, (b,), torch.float32)
        _check("Observation.ego_pose", self.ego_pose, (b, 3), torch.float32)
        _check("Observation.route", self.route, (b, None, 2), torch.float32)
        _check("Observation.route_valid", self.route_valid, (b, self.route.shape[1]), torch.bool)
        _check("Observation.timestamp", self.timestamp, (b,), torch.float32)
        if self.lidar is not None:
            _check("Observation.lidar", self.lidar, (b, None, 5), torch.float32)
        return self

    def to(self, device: torch.device | str) -> Observation:
        return Observation(**{k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()})


@dataclass(frozen=True)
class PrivilegedState:
    """Ground truth a deployed car does not have. Only the autopilot, the oracle and `-gt`
    baselines take it; it is never part of `Observation`.

    Attributes:
        agents: `[B, A]` true agent states in the current ego frame.
        light_state: `[B]` int64 `LightState` of the light governing the ego's route.
        light_distance: `[B]` distance [m] along the route to that light's stop line (inf if none).
    """

    agents: AgentStates
    light_state: Tensor
    light_distance: Tensor

    def validate(self) -> PrivilegedState:
        self.agents.validate()
        b = self.agents.batch_shape[0]
        _check("PrivilegedState.light_state", self.light_state, (b,), torch.int64)
        _check("PrivilegedState.light_distance", self.light_distance, (b,), torch.float32, finite=False)
        return self


@dataclass
class SceneState:
    """What `encode` distils from an observation (and the previous scene state), once per replan.

    Attributes:
        agents: `[B, A]` the model's estimate of the agents now, in the ego frame (detections; or
            ground truth for `-gt` baselines).
        speed: `[B]` ego speed [m/s].
        ego_pose: `[B, 3]` world pose at encode time (to warp this state into the next frame).
        route: `[B, R, 2]`, route_valid `[B, R]`: the route in the ego frame.
        timestamp: `[B]` seconds.
        latent: optional `[B, C, X, Y]` BEV latent of a learned model.
        extras: model-specific tensors (each with leading B).
    """

    agents: AgentStates
    speed: Tensor
    ego_pose: Tensor
    route: Tensor
    route_valid: Tensor
    timestamp: Tensor
    latent: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def from_observation(
        cls,
        obs: Observation,
        agents: AgentStates,
        latent: Tensor | None = None,
        extras: dict[str, Tensor] | None = None,
    ) -> SceneState:
        """A scene state that carries the observation's odometry, route and time, with `agents` `[B, A]`
        (detections, or ground truth for `-gt` baselines) and an optional latent; validated."""
        return cls(
            agents=agents,
            speed=obs.speed,
            ego_pose=obs.ego_pose,
            route=obs.route,
            route_valid=obs.route_valid,
            timestamp=obs.timestamp,
            latent=latent,
            extras=dict(extras or {}),
        ).validate()

    @property
    def batch_size(self) -> int:
        return int(self.speed.shape[0])

    def validate(self) -> SceneState:
        b = self.batch_size
        self.agents.validate()
        if self.agents.batch_shape[0] != b:
            raise ValueError(f"SceneState.agents has batch {self.agents.batch_shape[0]}, expected {b}")
        _check("SceneState.speed", self.speed, (b,), torch.float32)
        _check("SceneState.ego_pose", self.ego_pose, (b, 3), torch.float32)
        _check("SceneState.route", self.route, (b, None, 2), torch.float32)
        _check("SceneState.route_valid", self.route_valid, (b, self.route.shape[1]), torch.bool)
        _check("SceneState.timestamp", self.timestamp, (b,), torch.float32)
        if self.latent is not None:
            _check("SceneState.latent", self.latent, (b, None, None, None), finite=True)
        return self


@dataclass
class Prediction:
    """A world model's future for N candidate plans, batched over B scenes.

    Attributes:
        grid: BEV grid of `obstacle_prob`/`drivable_prob` (only x, y of the spec are used).
        obstacle_prob: `[B, N, T, X, Y]` probability that a cell is occupied by anything the ego
            must not touch (the ego itself excluded), at t = 0.5·(1..T) s.
        drivable_prob: `[B, X, Y]` probability that a cell is drivable.
        light_probs: `[B, 3]` (red, green, none) for the light governing the route (`LightState`).
        light_distance: `[B]` distance [m] along the route to that light's stop line (inf if none).
        agent_trajs: `[B, N, A, K, T, 3]` agent futures (x, y, yaw) in the ego frame.
        agent_mode_probs: `[B, N, A, K]` mode probabilities (sum to 1 over K for valid agents).
        agent_valid: `[B, A]` bool.
        agent_size: `[B, A, 3]` (length, width, height) [m].
        agent_cls: `[B, A]` int64 `AgentClass`.
        decode_semantics: optional callable `(plan_index [B] int64) -> [B, T, X, Y, Z]` uint8 Occ3D
            labels for the chosen plan of each scene, on `semantics_grid`.
        semantics_grid: the grid of `decode_semantics` outputs.
    """

    grid: GridSpec
    obstacle_prob: Tensor
    drivable_prob: Tensor
    light_probs: Tensor
    light_distance: Tensor
    agent_trajs: Tensor
    agent_mode_probs: Tensor
    agent_valid: Tensor
    agent_size: Tensor
    agent_cls: Tensor
    decode_semantics: Callable[[Tensor], Tensor] | None = None
    semantics_grid: GridSpec | None = None

    def validate(self, finite: bool = True) -> Prediction:
        """Check shapes/dtypes; with `finite`, also that no value is NaN/inf (the planner calls it
        with `finite=False` and rejects non-finite predictions itself)."""
        _check("Prediction.obstacle_prob", self.obstacle_prob, (None, None, None, *self.grid.bev_shape), finite=finite)
        b, n, t = self.obstacle_prob.shape[:3]
        _check("Prediction.drivable_prob", self.drivable_prob, (b, *self.grid.bev_shape), finite=finite)
        _check("Prediction.light_probs", self.light_probs, (b, 3), finite=finite)
        _check("Prediction.light_distance", self.light_distance, (b,), torch.float32, finite=False)
        _check("Prediction.agent_trajs", self.agent_trajs, (b, n, None, None, t, 3), finite=finite)
        a, k = self.agent_trajs.shape[2], self.agent_trajs.shape[3]
        _check("Prediction.agent_mode_probs", self.agent_mode_probs, (b, n, a, k), finite=finite)
        _check("Prediction.agent_valid", self.agent_valid, (b, a), torch.bool)
        _check("Prediction.agent_size", self.agent_size, (b, a, 3), finite=finite)
        _check("Prediction.agent_cls", self.agent_cls, (b, a), torch.int64)
        return self

    def is_finite(self) -> Tensor:
        """`[B]` bool: every float field of that scene is finite (light_distance may be inf)."""
        b = self.obstacle_prob.shape[0]
        ok = torch.ones(b, dtype=torch.bool, device=self.obstacle_prob.device)
        for t in (
            self.obstacle_prob,
            self.drivable_prob,
            self.light_probs,
            self.agent_trajs,
            self.agent_mode_probs,
            self.agent_size,
        ):
            ok &= torch.isfinite(t.reshape(b, -1)).all(dim=1)
        ok &= ~torch.isnan(self.light_distance)
        return ok


@runtime_checkable
class WorldModel(Protocol):
    """Anything that can encode an observation and roll candidate ego plans forward."""

    name: str

    def encode(self, obs: Observation, prev: SceneState | None = None) -> SceneState:
        """Distil `obs` (fusing `prev`, warped by ego motion) into a scene state. Runs at the replan rate."""
        ...

    def rollout(self, scene: SceneState, plans: Tensor) -> Prediction:
        """Predict the future under each plan. `plans`: `[B, N, T, 3]` (x, y, yaw) of the rear axle
        at t = 0.5·(1..T) s in the current ego frame. One batched pass over N (no loop over plans)."""
        ...


def validate_plans(plans: Tensor, batch_size: int | None = None) -> Tensor:
    """Check a plan tensor `[B, N, T, 3]` (finite float32); return it."""
    _check("plans", plans, (batch_size, None, None, 3), torch.float32)
    return plans
