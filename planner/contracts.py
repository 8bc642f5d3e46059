"""The contract every world model and simulator meets (DESIGN.md §4).

`Observation` is what a deployed car has: cameras, calibration, odometry, the route. It never
holds ground-truth agents, lights or future poses; those live in `PrivilegedState`, which only the
autopilot, the oracle and the `-gt` baselines may take (their names say so).

Batching: every tensor carries a leading batch dim B (closed loop uses B = 1). Ego-frame tensors
are in the current ego frame (rear axle, x forward, y left).

Every type is a frozen dataclass: nothing changes a scene state or a prediction after it is made
(derive a changed copy with `dataclasses.replace`). What the planner reads from a scene is typed
(`light`, `ego_plans`); a model's own per-scene tensors are its `SceneFeatures` dataclass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from agents import AgentStates
from agents.checks import check_tensor
from occupancy import GridSpec
from planner.timebase import HISTORY_STEPS, HORIZON_STEPS, STEP_SECONDS


class LightState(IntEnum):
    """State of the traffic light governing the ego's route (index into `Prediction.light_probs`)."""

    RED = 0
    GREEN = 1
    NONE = 2


CAMERA_COUNTS: dict[int, str] = {
    6: "the nuScenes rig",
    4: "the four-camera subset CAM_FRONT, CAM_FRONT_RIGHT, CAM_FRONT_LEFT, CAM_BACK (leaderboard qualifier)",
    0: "no cameras (world models that read no images)",
}
"""The camera sets an `Observation` may carry, in rig order (any other count is refused)."""


def check_camera_count(v: int, what: str = "Observation.images") -> None:
    """The one check of a camera count: `ValueError` naming `what` unless `v` is in `CAMERA_COUNTS`."""
    if v not in CAMERA_COUNTS:
        known = "; ".join(f"{k}: {name}" for k, name in CAMERA_COUNTS.items())
        raise ValueError(f"{what} has {v} cameras; expected one of the declared camera sets ({known})")


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
        check_tensor("Observation.images", self.images, (None, None, 3, None, None), torch.uint8)
        b, v = self.images.shape[:2]
        check_camera_count(v)
        check_tensor("Observation.intrinsics", self.intrinsics, (b, v, 3, 3), torch.float32)
        check_tensor("Observation.cam_to_ego", self.cam_to_ego, (b, v, 4, 4), torch.float32)
        check_tensor("Observation.ego_history", self.ego_history, (b, HISTORY_STEPS + 1, 3), torch.float32)
        check_tensor("Observation.speed", self.speed, (b,), torch.float32)
        check_tensor("Observation.ego_pose", self.ego_pose, (b, 3), torch.float32)
        check_tensor("Observation.route", self.route, (b, None, 2), torch.float32)
        check_tensor("Observation.route_valid", self.route_valid, (b, self.route.shape[1]), torch.bool)
        check_tensor("Observation.timestamp", self.timestamp, (b,), torch.float32)
        if self.lidar is not None:
            check_tensor("Observation.lidar", self.lidar, (b, None, 5), torch.float32)
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
        check_tensor("PrivilegedState.light_state", self.light_state, (b,), torch.int64)
        check_tensor("PrivilegedState.light_distance", self.light_distance, (b,), torch.float32, finite=False)
        return self


@dataclass(frozen=True)
class LightBelief:
    """What a scene state holds about the traffic light governing the ego's route.

    Attributes:
        probs: `[B, 3]` (red, green, none) probabilities, indexed by `LightState` (one-hot when
            read from privileged state).
        distance: `[B]` distance [m] along the route to that light's stop line (inf if none).
    """

    probs: Tensor
    distance: Tensor

    @classmethod
    def from_states(cls, state: Tensor, distance: Tensor) -> LightBelief:
        """A certain belief from `[B]` int64 `LightState`s and their `[B]` distances (privileged state)."""
        return cls(torch.nn.functional.one_hot(state.long(), len(LightState)).float(), distance.float())

    @classmethod
    def no_light(cls, batch_size: int, device: torch.device | str | None = None) -> LightBelief:
        """Certainly no light ahead: probs (0, 0, 1), distance inf."""
        probs = torch.zeros(batch_size, len(LightState), device=device)
        probs[:, LightState.NONE] = 1.0
        return cls(probs, torch.full((batch_size,), float("inf"), device=device))

    def states(self) -> Tensor:
        """`[B]` int64 most likely `LightState`."""
        return self.probs.argmax(-1)

    def validate(self, batch_size: int) -> LightBelief:
        check_tensor("LightBelief.probs", self.probs, (batch_size, len(LightState)), torch.float32)
        check_tensor("LightBelief.distance", self.distance, (batch_size,), torch.float32, finite=False)
        if bool(torch.isnan(self.distance).any()):
            raise ValueError("LightBelief.distance contains NaN")
        return self


