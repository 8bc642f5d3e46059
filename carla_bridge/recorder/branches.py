"""Counterfactual branches: from a keyframe, drive K alternative ego plans with reactive traffic.

The plans are built along the ego's route centreline in the t0 ego frame from a speed profile and
a lateral-offset profile per kind (`config.BRANCH_KINDS`): `keep` (hold speed), `brake` (−6 m/s²
to a stop), `slow` (−2 m/s²), `accelerate` (+2 m/s²), `left_offset`/`right_offset` (±3.5 m over
3 s, a lane change), `swerve_left`/`swerve_right` (±3.5 m within 1 s, then held: unsafe),
`cut_in_left`/`cut_in_right` (±3.5 m within 1.5 s while accelerating: in front of a car in the
next lane). Which kinds a branch point gets depends on the scene at t0 (`interaction_kinds`,
`choose_kinds`): besides `keep` and `brake`, plans that enter the path of the agents around the
ego (cut in front of a neighbour, swerve towards an oncoming car or a pedestrian, accelerate into a
crossing, brake for a follower), so that the traffic's reaction to the ego shows in the branches. The
simulator branches its state into K worlds, a plan-tracking controller drives each world's ego,
and every 0.5 s the ego pose, the agents and the Occ3D semantics (in the t0 ego frame) are kept.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from agents.trajectory import interpolate_trajectory
from occupancy.builders import compose_labels, paint_boxes
from occupancy.classes import agent_class_to_occ3d_lut
from occupancy.grid import GridSpec
from planner import HORIZON_STEPS, STEP_SECONDS

LANE_OFFSET = 3.5  # [m]
CUT_IN_SECONDS = 1.5  # a cut-in reaches the next lane this fast (while accelerating at 1.5 m/s²)


def speed_profile(kind: str, v0: float, t: np.ndarray) -> np.ndarray:
    """Arc length `[T]` travelled at times `t` [s] for a plan kind, from speed `v0` [m/s]."""
    accel = {"brake": -6.0, "slow": -2.0, "accelerate": 2.0, "cut_in_left": 1.5, "cut_in_right": 1.5}.get(kind, 0.0)
    v_max = 15.0
    if accel < 0:
        t_stop = v0 / -accel if v0 > 0 else 0.0
        tt = np.minimum(t, t_stop)
        return v0 * tt + 0.5 * accel * tt**2
    if accel > 0:
        t_sat = max(0.0, (v_max - v0) / accel)
        tt = np.minimum(t, t_sat)
        return v0 * tt + 0.5 * accel * tt**2 + np.maximum(t - t_sat, 0.0) * max(v0, v_max)
    return v0 * t


def lateral_profile(kind: str, t: np.ndarray) -> np.ndarray:
    """Lateral offset `[T]` [m] (left positive) at times `t` for a plan kind (smoothstep ramps)."""
    sign = 1.0 if kind.endswith("left") or kind == "left_offset" else -1.0
    if kind in ("left_offset", "right_offset"):
        u = np.clip(t / 3.0, 0.0, 1.0)
    elif kind in ("cut_in_left", "cut_in_right"):
        u = np.clip(t / CUT_IN_SECONDS, 0.0, 1.0)
    elif kind in ("swerve_left", "swerve_right"):
        u = np.clip(t / 1.0, 0.0, 1.0)
    else:
        return np.zeros_like(t)
    return sign * LANE_OFFSET * (3 * u**2 - 2 * u**3)


BASE_KINDS = ("keep", "brake")  # every branch point starts with these (the reference and a hard brake)


def interaction_kinds(
    ego: np.ndarray,
    center: np.ndarray,
    yaw: np.ndarray,
    velocity: np.ndarray,
    cls: np.ndarray,
    parked: np.ndarray,
) -> list[str]:
    """Plan kinds that make the ego enter the path of an agent around it at t0, nearest first.

    Read from the scene state (no randomness), in the ego frame (x forward, y left):
    - a vehicle following in the ego's lane (behind, |y| < 2 m, same heading) → `brake` (a base kind);
    - a same-direction vehicle in the next lane (2 m ≤ |y| ≤ 6 m, from 20 m behind to 15 m ahead)
      → `cut_in_left`/`cut_in_right` (cut in front of it);
    - an oncoming vehicle up to 50 m ahead → a swerve towards its side (`swerve_left`/`swerve_right`);
    - a pedestrian up to 25 m ahead and 8 m aside → a swerve towards it;
    - a crossing vehicle up to 35 m ahead → `accelerate` (reach the junction first: it must yield);
    - a leader in the ego lane up to 40 m ahead → `accelerate` (close up on it), ranked last.

    Args:
        ego: `[4]` ego rear-axle pose (x, y, z, yaw), world frame.
        center: `[A, 2+]` agent box centres; yaw `[A]`; velocity `[A, 2]` world frame;
            cls `[A]` `AgentClass`; parked `[A]` bool.

    Returns:
        Kind names, unique, ordered by the distance of the agent that motivates them.
    """
    from agents.states import AgentClass

    c, s = math.cos(ego[3]), math.sin(ego[3])
    pts = np.asarray(center, dtype=np.float64)
    d = pts[:, :2] - np.asarray(ego[:2], dtype=np.float64) if pts.size else np.zeros((0, 2))
    x, y = c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]
    rel = np.cos(np.asarray(yaw, dtype=np.float64) - ego[3])  # heading alignment with the ego
    cls = np.asarray(cls, dtype=np.int64)
    ped = cls == int(AgentClass.PEDESTRIAN)
    static = np.isin(cls, [int(AgentClass.BARRIER), int(AgentClass.TRAFFIC_CONE)])
    vehicle = ~ped & ~static & ~np.asarray(parked, dtype=bool)
    dist = np.hypot(x, y)
    side = np.where(y >= 0.0, "left", "right")
    found: list[tuple[float, str]] = []
    for i in np.argsort(dist, kind="stable"):
        if vehicle[i] and rel[i] > 0.7 and abs(y[i]) < 2.0 and -25.0 <= x[i] < 0.0:
            found.append((dist[i], "brake"))
        elif vehicle[i] and rel[i] > 0.7 and 2.0 <= abs(y[i]) <= 6.0 and -20.0 <= x[i] <= 15.0:
            found.append((dist[i], f"cut_in_{side[i]}"))
        elif vehicle[i] and rel[i] < -0.7 and 0.0 <= x[i] <= 50.0 and abs(y[i]) <= 8.0:
            found.append((dist[i], f"swerve_{side[i]}"))
        elif ped[i] and 0.0 <= x[i] <= 25.0 and abs(y[i]) <= 8.0:
            found.append((dist[i], f"swerve_{side[i]}"))
        elif vehicle[i] and abs(rel[i]) <= 0.7 and 0.0 <= x[i] <= 35.0 and abs(y[i]) <= 25.0:
            found.append((dist[i], "accelerate"))
        elif vehicle[i] and rel[i] > 0.7 and abs(y[i]) < 2.0 and 0.0 <= x[i] <= 40.0:
            found.append((dist[i] + 100.0, "accelerate"))
    out: list[str] = []
    for _, kind in sorted(found, key=lambda f: f[0]):
        if kind not in out:
            out.append(kind)
    return out


def choose_kinds(k: int, interactive: list[str], defaults: tuple[str, ...]) -> list[str]:
    """The `k` plan kinds of one branch point: `BASE_KINDS`, then the scene's `interactive` kinds
    (from `interaction_kinds`), then the `defaults` in their order, without repeats."""
    out: list[str] = []
    for kind in (*BASE_KINDS, *interactive, *defaults):
        if kind not in out:
            out.append(kind)
    return out[:k]


def route_frame_path(route_xy: np.ndarray, ego: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The route ahead of the ego in its frame: points `[P, 2]` starting at the ego's projection and
    their arc length `[P]` (extended straight when the route ends)."""
    c, s = math.cos(ego[3]), math.sin(ego[3])
    d = np.asarray(route_xy, dtype=np.float64) - ego[:2]
    local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)
    i0 = int(np.argmin(np.linalg.norm(local, axis=1)))
    path = local[i0:]
    if len(path) < 2:
        path = np.array([[0.0, 0.0], [1.0, 0.0]])
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    tail = path[-1] - path[-2]
    tail = tail / max(np.linalg.norm(tail), 1e-6)
    ext = path[-1] + tail * np.arange(1, 201)[:, None] * 1.0
    path = np.concatenate([path, ext])
    arc = np.concatenate([arc, arc[-1] + np.arange(1, 201) * 1.0])
    return path, arc


