"""LIDAR_TOP: a 32-beam spinning lidar (nuScenes' Velodyne HDL-32E) ray cast against the frame's mesh.

Beams: `beams` elevations spread evenly over [-30.67°, +10.67°] (the HDL-32E's 32 rings, 1.333° apart);
ring 0 is the lowest beam. Azimuths: a full turn at `azimuth_resolution_deg` (default 1/3°, the HDL-32E at
nuScenes' 20 Hz: 32 × 1080 ≈ 34.6k rays, like a real nuScenes sweep), measured in the lidar frame.
Returns within [min_range, max_range] (default 1–70 m) are kept. Points are in the **ego frame**
(`LidarFrame.points_sensor(rig)` gives the LIDAR_TOP frame that nuScenes' `.pcd.bin` files store).
Intensity (0..255) = 255 · reflectivity(material or ground paint/class) · (0.25 + 0.75 |cos incidence|).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from carla_bridge.sensors.camera import _check_pose, _ego_to_local
from carla_bridge.sensors.mesh import DEFAULT_RADIUS, MATERIAL_REFLECTIVITY, SceneMesh, build_mesh, label_hits
from carla_bridge.sensors.rig import CameraRig
from carla_bridge.sensors.scene import DRIVEABLE, OTHER_FLAT, SIDEWALK, TERRAIN, RenderScene

HDL32E_ELEVATION_RANGE_DEG = (-30.67, 10.67)
AZIMUTH_RESOLUTION_DEG = 1.0 / 3.0  # HDL-32E at nuScenes' 20 Hz: 1080 firings per turn → ~34.6k rays per sweep
_GROUND_REFLECTIVITY = {DRIVEABLE: 0.12, OTHER_FLAT: 0.18, SIDEWALK: 0.22, TERRAIN: 0.3}
_PAINT_REFLECTIVITY = 0.85


def beam_elevations(beams: int = 32) -> np.ndarray:
    """`[beams]` elevations [rad], lowest first, evenly over the HDL-32E's -30.67°..+10.67°."""
    if not isinstance(beams, (int, np.integer)) or beams < 1:
        raise ValueError(f"beams must be a positive integer, got {beams!r}")
    lo, hi = HDL32E_ELEVATION_RANGE_DEG
    return np.radians(np.linspace(lo, hi, beams) if beams > 1 else np.array([0.0]))


@dataclass
class LidarFrame:
    """One lidar sweep (P returns).

    Attributes:
        points: `[P, 5]` float32 (x, y, z, intensity 0..255, ring) in the ego frame.
        semantic: `[P]` uint8 Occ3D class of the surface hit.
        instance: `[P]` int32 instance id (-1 none).
    """

    points: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray

    def points_sensor(self, rig: CameraRig) -> np.ndarray:
        """`[P, 5]` float32 points in the LIDAR_TOP frame (as stored in nuScenes `.pcd.bin`)."""
        e2l = np.linalg.inv(rig.lidar_to_ego_np())
        out = self.points.copy()
        out[:, :3] = (self.points[:, :3].astype(np.float64) @ e2l[:3, :3].T + e2l[:3, 3]).astype(np.float32)
        return out

    def tensor(self) -> Tensor:
        """`[P, 5]` float32 torch tensor (the layout of `Observation.lidar`)."""
        return torch.from_numpy(self.points)


def render_lidar(
    scene: RenderScene,
    rig: CameraRig,
    ego_pose: np.ndarray | None = None,
    beams: int = 32,
    *,
    azimuth_resolution_deg: float = AZIMUTH_RESOLUTION_DEG,
    max_range: float = 70.0,
    min_range: float = 1.0,
    radius: float = DEFAULT_RADIUS,
    mesh: SceneMesh | None = None,
    threads: int | None = None,
) -> LidarFrame:
    """Cast `beams × round(360 / azimuth_resolution_deg)` rays from LIDAR_TOP and keep the returns in range."""
    if not isinstance(rig, CameraRig):
        raise ValueError(f"rig must be a CameraRig, got {type(rig).__name__}")
    if not (np.isfinite(azimuth_resolution_deg) and 0 < azimuth_resolution_deg <= 90):
        raise ValueError(f"azimuth_resolution_deg must be in (0, 90], got {azimuth_resolution_deg}")
    if not (np.isfinite(max_range) and np.isfinite(min_range) and 0 <= min_range < max_range):
        raise ValueError(f"need 0 ≤ min_range < max_range, got min_range={min_range}, max_range={max_range}")
    elev = beam_elevations(beams)
    scene.validate()
    pose = _check_pose(scene, ego_pose)
    if mesh is None:
        mesh = build_mesh(dataclasses.replace(scene, ego_pose=pose), radius)
    n_az = max(1, round(360.0 / azimuth_resolution_deg))
    az = np.arange(n_az) * (2 * np.pi / n_az)
    el, azg = np.meshgrid(elev, az, indexing="ij")  # [beams, n_az]
    ring = np.broadcast_to(np.arange(len(elev))[:, None], el.shape).reshape(-1)
    d_lidar = np.stack([np.cos(el) * np.cos(azg), np.cos(el) * np.sin(azg), np.sin(el)], -1).reshape(-1, 3)
    l2e = rig.lidar_to_ego_np()
    rot, trans = _ego_to_local(pose)
    trans = trans + np.r_[pose[:2], 0.0] - mesh.origin
    d_ego = d_lidar @ l2e[:3, :3].T
    dirs = (d_ego @ rot.T).astype(np.float32)
    origin = (rot @ l2e[:3, 3] + trans).astype(np.float32)
    origins = np.broadcast_to(origin, dirs.shape)
    t, tri = mesh.cast(origins, dirs, threads)
    keep = (tri >= 0) & (t >= min_range) & (t <= max_range)
    idx = np.flatnonzero(keep)
    hits = label_hits(mesh, scene, origins[idx], dirs[idx], t[idx], tri[idx])
    # Intensity from material / ground class + paint, times the incidence.
    refl = np.empty(len(idx), np.float32)
    obj = hits.prim >= 0
    refl[obj] = MATERIAL_REFLECTIVITY[mesh.prims.material[hits.prim[obj]]]
    gsem = hits.semantic[~obj]
    refl[~obj] = np.select([gsem == c for c in _GROUND_REFLECTIVITY], list(_GROUND_REFLECTIVITY.values()), 0.3)
    refl[~obj & (hits.paint > 0)] = _PAINT_REFLECTIVITY
    cos_inc = np.abs(np.einsum("ij,ij->i", mesh.normals[tri[idx]], dirs[idx]))
    intensity = 255.0 * refl * (0.25 + 0.75 * cos_inc)
    # Hit points back to the ego frame: ego = R^T (local - trans).
    p_ego = (hits.points - trans) @ rot
    points = np.concatenate([p_ego, intensity[:, None], ring[idx, None]], 1).astype(np.float32)
    return LidarFrame(points=points, semantic=hits.semantic, instance=hits.instance)