@runtime_checkable
class SceneFeatures(Protocol):
    """A model's own per-scene tensors (e.g. `drivewm.model.DriveSceneFeatures`): a frozen
    dataclass the model defines, reads back in `rollout`, and checks against the batch size."""

    def validate(self, batch_size: int) -> SceneFeatures: ...


@dataclass(frozen=True)
class SceneState:
    """What `encode` distils from an observation (and the previous scene state), once per replan.
    Frozen: derive a changed copy with `dataclasses.replace`.

    Attributes:
        agents: `[B, A]` the model's estimate of the agents now, in the ego frame (detections; or
            ground truth for `-gt` baselines).
        speed: `[B]` ego speed [m/s].
        ego_pose: `[B, 3]` world pose at encode time (to warp this state into the next frame).
        route: `[B, R, 2]`, route_valid `[B, R]`: the route in the ego frame.
        timestamp: `[B]` seconds.
        latent: optional `[B, C, X, Y]` BEV latent of a learned model.
        light: optional belief about the light governing the route (a learned head's estimate, or
            privileged truth for `-gt` baselines and the oracle); None = the model knows nothing.
        ego_plans: optional `[B, M, T, 3]` the model's own ego plans (x, y, yaw), offered to the
            planner as learned proposals.
        features: optional model-specific tensors (`SceneFeatures`), opaque to the planner.
    """

    agents: AgentStates
    speed: Tensor
    ego_pose: Tensor
    route: Tensor
    route_valid: Tensor
    timestamp: Tensor
    latent: Tensor | None = None
    light: LightBelief | None = None
    ego_plans: Tensor | None = None
    features: SceneFeatures | None = None

    @classmethod
    def from_observation(
        cls,
        obs: Observation,
        agents: AgentStates,
        latent: Tensor | None = None,
        *,
        light: LightBelief | None = None,
        ego_plans: Tensor | None = None,
        features: SceneFeatures | None = None,
        extras: Mapping[str, Tensor] | None = None,
    ) -> SceneState:
        """A scene state that carries the observation's odometry, route and time, with `agents` `[B, A]`
        (detections, or ground truth for `-gt` baselines) and the optional typed parts; validated.

        `extras` is transitional (for callers not yet on the typed fields): only the keys
        `light_state` + `light_distance` (→ `light`) are accepted."""
        if extras:
            light = _light_from_extras(extras)
        return cls(
            agents=agents,
            speed=obs.speed,
            ego_pose=obs.ego_pose,
            route=obs.route,
            route_valid=obs.route_valid,
            timestamp=obs.timestamp,
            latent=latent,
            light=light,
            ego_plans=ego_plans,
            features=features,
        ).validate()

    @property
    def batch_size(self) -> int:
        return int(self.speed.shape[0])

    @property
    def extras(self) -> Mapping[str, Tensor]:
        """Transitional read-only view (`light_state`, `light_distance`) for callers not yet on `light`."""
        if self.light is None:
            return MappingProxyType({})
        return MappingProxyType({"light_state": self.light.states(), "light_distance": self.light.distance})

    def validate(self) -> SceneState:
        b = self.batch_size
        self.agents.validate()
        if self.agents.batch_shape[0] != b:
            raise ValueError(f"SceneState.agents has batch {self.agents.batch_shape[0]}, expected {b}")
        check_tensor("SceneState.speed", self.speed, (b,), torch.float32)
        check_tensor("SceneState.ego_pose", self.ego_pose, (b, 3), torch.float32)
        check_tensor("SceneState.route", self.route, (b, None, 2), torch.float32)
        check_tensor("SceneState.route_valid", self.route_valid, (b, self.route.shape[1]), torch.bool)
        check_tensor("SceneState.timestamp", self.timestamp, (b,), torch.float32)
        if self.latent is not None:
            check_tensor("SceneState.latent", self.latent, (b, None, None, None))
        if self.light is not None:
            self.light.validate(b)
        if self.ego_plans is not None:
            check_tensor("SceneState.ego_plans", self.ego_plans, (b, None, None, 3), torch.float32)
        if self.features is not None:
            self.features.validate(b)
        return self