def branch_trajectories(
    kinds: list[str], route_xy: np.ndarray, ego: np.ndarray, speed: float, seconds: float = 6.0, dt: float = 0.05
) -> np.ndarray:
    """`[K, F, 3]` dense rear-axle trajectories (x, y, yaw) in the ego frame at t = dt·(0..F-1) s.

    Longer than the 3 s horizon, so a plan follower can be fed the plan ahead of the current time all
    along the branch.
    """
    path, arc = route_frame_path(route_xy, ego)
    fine_t = np.arange(round(seconds / dt) + 1) * dt
    out = np.zeros((len(kinds), len(fine_t), 3), dtype=np.float64)
    for k, kind in enumerate(kinds):
        s = speed_profile(kind, max(speed, 0.0), fine_t)
        px, py = np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1])
        ds = 0.5
        tx = np.interp(s + ds, arc, path[:, 0]) - np.interp(np.maximum(s - ds, 0), arc, path[:, 0])
        ty = np.interp(s + ds, arc, path[:, 1]) - np.interp(np.maximum(s - ds, 0), arc, path[:, 1])
        heading = np.arctan2(ty, tx)
        lat = lateral_profile(kind, fine_t)
        x = px - np.sin(heading) * lat
        y = py + np.cos(heading) * lat
        dx, dy = np.gradient(x), np.gradient(y)
        moving = np.hypot(dx, dy) > 1e-4
        out[k, :, 0], out[k, :, 1] = x, y
        out[k, :, 2] = np.where(moving, np.arctan2(dy, dx), heading)
    return out


