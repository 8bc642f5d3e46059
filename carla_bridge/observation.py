"""Building `planner.Observation`s from what a backend knows: the ego's world pose over time, its
speed, the route, rendered or received camera images and lidar. Shared by every backend so
the lite simulator and a live CARLA server hand agents identical observations.

`EgoHistory` keeps the ego's world poses on the keyframe clock (every `STEP_SECONDS`, H + 1 of
them) and expresses them in the current ego frame; `route_in_ego_frame` crops and transforms the
route polyline.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from agents.se2 import se2_relative
from planner import HISTORY_STEPS, STEP_SECONDS, Observation


class EgoHistory:
    """The ego's recent world poses, recorded every simulation step; read back at exactly
    t - k·period (k = H … 1) by interpolation (linear in position, shortest arc in yaw)."""

    def __init__(self, history: int = HISTORY_STEPS, period: float = STEP_SECONDS) -> None:
        self.history = history
        self.period = period
        self._times: deque[float] = deque()
        self._poses: deque[np.ndarray] = deque()

    def reset(self) -> None:
        self._times.clear()
        self._poses.clear()

    def update(self, time: float, pose: np.ndarray) -> None:
        """Record the world pose `[3]` (x, y, yaw) at `time` [s] (times must increase)."""
        if self._times and time <= self._times[-1]:
            raise ValueError(f"EgoHistory.update: time {time} does not increase (last {self._times[-1]})")
        self._times.append(float(time))
        self._poses.append(np.asarray(pose, dtype=np.float64).copy())
        horizon = self.history * self.period + 1.0
        while len(self._times) > 2 and self._times[1] < time - horizon:
            self._times.popleft()
            self._poses.popleft()

    def in_ego_frame(self, time: float, pose: np.ndarray) -> np.ndarray:
        """`[H+1, 3]` poses at t = time - H·period … time, in the frame of `pose` (the last row is 0).
        Before the first recorded pose the oldest one is held (a standing start)."""
        pose = np.asarray(pose, dtype=np.float64)
        times = np.asarray(self._times) if self._times else np.array([time])
        poses = np.stack(self._poses) if self._poses else pose[None]
        query = time - self.period * np.arange(self.history, 0, -1)
        yaw = np.unwrap(poses[:, 2])
        past = np.stack([np.interp(query, times, poses[:, i]) for i in range(2)] + [np.interp(query, times, yaw)], -1)
        both = torch.tensor(np.concatenate([past, pose[None]]), dtype=torch.float64)
        return se2_relative(torch.tensor(pose).expand_as(both), both).float().numpy()


def route_in_ego_frame(
    route_xy: np.ndarray, pose: np.ndarray, behind: float = 10.0, ahead: float = 120.0, points: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Crop the world-frame route polyline `[P, 2]` to [-behind, +ahead] metres of arc length around the
    point nearest `pose` (x, y, yaw) and resample it to `points` points in the ego frame.

    Returns:
        route `[points, 2]` float32 in the ego frame, valid `[points]` bool (False past the route's end).
    """
    route_xy = np.asarray(route_xy, dtype=np.float64)
    if route_xy.ndim != 2 or route_xy.shape[1] != 2 or len(route_xy) < 2:
        raise ValueError(f"route must have shape [P>=2, 2], got {list(route_xy.shape)}")
    seg = np.diff(route_xy, axis=0)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    nearest = int(np.argmin(np.hypot(*(route_xy - pose[:2]).T)))
    s0 = s[nearest]
    query = np.linspace(s0 - behind, s0 + ahead, points)
    valid = (query >= 0.0) & (query <= s[-1])
    q = np.clip(query, 0.0, s[-1])
    xy = np.stack([np.interp(q, s, route_xy[:, 0]), np.interp(q, s, route_xy[:, 1])], axis=-1)
    c, si = np.cos(pose[2]), np.sin(pose[2])
    d = xy - pose[:2]
    local = np.stack([c * d[:, 0] + si * d[:, 1], -si * d[:, 0] + c * d[:, 1]], axis=-1)
    return local.astype(np.float32), valid


def make_observation(
    *,
    images: torch.Tensor,
    intrinsics: torch.Tensor,
    cam_to_ego: torch.Tensor,
    history: EgoHistory,
    pose: np.ndarray,
    speed: float,
    route_xy: np.ndarray,
    time: float,
    lidar: torch.Tensor | None = None,
) -> Observation:
    """One un-batched backend state → a validated `Observation` with B = 1.

    Args:
        images: `[V, 3, h, w]` uint8.  intrinsics: `[V, 3, 3]`.  cam_to_ego: `[V, 4, 4]`.
        pose: `[3]` ego world pose (x, y, yaw).  route_xy: `[P, 2]` world route polyline.
        lidar: optional `[P, 5]` ego-frame points.
    """
    route, valid = route_in_ego_frame(route_xy, pose)
    return Observation(
        images=images.unsqueeze(0),
        intrinsics=intrinsics.float().unsqueeze(0),
        cam_to_ego=cam_to_ego.float().unsqueeze(0),
        ego_history=torch.from_numpy(history.in_ego_frame(time, pose)).unsqueeze(0),
        speed=torch.tensor([speed], dtype=torch.float32),
        ego_pose=torch.as_tensor(np.asarray(pose, dtype=np.float32)[None]),
        route=torch.from_numpy(route).unsqueeze(0),
        route_valid=torch.from_numpy(valid).unsqueeze(0),
        timestamp=torch.tensor([time], dtype=torch.float32),
        lidar=None if lidar is None else lidar.float().unsqueeze(0),
    ).validate()
