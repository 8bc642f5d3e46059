"""Feature and target builders over the official nuScenes devkit (navsim-style split: the feature
builder never reads annotations, future poses or labels, so nothing from the future can leak into
what the model or the planner sees — except the explicitly marked command fallback for real
nuScenes without routes).

Frames: nuScenes ego poses are rear-axle poses; everything produced here is in the current
keyframe's ego frame (x forward, y left), SE(2) (roll/pitch ignored), metres, radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pyquaternion import Quaternion

from agents import AgentClass
from agents.se2 import quaternion_to_yaw, se2_relative
from carla_bridge.recorder.extras import read_lights, read_route_polyline
from occupancy import GridSpec
from occupancy.classes import Occ3DClass
from occupancy.io import labels_path, read_labels
from occupancy.reading import decode_image, load_npz
from occupancy.resample import downsample_labels, warp_labels_se2

from .config import CAMERAS, REAL_NUSCENES_VERSIONS, DataConfig
from .types import Features, Targets

# nuScenes category prefix → AgentClass (first match wins); categories not listed are not agents
_CATEGORY_PREFIXES: tuple[tuple[str, AgentClass], ...] = (
    ("vehicle.car", AgentClass.CAR),
    ("vehicle.emergency", AgentClass.CAR),
    ("vehicle.truck", AgentClass.TRUCK),
    ("vehicle.bus", AgentClass.BUS),
    ("vehicle.bicycle", AgentClass.BICYCLE),
    ("vehicle.motorcycle", AgentClass.MOTORCYCLE),
    ("vehicle.construction", AgentClass.CONSTRUCTION_VEHICLE),
    ("vehicle.trailer", AgentClass.TRAILER),
    ("human.pedestrian", AgentClass.PEDESTRIAN),
    ("movable_object.barrier", AgentClass.BARRIER),
    ("movable_object.trafficcone", AgentClass.TRAFFIC_CONE),
)
COLLISION_CLASSES = frozenset(
    int(c)
    for c in (
        AgentClass.CAR,
        AgentClass.TRUCK,
        AgentClass.BUS,
        AgentClass.BICYCLE,
        AgentClass.MOTORCYCLE,
        AgentClass.CONSTRUCTION_VEHICLE,
        AgentClass.TRAILER,
        AgentClass.PEDESTRIAN,
    )
)
COMMAND_LEFT, COMMAND_STRAIGHT, COMMAND_RIGHT = 0, 1, 2


def category_to_agent_class(name: str) -> AgentClass | None:
    """nuScenes category name → `AgentClass` (None for non-agents such as animals or debris)."""
    for prefix, cls in _CATEGORY_PREFIXES:
        if name.startswith(prefix):
            return cls
    return None


def extras_dir(dataroot: str | Path, version: str) -> Path:
    """`DIR/drivewm/<version>/` (FORMATS.md)."""
    return Path(dataroot) / "drivewm" / version


BRANCH_KEYS = ("ego", "instance_tokens", "agent_pose", "agent_valid", "semantics", "collision")
"""The arrays of a branch file the loader reads (FORMATS.md; `plan` is optional)."""


def _yaw(rotation: list[float]) -> float:
    return float(quaternion_to_yaw(torch.tensor(rotation, dtype=torch.float64)))


@dataclass
class _Frame:
    """What one keyframe contributes: token, global ego pose (x, y, yaw), timestamp [s]."""

    token: str
    pose: np.ndarray
    time: float


class SceneIndex:
    """Keyframes of one scene in order, with their global ego poses (from LIDAR_TOP's ego pose)."""

    def __init__(self, nusc, scene_token: str) -> None:
        scene = nusc.get("scene", scene_token)
        self.name = scene["name"]
        self.frames: list[_Frame] = []
        token = scene["first_sample_token"]
        while token:
            sample = nusc.get("sample", token)
            sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
            ep = nusc.get("ego_pose", sd["ego_pose_token"])
            pose = np.array([ep["translation"][0], ep["translation"][1], _yaw(ep["rotation"])], dtype=np.float64)
            self.frames.append(_Frame(token, pose, sample["timestamp"] * 1e-6))
            token = sample["next"]
        self.position = {f.token: i for i, f in enumerate(self.frames)}


def _relative(ref: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Global poses `[..., 3]` in the frame of `ref` `[3]` (float64 → float32)."""
    out = se2_relative(torch.as_tensor(ref, dtype=torch.float64), torch.as_tensor(poses, dtype=torch.float64))
    return out.numpy().astype(np.float32)


def _relative_points(ref: np.ndarray, pts: np.ndarray) -> np.ndarray:
    c, s = math.cos(ref[2]), math.sin(ref[2])
    d = pts - ref[None, :2]
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], -1)


class FeatureBuilder:
    """Features of a keyframe: images, calibration, ego history/speed, route. Reads only sensor data,
    ego poses up to now, and the route (or, marked, the logged-future command on real nuScenes)."""

    def __init__(self, nusc, dataroot: str | Path, version: str, config: DataConfig) -> None:
        self.nusc = nusc
        self.dataroot = Path(dataroot)
        self.version = version
        self.config = config
        self._routes: dict[str, np.ndarray | None] = {}

    # --- cameras
    def cameras(self, sample_token: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images `[V, 3, h, w]` uint8, intrinsics `[V, 3, 3]` (scaled), cam_to_ego `[V, 4, 4]`."""
        h, w = self.config.image_size
        sample = self.nusc.get("sample", sample_token)
        imgs, ks, ms = [], [], []
        for cam in CAMERAS:
            if cam not in sample["data"]:
                raise ValueError(f"sample {sample_token} has no {cam} image")
            sd = self.nusc.get("sample_data", sample["data"][cam])
            path = self.dataroot / sd["filename"]
            if not path.is_file():
                raise FileNotFoundError(f"camera image {path} is missing")
            rgb, (src_w, src_h) = decode_image(path, "camera image", draft=(w * 2, h * 2))  # fast reduced decode
            arr = np.asarray(rgb.resize((w, h), Image.BILINEAR))
            imgs.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
            cs = self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            k = np.array(cs["camera_intrinsic"], dtype=np.float64)
            k[0] *= w / src_w
            k[1] *= h / src_h
            ks.append(torch.tensor(k, dtype=torch.float32))
            m = np.eye(4)
            m[:3, :3] = Quaternion(cs["rotation"]).rotation_matrix
            m[:3, 3] = cs["translation"]
            ms.append(torch.tensor(m, dtype=torch.float32))
        return torch.stack(imgs), torch.stack(ks), torch.stack(ms)

    # --- odometry
    def ego_history(self, scene: SceneIndex, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`[H+1, 3]` past keyframe poses in the current frame (oldest repeated at scene start), speed []."""
        hcount = self.config.history
        idx = [max(0, i - k) for k in range(hcount, -1, -1)]
        poses = np.stack([scene.frames[j].pose for j in idx])
        hist = _relative(scene.frames[i].pose, poses)
        speed = 0.0
        if i > 0:
            a, b = scene.frames[i - 1], scene.frames[i]
            speed = float(np.hypot(*(b.pose[:2] - a.pose[:2])) / max(b.time - a.time, 1e-3))
        return torch.from_numpy(hist), torch.tensor(speed, dtype=torch.float32)

    # --- navigation
    def route_polyline(self, scene_name: str) -> np.ndarray | None:
        """The scene's global route polyline `[P, 2]`, None when the dataset has no routes."""
        if scene_name not in self._routes:
            path = extras_dir(self.dataroot, self.version) / "routes" / f"{scene_name}.json"
            if path.is_file():
                self._routes[scene_name] = read_route_polyline(path)
            elif self.version in REAL_NUSCENES_VERSIONS:
                self._routes[scene_name] = None
            else:
                raise FileNotFoundError(f"route file {path} is missing (generated datasets carry one per scene)")
        return self._routes[scene_name]

    def route(self, scene: SceneIndex, i: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """route `[R, 2]` in the ego frame, valid `[R]`, and whether it leaks (command fallback)."""
        cfg = self.config
        poly = self.route_polyline(scene.name)
        if poly is None:
            return (*command_route(self.command(scene, i), cfg), True)
        local = _relative_points(scene.frames[i].pose, poly)
        seg = np.linalg.norm(np.diff(local, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        # arc length of the ego's projection onto the nearest segment
        a, d = local[:-1], np.diff(local, axis=0)
        u = np.clip(-(a * d).sum(1) / np.maximum((d * d).sum(1), 1e-9), 0.0, 1.0)
        dist = np.linalg.norm(a + u[:, None] * d, axis=1)
        near = int(np.argmin(dist))
        s_ego = s[near] + u[near] * seg[near]
        query = s_ego + (np.arange(cfg.route_points) * cfg.route_spacing - 10.0)
        valid = (query >= 0) & (query <= s[-1])
        q = np.clip(query, 0, s[-1])
        pts = np.stack([np.interp(q, s, local[:, 0]), np.interp(q, s, local[:, 1])], -1)
        return torch.tensor(pts, dtype=torch.float32), torch.from_numpy(valid), False

    def command(self, scene: SceneIndex, i: int) -> int:
        """UniAD/VAD-style command from the logged future (LEAKS the future; real nuScenes only):
        lateral offset of the last available future pose > 2 m → left, < -2 m → right."""
        j = min(i + self.config.horizon, len(scene.frames) - 1)
        y = float(_relative(scene.frames[i].pose, scene.frames[j].pose)[1])
        return COMMAND_LEFT if y > 2.0 else COMMAND_RIGHT if y < -2.0 else COMMAND_STRAIGHT

    def build(self, scene: SceneIndex, i: int, with_prev: bool = True) -> Features:
        token = scene.frames[i].token
        images, k, m = self.cameras(token)
        hist, speed = self.ego_history(scene, i)
        route, route_valid, leaks = self.route(scene, i)
        pose = torch.tensor(scene.frames[i].pose, dtype=torch.float32)
        prev = self.build(scene, i - 1, with_prev=False) if with_prev and i > 0 else None
        cur = dict(images=images, intrinsics=k, cam_to_ego=m, ego_history=hist, speed=speed, ego_pose=pose)
        p = cur if prev is None else prev.__dict__
        return Features(
            **cur,
            route=route,
            route_valid=route_valid,
            route_is_command=torch.tensor(leaks),
            timestamp=torch.tensor(scene.frames[i].time - scene.frames[0].time, dtype=torch.float32),
            prev_images=p["images"],
            prev_intrinsics=p["intrinsics"],
            prev_cam_to_ego=p["cam_to_ego"],
            prev_ego_history=p["ego_history"],
            prev_speed=p["speed"],
            prev_ego_pose=p["ego_pose"],
            prev_route=route if prev is None else prev.route,
            prev_route_valid=route_valid if prev is None else prev.route_valid,
            prev_valid=torch.tensor(prev is not None),
        )


def command_route(command: int, config: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic route polyline `[R, 2]` for a command: straight ahead, or a 90° arc of radius
    15 m starting 5 m ahead (left = +y)."""
    s = np.arange(config.route_points) * config.route_spacing - 10.0
    x, y = s.copy(), np.zeros_like(s)
    if command != COMMAND_STRAIGHT:
        sign = 1.0 if command == COMMAND_LEFT else -1.0
        r, start = 15.0, 5.0
        arc = np.clip(s - start, 0, None)
        theta = np.minimum(arc / r, math.pi / 2)
        beyond = np.clip(arc - r * math.pi / 2, 0, None)
        turning = s > start
        x = np.where(turning, start + r * np.sin(theta), s)
        y = np.where(turning, sign * r * (1 - np.cos(theta)), 0.0)
        y = y + sign * beyond
    return torch.tensor(np.stack([x, y], -1), dtype=torch.float32), torch.ones(config.route_points, dtype=torch.bool)


def splat_labels(sem: torch.Tensor, src: GridSpec, src_in_dst: np.ndarray, dst: GridSpec) -> torch.Tensor:
    """Re-express Occ3D labels `[X, Y, Z]` (on `src`, in a source ego frame) on a coarser-or-equal
    grid `dst` in another frame, occupied-first: each occupied source voxel centre is moved by the
    SE(2) pose `src_in_dst` (x, y, yaw) and votes for its class in the destination voxel it lands in;
    a destination voxel gets the most voted occupied class, Occ3DClass.FREE if none (ties: lowest id).

    Only occupied voxels move, so this costs O(occupied) rather than O(grid) — what makes caching
    6 future frames per sample affordable. For a destination finer than the source use
    `occupancy.resample.warp_labels_se2` (a backward lookup, no holes).

    Returns:
        `[X', Y', Z']` uint8.
    """
    occ = torch.nonzero(sem != Occ3DClass.FREE)  # [n, 3]
    cls = sem[occ[:, 0], occ[:, 1], occ[:, 2]].long()
    centres = src.voxel_to_world(occ).double()  # [n, 3]
    c, s = math.cos(src_in_dst[2]), math.sin(src_in_dst[2])
    x = c * centres[:, 0] - s * centres[:, 1] + src_in_dst[0]
    y = s * centres[:, 0] + c * centres[:, 1] + src_in_dst[1]
    idx = dst.world_to_voxel(torch.stack([x, y, centres[:, 2]], -1))
    gx, gy, gz = dst.shape
    ok = (idx >= 0).all(-1) & (idx[:, 0] < gx) & (idx[:, 1] < gy) & (idx[:, 2] < gz)
    flat = (idx[ok, 0] * gy + idx[ok, 1]) * gz + idx[ok, 2]
    counts = torch.bincount(flat * Occ3DClass.FREE + cls[ok], minlength=gx * gy * gz * Occ3DClass.FREE).view(
        -1, Occ3DClass.FREE
    )
    out = torch.where(counts.sum(-1) > 0, counts.argmax(-1), torch.full((gx * gy * gz,), Occ3DClass.FREE))
    return out.to(torch.uint8).view(gx, gy, gz)


def warp_mask(mask: torch.Tensor, src: GridSpec, src_in_dst: np.ndarray, dst: GridSpec) -> torch.Tensor:
    """A visibility mask `[X, Y, Z]` bool on `src` → `[X', Y', Z']` bool on `dst` in another frame:
    pooled ("any visible") to the destination resolution in the source frame, then looked up at the
    destination voxel centres (nearest); outside the source grid → not visible."""
    coarse = GridSpec(src.lower, src.upper, dst.voxel)
    fx, fy, fz = (round(dst.voxel[i] / src.voxel[i]) for i in range(3))
    aligned = all(abs(dst.voxel[i] / src.voxel[i] - f) < 1e-6 for i, f in enumerate((fx, fy, fz)))
    if aligned and all(src.shape[i] % f == 0 for i, f in enumerate((fx, fy, fz))):
        x, y, z = coarse.shape
        pooled = mask.view(x, fx, y, fy, z, fz).any(5).any(3).any(1)
    else:
        labels = torch.where(
            mask, torch.zeros((), dtype=torch.uint8), torch.full((), Occ3DClass.FREE, dtype=torch.uint8)
        )
        pooled = downsample_labels(labels, src, coarse, occupied_first=True) != Occ3DClass.FREE
    return warp_labels_se2(pooled, coarse, torch.as_tensor(src_in_dst, dtype=torch.float64), dst_grid=dst, fill=False)


class TargetBuilder:
    """Ground truth of a keyframe: logged ego future, occupancy, agents and their futures, future
    boxes, counterfactual branches."""

    def __init__(self, nusc, dataroot: str | Path, version: str, config: DataConfig) -> None:
        self.nusc = nusc
        self.dataroot = Path(dataroot)
        self.version = version
        self.config = config
        self.label_grid = GridSpec.occ3d()
        self._lights: dict[str, dict] = {}

    def _read(self, scene: SceneIndex, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = labels_path(self.dataroot, scene.name, scene.frames[j].token)
        if not path.is_file():
            raise FileNotFoundError(f"Occ3D labels {path} are missing (expected DIR/gts/<scene>/<token>/labels.npz)")
        lab = read_labels(path, grid=self.label_grid)
        return torch.from_numpy(lab["semantics"]), torch.from_numpy(lab["mask_camera"]).bool()

    def labels_full(self, scene: SceneIndex, j: int, ref_pose: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Keyframe j's Occ3D labels warped into the frame of `ref_pose`, on the label grid:
        semantics `[200, 200, 16]` uint8 and camera mask bool (voxels from outside: free, unseen)."""
        sem, mask = self._read(scene, j)
        rel = torch.as_tensor(_relative(ref_pose, scene.frames[j].pose), dtype=torch.float64)
        if bool(rel.abs().max() > 1e-6):
            sem = warp_labels_se2(sem, self.label_grid, rel)
            mask = warp_labels_se2(mask, self.label_grid, rel, fill=False)
        return sem, mask

    def _labels(self, scene: SceneIndex, j: int, ref_pose: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Keyframe j's Occ3D labels warped into the frame of `ref_pose` and resampled to the model
        grid: semantics `[X, Y, Z]` uint8 and camera mask `[X, Y, Z]` bool."""
        sem, mask = self._read(scene, j)
        rel = _relative(ref_pose, scene.frames[j].pose)
        return splat_labels(sem, self.label_grid, rel, self.config.grid), warp_mask(
            mask, self.label_grid, rel, self.config.grid
        )

    def _agents_in(self, sample_token: str, ref_pose: np.ndarray) -> list[dict]:
        """Annotated agents of a sample in the frame of `ref_pose`, nearest first."""
        out = []
        for ann_token in self.nusc.get("sample", sample_token)["anns"]:
            ann = self.nusc.get("sample_annotation", ann_token)
            cls = category_to_agent_class(ann["category_name"])
            if cls is None:
                continue
            x, y, z = ann["translation"]
            pose = _relative(ref_pose, np.array([x, y, _yaw(ann["rotation"])]))
            w, l, h = ann["size"]
            out.append(
                dict(
                    token=ann_token,
                    instance=ann["instance_token"],
                    cls=int(cls),
                    pose=pose,
                    z=float(z),
                    size=(l, w, h),
                    points=ann.get("num_lidar_pts", 1) + ann.get("num_radar_pts", 0),
                )
            )
        out.sort(key=lambda a: float(np.hypot(a["pose"][0], a["pose"][1])))
        return out

    def build(self, scene: SceneIndex, i: int) -> Targets:
        cfg = self.config
        grid = cfg.grid
        t_steps, a_slots = cfg.horizon, cfg.max_agents
        ref = scene.frames[i].pose
        fut_idx = list(range(i + 1, i + 1 + t_steps))
        if fut_idx[-1] >= len(scene.frames):
            raise ValueError(f"sample {scene.frames[i].token} has fewer than {t_steps} future keyframes")
        ego_future = _relative(ref, np.stack([scene.frames[j].pose for j in fut_idx]))
        occ, occ_mask = zip(*(self._labels(scene, j, ref) for j in fut_idx))
        occ_now, occ_now_mask = self._labels(scene, i, ref)
        ego_z = self.nusc.get(
            "ego_pose",
            self.nusc.get("sample_data", self.nusc.get("sample", scene.frames[i].token)["data"]["LIDAR_TOP"])[
                "ego_pose_token"
            ],
        )["translation"][2]

        # agents present now (inside the grid, seen by some sensor), nearest first
        now = [
            a
            for a in self._agents_in(scene.frames[i].token, ref)
            if a["points"] > 0 and grid.contains(torch.tensor(a["pose"][:2]))
        ][:a_slots]
        box = torch.zeros(a_slots, 7)
        vel = torch.zeros(a_slots, 2)
        cls = torch.zeros(a_slots, dtype=torch.int64)
        valid = torch.zeros(a_slots, dtype=torch.bool)
        c, s = math.cos(ref[2]), math.sin(ref[2])
        for k, a in enumerate(now):
            box[k] = torch.tensor([a["pose"][0], a["pose"][1], a["z"] - ego_z, a["pose"][2], *a["size"]])
            v = self.nusc.box_velocity(a["token"])[:2]
            if np.all(np.isfinite(v)):
                vel[k] = torch.tensor([c * v[0] + s * v[1], -s * v[0] + c * v[1]])
            cls[k] = a["cls"]
            valid[k] = True
        slot = {a["instance"]: k for k, a in enumerate(now)}
        fut = torch.zeros(a_slots, t_steps, 3)
        fut_valid = torch.zeros(a_slots, t_steps, dtype=torch.bool)
        m = cfg.max_future_boxes
        fboxes = torch.zeros(t_steps, m, 5)
        fvalid = torch.zeros(t_steps, m, dtype=torch.bool)
        for t, j in enumerate(fut_idx):
            later = self._agents_in(scene.frames[j].token, ref)
            for a in later:
                if a["instance"] in slot:
                    fut[slot[a["instance"]], t] = torch.from_numpy(a["pose"])
                    fut_valid[slot[a["instance"]], t] = True
            coll = [a for a in later if a["cls"] in COLLISION_CLASSES][:m]
            for q, a in enumerate(coll):
                fboxes[t, q] = torch.tensor([*a["pose"], a["size"][0], a["size"][1]])
                fvalid[t, q] = True
        branches = self._branches(scene, i, slot)
        return Targets(
            ego_future=torch.from_numpy(ego_future),
            ego_future_valid=torch.ones(t_steps, dtype=torch.bool),
            occ=torch.stack(occ),
            occ_mask=torch.stack(occ_mask),
            occ_valid=torch.ones(t_steps, dtype=torch.bool),
            occ_now=occ_now,
            occ_now_mask=occ_now_mask,
            agent_box=box,
            agent_cls=cls,
            agent_velocity=vel,
            agent_valid=valid,
            agent_future=fut,
            agent_future_valid=fut_valid,
            future_boxes=fboxes,
            future_boxes_valid=fvalid,
            **branches,
            **self._light(scene, i),
        )

    def _light(self, scene: SceneIndex, i: int) -> dict[str, torch.Tensor]:
        """State (`planner.LightState`) and stop-line distance along the route [m] of the light governing
        the ego's route, from `drivewm/<version>/lights/<scene>.json` {sample_token: [state, distance|null]};
        -1 where the dataset has none (real nuScenes)."""
        if scene.name not in self._lights:
            path = extras_dir(self.dataroot, self.version) / "lights" / f"{scene.name}.json"
            self._lights[scene.name] = read_lights(path) if path.is_file() else {}
        entry = self._lights[scene.name].get(scene.frames[i].token)
        if entry is None:
            return {"light_state": torch.tensor(-1), "light_distance": torch.tensor(-1.0)}
        state, distance = entry
        return {
            "light_state": torch.tensor(int(state)),
            "light_distance": torch.tensor(-1.0 if distance is None else float(distance)),
        }

    def _branches(self, scene: SceneIndex, i: int, slot: dict[str, int]) -> dict[str, torch.Tensor]:
        """Counterfactual branches of keyframe i (FORMATS.md), padded to `max_branches` slots."""
        cfg = self.config
        kb, t_steps, a_slots = cfg.max_branches, cfg.horizon, cfg.max_agents
        gx, gy, gz = cfg.grid.shape
        out = dict(
            branch_plans=torch.zeros(kb, t_steps, 3),
            branch_valid=torch.zeros(kb, dtype=torch.bool),
            branch_occ=torch.full((kb, t_steps, gx, gy, gz), Occ3DClass.FREE, dtype=torch.uint8),
            branch_agent_future=torch.zeros(kb, a_slots, t_steps, 3),
            branch_agent_valid=torch.zeros(kb, a_slots, t_steps, dtype=torch.bool),
            branch_collision=torch.zeros(kb, dtype=torch.bool),
        )
        path = extras_dir(self.dataroot, self.version) / "branches" / f"{scene.frames[i].token}.npz"
        if kb == 0 or not path.is_file():
            return out
        ref = scene.frames[i].pose
        data = load_npz(path, "branch file", keys=BRANCH_KEYS, optional=("plan",))
        plan = data.get("plan")
        k = min(kb, data["ego"].shape[0])
        if data["ego"].shape[1] != t_steps:
            raise ValueError(f"branch file {path}: ego has {data['ego'].shape[1]} steps, expected {t_steps}")
        # the plan the controller was given (what a planner feeds the model); else the driven poses
        if plan is not None:
            out["branch_plans"][:k] = torch.from_numpy(plan[:k].astype(np.float32))
        else:
            out["branch_plans"][:k] = torch.from_numpy(_relative(ref, data["ego"][:k].astype(np.float64)))
        out["branch_valid"][:k] = True
        out["branch_collision"][:k] = torch.from_numpy(data["collision"][:k].astype(bool))
        sem = torch.from_numpy(np.ascontiguousarray(data["semantics"][:k]))
        for q in range(k):
            for t in range(t_steps):
                out["branch_occ"][q, t] = splat_labels(sem[q, t], self.label_grid, np.zeros(3), cfg.grid)
        poses = _relative(ref, data["agent_pose"][:k].astype(np.float64))  # [K, A_b, T, 3]
        for b_idx, inst in enumerate(data["instance_tokens"].tolist()):
            if inst in slot:
                out["branch_agent_future"][:k, slot[inst]] = torch.from_numpy(poses[:, b_idx])
                out["branch_agent_valid"][:k, slot[inst]] = torch.from_numpy(
                    data["agent_valid"][:k, b_idx].astype(bool)
                )
        return out
