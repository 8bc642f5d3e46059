"""What the dataset yields, split by type so no target can leak into a model input.

`Features` holds only what a deployed car has (cameras, calibration, odometry, the route), plus the
previous keyframe's observation for training the temporal recurrence. `Targets` holds the
ground truth (logged ego future, occupancy, agents and their futures, counterfactual branches).
Both work for one sample (no batch dim) or a batch (leading B), and are dataclasses of tensors,
so Lightning moves them between devices and `collate` stacks them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from planner.contracts import Observation


def _stack(items: list, name: str) -> Tensor:
    try:
        return torch.stack(items)
    except RuntimeError as err:
        raise ValueError(f"cannot batch field {name!r}: {err}") from err


@dataclass
class Features:
    """Model/planner inputs. Shapes per sample (a batch adds a leading B).

    Attributes:
        images: `[V, 3, h, w]` uint8 resized camera images (rig order).
        intrinsics: `[V, 3, 3]` scaled to (h, w).
        cam_to_ego: `[V, 4, 4]`.
        ego_history: `[H+1, 3]` rear-axle poses in the current ego frame (last row 0); padded rows at
            scene start repeat the first pose.
        speed: `[]` m/s.
        ego_pose: `[3]` global (x, y, yaw).
        route: `[R, 2]` route polyline in the ego frame; route_valid `[R]` bool.
        route_is_command: `[]` bool, True when the route was synthesised from a command derived from
            the logged future (real nuScenes without routes): such inputs leak the future.
        timestamp: `[]` s since scene start.
        prev_images, prev_intrinsics, prev_cam_to_ego, prev_ego_history, prev_speed, prev_ego_pose,
            prev_route, prev_route_valid: the previous keyframe's observation (same shapes; its
            ego history in its own frame).
        prev_valid: `[]` bool, False at the scene start (the prev_* fields then copy the current ones).
    """

    images: Tensor
    intrinsics: Tensor
    cam_to_ego: Tensor
    ego_history: Tensor
    speed: Tensor
    ego_pose: Tensor
    route: Tensor
    route_valid: Tensor
    route_is_command: Tensor
    timestamp: Tensor
    prev_images: Tensor
    prev_intrinsics: Tensor
    prev_cam_to_ego: Tensor
    prev_ego_history: Tensor
    prev_speed: Tensor
    prev_ego_pose: Tensor
    prev_route: Tensor
    prev_route_valid: Tensor
    prev_valid: Tensor

    def observation(self) -> Observation:
        """The batched `Observation` of the current keyframe (needs a leading B)."""
        return Observation(
            images=self.images,
            intrinsics=self.intrinsics,
            cam_to_ego=self.cam_to_ego,
            ego_history=self.ego_history,
            speed=self.speed,
            ego_pose=self.ego_pose,
            route=self.route,
            route_valid=self.route_valid,
            timestamp=self.timestamp,
        )

    def prev_observation(self) -> Observation:
        """The batched `Observation` of the previous keyframe (check `prev_valid`)."""
        return Observation(
            images=self.prev_images,
            intrinsics=self.prev_intrinsics,
            cam_to_ego=self.prev_cam_to_ego,
            ego_history=self.prev_ego_history,
            speed=self.prev_speed,
            ego_pose=self.prev_ego_pose,
            route=self.prev_route,
            route_valid=self.prev_route_valid,
            timestamp=self.timestamp - 0.5,
        )


@dataclass
class Targets:
    """Ground truth. Shapes per sample (a batch adds a leading B); A agent slots, Kb branch slots,
    M future boxes per step, (X, Y, Z) the model grid.

    Attributes:
        ego_future: `[T, 3]` logged rear-axle poses at t = 0.5..3 s in the current ego frame.
        ego_future_valid: `[T]` bool.
        occ: `[T, X, Y, Z]` uint8 Occ3D labels of the future keyframes in the current ego frame.
        occ_mask: `[T, X, Y, Z]` bool camera-visibility mask; occ_valid `[T]` bool.
        occ_now: `[X, Y, Z]` uint8 labels at t0; occ_now_mask `[X, Y, Z]` bool.
        agent_box: `[A, 7]` (x, y, z, yaw, l, w, h) at t0 in the ego frame; agent_cls `[A]` int64
            `AgentClass`; agent_velocity `[A, 2]` m/s; agent_valid `[A]` bool.
        agent_future: `[A, T, 3]` box-centre (x, y, yaw) in the current ego frame; agent_future_valid `[A, T]`.
        future_boxes: `[T, M, 5]` every annotated vehicle/pedestrian box (x, y, yaw, l, w) at each
            future keyframe (for collision metrics); future_boxes_valid `[T, M]` bool.
        branch_plans: `[Kb, T, 3]` counterfactual ego plans in the current ego frame; branch_valid `[Kb]`.
        branch_occ: `[Kb, T, X, Y, Z]` uint8 branch futures; branch_agent_future `[Kb, A, T, 3]`,
            branch_agent_valid `[Kb, A, T]` (agents in the same slots as `agent_*`).
        branch_collision: `[Kb]` bool.
        light_state: `[]` int64 `LightState` of the light governing the ego's route, -1 when unknown.
        light_distance: `[]` distance [m] along the route from the rear axle to its stop line; -1 when
            unknown or no light.
    """

    ego_future: Tensor
    ego_future_valid: Tensor
    occ: Tensor
    occ_mask: Tensor
    occ_valid: Tensor
    occ_now: Tensor
    occ_now_mask: Tensor
    agent_box: Tensor
    agent_cls: Tensor
    agent_velocity: Tensor
    agent_valid: Tensor
    agent_future: Tensor
    agent_future_valid: Tensor
    future_boxes: Tensor
    future_boxes_valid: Tensor
    branch_plans: Tensor
    branch_valid: Tensor
    branch_occ: Tensor
    branch_agent_future: Tensor
    branch_agent_valid: Tensor
    branch_collision: Tensor
    light_state: Tensor
    light_distance: Tensor


@dataclass
class Batch:
    """A collated batch: features, targets and the sample tokens (list of B str)."""

    features: Features
    targets: Targets
    tokens: list[str]

    @property
    def batch_size(self) -> int:
        return len(self.tokens)


@dataclass
class Sample:
    """One dataset item."""

    features: Features
    targets: Targets
    token: str


def collate(samples: list[Sample]) -> Batch:
    """Stack samples into a `Batch` (every field gains a leading B)."""
    if not samples:
        raise ValueError("collate: empty list of samples")
    feats = {f.name: _stack([getattr(s.features, f.name) for s in samples], f.name) for f in fields(Features)}
    targs = {f.name: _stack([getattr(s.targets, f.name) for s in samples], f.name) for f in fields(Targets)}
    return Batch(Features(**feats), Targets(**targs), [s.token for s in samples])