def plan_window(traj: np.ndarray, dt: float = 0.05) -> np.ndarray:
    """`[K, T, 3]` the poses of dense trajectories `traj [K, F, 3]` (at t = dt·(0..F-1)) at the plan
    times t = 0.5·(1..T) s (`agents.trajectory.interpolate_trajectory`)."""
    times = dt * torch.arange(traj.shape[1], dtype=torch.float64)
    query = STEP_SECONDS * torch.arange(1, HORIZON_STEPS + 1, dtype=torch.float64)
    poses, _ = interpolate_trajectory(torch.as_tensor(traj, dtype=torch.float64), times, query)
    return poses.numpy()


def static_base(
    grid: GridSpec, ground: np.ndarray, structures: np.ndarray, structure_labels: np.ndarray
) -> torch.Tensor:
    """`[X, Y, Z]` uint8 ground and static structures in a fixed (t0 ego) frame (no agents, no ego)."""
    return compose_labels(
        grid,
        ground_classes=torch.from_numpy(ground),
        ground_z=0.0,
        structures=torch.from_numpy(np.asarray(structures, dtype=np.float32).reshape(-1, 7)),
        structure_labels=torch.from_numpy(np.asarray(structure_labels, dtype=np.int64)),
        ego=None,
    )


def semantics_in_frame(
    grid: GridSpec, base: torch.Tensor, agent_boxes: np.ndarray, agent_cls: np.ndarray
) -> np.ndarray:
    """`[X, Y, Z]` uint8 Occ3D semantics: the static `base` with the agents painted over it.

    Args:
        base: from `static_base` (same frame).
        agent_boxes: `[M, 7]` (x, y, z, yaw, l, w, h) in that frame; agent_cls `[M]` `AgentClass`.
    """
    boxes = np.asarray(agent_boxes, dtype=np.float32).reshape(-1, 7)
    reach = math.hypot(*(max(abs(grid.lower[i]), abs(grid.upper[i])) for i in range(2)))
    near = np.hypot(boxes[:, 0], boxes[:, 1]) - 0.5 * np.hypot(boxes[:, 4], boxes[:, 5]) <= reach
    if not near.any():
        return base.numpy().copy()
    labels = agent_class_to_occ3d_lut()[np.asarray(agent_cls, dtype=np.int64)[near]]
    return paint_boxes(base, grid, torch.from_numpy(boxes[near]), torch.from_numpy(labels)).numpy()


def pair_divergence(agent_pose: np.ndarray, agent_valid: np.ndarray, threshold: float = 0.5) -> tuple[int, int]:
    """(pairs, pairs where some agent's future differs by more than `threshold` m) over the K
    branches of one branch point. `agent_pose [K, A, T, 3]`, `agent_valid [K, A, T]`."""
    k = agent_pose.shape[0]
    pairs = differ = 0
    for i in range(k):
        for j in range(i + 1, k):
            both = agent_valid[i] & agent_valid[j]
            dist = np.linalg.norm(agent_pose[i, ..., :2] - agent_pose[j, ..., :2], axis=-1)
            pairs += 1
            differ += int(bool((both & (dist > threshold)).any()))
    return pairs, differ