def _light_from_extras(extras: Mapping[str, Tensor]) -> LightBelief:
    unknown = set(extras) - {"light_state", "light_distance"}
    if unknown or len(extras) != 2:
        raise ValueError(f"SceneState extras {sorted(extras)} are not supported; pass light=, ego_plans= or features=")
    return LightBelief.from_states(extras["light_state"], extras["light_distance"])


def valid_route_points(route: Tensor, route_valid: Tensor, b: int) -> Tensor:
    """The valid points `[R', 2]` of scene `b` of a route `[B, R, 2]` (`route_valid [B, R]`);
    `ValueError` if fewer than two (a route is a polyline)."""
    pts = route[b][route_valid[b]]
    if pts.shape[0] < 2:
        raise ValueError(f"route of scene {b} has {pts.shape[0]} valid points; at least 2 are needed")
    return pts


@dataclass(frozen=True)
class Prediction:
    """A world model's future for N candidate plans, batched over B scenes. Frozen: derive a
    changed copy with `dataclasses.replace`.

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
        check_tensor(
            "Prediction.obstacle_prob", self.obstacle_prob, (None, None, None, *self.grid.bev_shape), finite=finite
        )
        b, n, t = self.obstacle_prob.shape[:3]
        check_tensor("Prediction.drivable_prob", self.drivable_prob, (b, *self.grid.bev_shape), finite=finite)
        check_tensor("Prediction.light_probs", self.light_probs, (b, 3), finite=finite)
        check_tensor("Prediction.light_distance", self.light_distance, (b,), torch.float32, finite=False)
        check_tensor("Prediction.agent_trajs", self.agent_trajs, (b, n, None, None, t, 3), finite=finite)
        a, k = self.agent_trajs.shape[2], self.agent_trajs.shape[3]
        check_tensor("Prediction.agent_mode_probs", self.agent_mode_probs, (b, n, a, k), finite=finite)
        check_tensor("Prediction.agent_valid", self.agent_valid, (b, a), torch.bool)
        check_tensor("Prediction.agent_size", self.agent_size, (b, a, 3), finite=finite)
        check_tensor("Prediction.agent_cls", self.agent_cls, (b, a), torch.int64)
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


@runtime_checkable
class PrivilegedWorldModel(WorldModel, Protocol):
    """A world model that may read ground truth: the `-gt` baselines and the oracle (their names
    say so). `planner.plan(..., privileged=...)` accepts only these."""

    def encode_privileged(
        self, obs: Observation, privileged: PrivilegedState, prev: SceneState | None = None
    ) -> SceneState:
        """Like `encode`, but with the true agents and light state of `privileged`."""
        ...


def validate_plans(plans: Tensor, batch_size: int | None = None) -> Tensor:
    """Check a plan tensor `[B, N, T, 3]` (finite float32); return it."""
    check_tensor("plans", plans, (batch_size, None, None, 3), torch.float32)
    return plans


__all__ = [
    "CAMERA_COUNTS",
    "HISTORY_STEPS",
    "HORIZON_STEPS",
    "STEP_SECONDS",
    "LightBelief",
    "LightState",
    "Observation",
    "Prediction",
    "PrivilegedState",
    "PrivilegedWorldModel",
    "SceneFeatures",
    "SceneState",
    "WorldModel",
    "check_camera_count",
    "valid_route_points",
    "validate_plans",
]
