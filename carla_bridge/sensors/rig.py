"""The nuScenes camera rig and LIDAR_TOP with the real calibration of vehicle n015.

Camera frame: z forward (optical axis), x right, y down. Ego frame: nuScenes (x forward, y left, z up,
origin at the rear axle on the ground). Pixel convention: pixel (row i, column j) has its centre at image
coordinates (u, v) = (j, i), i.e. `K @ p_cam` lands on integer coordinates at pixel centres. Intrinsics are
given at 1600×900 and scaled per axis for other resolutions (`K' = diag(w/1600, h/900, 1) @ K`), the
convention used when resizing nuScenes images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

CAMERAS: tuple[str, ...] = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)
LIDAR = "LIDAR_TOP"
FULL_RESOLUTION = (1600, 900)
RIG_PATH = Path(__file__).resolve().parents[1] / "data" / "nuscenes" / "rig_n015.json"


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix `[..., 3, 3]` from unit quaternions `[..., 4]` (w, x, y, z); normalises first."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _transform(translation: list[float], rotation: list[float]) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = quaternion_to_matrix(np.asarray(rotation))
    t[:3, 3] = translation
    return t


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"camera rig calibration file not found: {p}")
    with p.open() as f:
        data = json.load(f)
    missing = [n for n in (*CAMERAS, LIDAR) if n not in data]
    if missing:
        raise ValueError(f"rig calibration {p} lacks sensors {missing}")
    return data


@dataclass(frozen=True)
class CameraRig:
    """Six cameras + LIDAR_TOP, extrinsics in the ego frame.

    Attributes:
        names: camera channel names, `V` of them, in rig order (`CAMERAS`).
        width, height: image size [px] of every camera.
        intrinsics: `[V, 3, 3]` float32 pinhole intrinsics at (width, height).
        cam_to_ego: `[V, 4, 4]` float32 camera (z fwd, x right, y down) → ego transforms.
        lidar_to_ego: `[4, 4]` float32 LIDAR_TOP → ego transform (lidar frame x right, y forward, z up,
            as nuScenes' LIDAR_TOP).
        cam_translation / cam_rotation: `[V, 3]` / `[V, 4]` (w, x, y, z) float64 calibration as in the JSON
            (what a nuScenes `calibrated_sensor` record stores); lidar_translation `[3]`, lidar_rotation `[4]`.
    """

    names: tuple[str, ...]
    width: int
    height: int
    intrinsics: Tensor
    cam_to_ego: Tensor
    lidar_to_ego: Tensor
    cam_translation: np.ndarray
    cam_rotation: np.ndarray
    lidar_translation: np.ndarray
    lidar_rotation: np.ndarray

    @classmethod
    def nuscenes(cls, width: int = 1600, height: int = 900, path: str | Path | None = None) -> CameraRig:
        """The real n015 rig, intrinsics scaled from 1600×900 to (width, height)."""
        for name, value in (("width", width), ("height", height)):
            if not isinstance(value, (int, np.integer)) or value < 2:
                raise ValueError(f"CameraRig.{name} must be an integer ≥ 2, got {value!r}")
        data = _load(str(path or RIG_PATH))
        w0, h0 = data.get("image_size", FULL_RESOLUTION)
        scale = np.diag([width / w0, height / h0, 1.0])
        intr = np.stack([scale @ np.asarray(data[n]["camera_intrinsic"], dtype=np.float64) for n in CAMERAS])
        trans = np.asarray([data[n]["translation"] for n in CAMERAS], dtype=np.float64)
        rots = np.asarray([data[n]["rotation"] for n in CAMERAS], dtype=np.float64)
        c2e = np.stack([_transform(t, r) for t, r in zip(trans, rots)])
        lt = np.asarray(data[LIDAR]["translation"], dtype=np.float64)
        lr = np.asarray(data[LIDAR]["rotation"], dtype=np.float64)
        return cls(
            names=CAMERAS,
            width=int(width),
            height=int(height),
            intrinsics=torch.from_numpy(intr).float(),
            cam_to_ego=torch.from_numpy(c2e).float(),
            lidar_to_ego=torch.from_numpy(_transform(lt, lr)).float(),
            cam_translation=trans,
            cam_rotation=rots,
            lidar_translation=lt,
            lidar_rotation=lr,
        )

    @property
    def num_cameras(self) -> int:
        return len(self.names)

    def intrinsics_np(self) -> np.ndarray:
        """`[V, 3, 3]` float64 intrinsics."""
        return self.intrinsics.double().numpy()

    def cam_to_ego_np(self) -> np.ndarray:
        """`[V, 4, 4]` float64 camera → ego transforms (from the float64 calibration, not the float32 copy)."""
        return np.stack([_transform(t, r) for t, r in zip(self.cam_translation, self.cam_rotation)])

    def lidar_to_ego_np(self) -> np.ndarray:
        """`[4, 4]` float64 LIDAR_TOP → ego transform."""
        return _transform(self.lidar_translation, self.lidar_rotation)

    def camera_rays(self) -> np.ndarray:
        """`[V, h, w, 3]` float32 ray directions in the **ego** frame, scaled so that their component along
        each camera's optical axis is 1 (a hit at ray parameter t has depth t along the camera z axis)."""
        return _camera_rays(self.width, self.height, self.intrinsics_np().tobytes(), self.cam_to_ego_np().tobytes())

    def ray_norms_and_elevation(self) -> tuple[np.ndarray, np.ndarray]:
        """`([V·h·w], [V·h·w])` float32 length of each `camera_rays()` direction and the sine of its elevation
        above the ego's xy plane (both unchanged by the ego's yaw)."""
        return _ray_stats(self.width, self.height, self.intrinsics_np().tobytes(), self.cam_to_ego_np().tobytes())

    def project(self, points_ego: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project ego-frame points `[P, 3]` into every camera.

        Returns:
            uv: `[V, P, 2]` float64 image coordinates (u = column, v = row).
            depth: `[V, P]` float64 depth along each camera's z axis (≤ 0: behind the camera).
        """
        pts = np.asarray(points_ego, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"points_ego must have shape [P, 3], got {pts.shape}")
        e2c = np.linalg.inv(self.cam_to_ego_np())  # [V,4,4]
        pc = np.einsum("vij,pj->vpi", e2c[:, :3, :3], pts) + e2c[:, None, :3, 3]
        depth = pc[..., 2]
        pix = np.einsum("vij,vpj->vpi", self.intrinsics_np(), pc)
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = pix[..., :2] / pix[..., 2:3]
        return uv, depth


@lru_cache(maxsize=8)
def _camera_rays(width: int, height: int, intr_bytes: bytes, c2e_bytes: bytes) -> np.ndarray:
    intr = np.frombuffer(intr_bytes, dtype=np.float64).reshape(-1, 3, 3)
    c2e = np.frombuffer(c2e_bytes, dtype=np.float64).reshape(-1, 4, 4)
    u = np.arange(width, dtype=np.float64)
    v = np.arange(height, dtype=np.float64)
    uu, vv = np.meshgrid(u, v)  # [h, w]
    out = np.empty((len(intr), height, width, 3), dtype=np.float32)
    for i, (k, t) in enumerate(zip(intr, c2e)):
        d = np.stack([(uu - k[0, 2]) / k[0, 0], (vv - k[1, 2]) / k[1, 1], np.ones_like(uu)], -1)  # camera frame
        out[i] = d @ t[:3, :3].T
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def _ray_stats(width: int, height: int, intr_bytes: bytes, c2e_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    rays = _camera_rays(width, height, intr_bytes, c2e_bytes).reshape(-1, 3)
    norm = np.linalg.norm(rays, axis=1).astype(np.float32)
    sin_el = (rays[:, 2] / norm).astype(np.float32)
    norm.setflags(write=False)
    sin_el.setflags(write=False)
    return norm, sin_el
