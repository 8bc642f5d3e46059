"""Six-camera renderer: one batched Embree ray cast per frame, Lambert shading, labels per pixel.

Outputs (V cameras, h × w pixels):
- rgb `[V, h, w, 3]` uint8,
- depth `[V, h, w]` float32: distance **along each camera's optical (z) axis** to the first surface [m]
  (the z of the hit in the camera frame, as a depth map from a pinhole camera; inf = sky),
- semantic `[V, h, w]` uint8 Occ3D class (17 free = sky),
- instance `[V, h, w]` int32 (`RenderScene.instance_id` of the box seen, -1 for everything else).

A ray goes through each pixel centre: pixel (i, j) ↔ image coordinates (u, v) = (j, i) (see `rig.py`).
Appearance: sky gradient, ground coloured from the semantic raster (asphalt with a world-anchored noise
texture, white/yellow paint, zebra stripes, lighter sidewalks, green grass), per-instance body colours with
a dark glass cabin, façades with windows, emissive traffic-light lamps, Lambert sun + ambient shading and
distance haze.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from carla_bridge.sensors.mesh import DEFAULT_RADIUS, MAT_FACADE, SceneMesh, build_mesh, label_hits
from carla_bridge.sensors.rig import CameraRig
from carla_bridge.sensors.scene import DRIVEABLE, MARK_WHITE, MARK_YELLOW, OTHER_FLAT, SIDEWALK, TERRAIN, RenderScene

# Ground albedo per Occ3D class and the strength of its texture noise.
_GROUND_ALBEDO = {
    DRIVEABLE: (0.30, 0.30, 0.32),
    OTHER_FLAT: (0.46, 0.44, 0.41),
    SIDEWALK: (0.62, 0.61, 0.59),
    TERRAIN: (0.30, 0.44, 0.19),
}
_GROUND_NOISE = {DRIVEABLE: 0.16, OTHER_FLAT: 0.14, SIDEWALK: 0.10, TERRAIN: 0.35}
_PAINT = {MARK_WHITE: (0.88, 0.88, 0.86), MARK_YELLOW: (0.85, 0.68, 0.15)}
_TEXTURE_CELL = 0.1  # [m]
_TEXTURE_SIZE = 512


@dataclass
class CameraFrame:
    """One frame of the camera rig (see the module docstring for the conventions).

    Attributes:
        rgb: `[V, h, w, 3]` uint8.
        depth: `[V, h, w]` float32 [m] along the optical axis, inf = sky.
        semantic: `[V, h, w]` uint8 Occ3D class, 17 = sky.
        instance: `[V, h, w]` int32, -1 = none.
    """

    rgb: np.ndarray
    depth: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray

    def images(self) -> Tensor:
        """`[V, 3, h, w]` uint8 torch tensor (the layout of `Observation.images`)."""
        return torch.from_numpy(np.ascontiguousarray(self.rgb.transpose(0, 3, 1, 2)))


@lru_cache(maxsize=8)
def _texture(seed: int) -> np.ndarray:
    """`[S, S]` float32 smooth-ish zero-mean noise tile (three octaves), tiled over the world at 0.1 m."""
    rng = np.random.default_rng(seed)
    out = np.zeros((_TEXTURE_SIZE, _TEXTURE_SIZE), np.float32)
    for octave, amp in ((8, 0.5), (32, 0.3), (_TEXTURE_SIZE, 0.35)):
        small = rng.standard_normal((octave, octave)).astype(np.float32)
        rep = _TEXTURE_SIZE // octave
        out += amp * np.kron(small, np.ones((rep, rep), np.float32))
    out /= out.std() + 1e-6
    return np.clip(out, -2.5, 2.5) / 2.5


def _ego_to_local(ego_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation `[3, 3]` and translation `[3]` from the ego frame to the mesh's local frame."""
    _, _, z, yaw = ego_pose
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]), np.array([0.0, 0.0, z])


def _check_pose(scene: RenderScene, ego_pose) -> np.ndarray:
    if ego_pose is None:
        return np.asarray(scene.ego_pose, np.float64)
    from carla_bridge.sensors.scene import _array

    pose = _array("ego_pose", ego_pose, np.float64, (4,))
    return pose


def render_cameras(
    scene: RenderScene,
    rig: CameraRig,
    ego_pose: np.ndarray | None = None,
    *,
    radius: float = DEFAULT_RADIUS,
    mesh: SceneMesh | None = None,
    threads: int | None = None,
) -> CameraFrame:
    """Render every camera of `rig` in one batched ray cast.

    Args:
        scene: the frame's `RenderScene` (validated here).
        rig: camera rig (resolution and calibration).
        ego_pose: (x, y, z, yaw) world pose of the ego; default `scene.ego_pose`.
        radius: geometry farther than this [m] from the ego is culled (ignored when `mesh` is given).
        mesh: a prebuilt `build_mesh(scene)` to share with `render_lidar`.
        threads: Embree worker threads (default min(4, cpu count)).
    """
    if not isinstance(rig, CameraRig):
        raise ValueError(f"rig must be a CameraRig, got {type(rig).__name__}")
    scene.validate()
    pose = _check_pose(scene, ego_pose)
    if mesh is None:
        mesh = build_mesh(dataclasses.replace(scene, ego_pose=pose), radius)
    rot, trans = _ego_to_local(pose)
    trans = trans + np.r_[pose[:2], 0.0] - mesh.origin
    v, h, w = rig.num_cameras, rig.height, rig.width
    rays = rig.camera_rays().reshape(v, h * w, 3)
    dirs = (rays @ rot.T.astype(np.float32)).reshape(-1, 3)
    cam_pos = rig.cam_to_ego_np()[:, :3, 3] @ rot.T + trans  # [V, 3]
    origins = np.repeat(cam_pos.astype(np.float32), h * w, axis=0)
    t, tri = mesh.cast(origins, dirs, threads)
    hits = label_hits(mesh, scene, origins, dirs, t, tri)
    rgb = _shade(mesh, scene, hits, dirs)
    return CameraFrame(
        rgb=rgb.reshape(v, h, w, 3),
        depth=t.reshape(v, h, w),
        semantic=hits.semantic.reshape(v, h, w),
        instance=hits.instance.reshape(v, h, w),
    )


def _shade(mesh: SceneMesh, scene: RenderScene, hits, dirs: np.ndarray) -> np.ndarray:
    """`[N, 3]` uint8 colours of the rays."""
    app = scene.appearance
    n = len(dirs)
    col = np.empty((n, 3), np.float32)
    dnorm = np.linalg.norm(dirs, axis=1)
    # Sky: horizon → zenith gradient by the ray's elevation.
    sky = hits.tri < 0
    hor, zen = np.float32(app.sky_horizon), np.float32(app.sky_zenith)
    if sky.any():
        el = np.clip(dirs[sky, 2] / dnorm[sky], 0.0, 1.0)
        a = np.sqrt(np.clip(el * 2.2, 0.0, 1.0))[:, None]
        col[sky] = hor + (zen - hor) * a
    sun = np.asarray(app.sun_direction, np.float32)
    sun = sun / np.linalg.norm(sun)
    hit = np.flatnonzero(~sky)
    if len(hit) == 0:
        return (col * 255).astype(np.uint8)
    nrm = mesh.normals[hits.tri[hit]]
    facing = np.einsum("ij,ij->i", nrm, dirs[hit]) > 0
    nrm[facing] *= -1
    light = app.ambient + app.sun_intensity * np.clip(nrm @ sun, 0.0, None)
    albedo = np.empty((len(hit), 3), np.float32)
    emissive = np.zeros(len(hit), bool)

    is_obj = hits.prim[hit] >= 0
    oi = np.flatnonzero(is_obj)
    if len(oi):
        prim = hits.prim[hit[oi]]
        albedo[oi] = mesh.prims.color[prim]
        emissive[oi] = mesh.prims.emissive[prim]
        fac = np.flatnonzero(mesh.prims.material[prim] == MAT_FACADE)
        if len(fac):
            albedo[oi[fac]] = _windows(mesh, prim[fac], hits.points[hit[oi[fac]]], albedo[oi[fac]], nrm[oi[fac]])
    gi = np.flatnonzero(~is_obj)
    if len(gi):
        rays = hit[gi]
        cls = hits.semantic[rays]
        tex = _texture(app.seed)
        pts = hits.points[rays, :2] + mesh.origin[:2]
        ti = np.floor(pts / _TEXTURE_CELL).astype(np.int64) % _TEXTURE_SIZE
        noise = tex[ti[:, 0], ti[:, 1]]
        rng = np.random.default_rng(app.seed)
        jitter = rng.uniform(-0.04, 0.04, (4, 3)).astype(np.float32)
        ga = np.empty((len(gi), 3), np.float32)
        amp = np.empty(len(gi), np.float32)
        for k, (c, base) in enumerate(_GROUND_ALBEDO.items()):
            m = cls == c
            ga[m] = np.float32(base) + jitter[k]
            amp[m] = _GROUND_NOISE[c]
        ga *= (1.0 + amp * noise)[:, None]
        paint = hits.paint[rays]
        for code, pc in _PAINT.items():
            m = paint == code
            ga[m] = np.float32(pc) * (1.0 + 0.05 * noise[m])[:, None]
        albedo[gi] = ga
    shaded = albedo * light[:, None]
    shaded[emissive] = albedo[emissive]
    # Distance haze towards the horizon colour.
    dist = hits.t[hit] * dnorm[hit]
    f = (1.0 - np.exp(-dist / max(app.haze_distance, 1e-3)))[:, None].astype(np.float32)
    col[hit] = shaded * (1 - f) + hor * f
    return (np.clip(col, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def _windows(mesh: SceneMesh, prim: np.ndarray, pts: np.ndarray, albedo: np.ndarray, nrm: np.ndarray) -> np.ndarray:
    """Façade albedo with a grid of dark windows (3 m storeys, 2.6 m bays) on the vertical walls."""
    boxes = mesh.prims.boxes[prim]
    rel = pts + mesh.origin - boxes[:, :3]
    c, s = np.cos(boxes[:, 3]), np.sin(boxes[:, 3])
    lx = c * rel[:, 0] + s * rel[:, 1]
    ly = -s * rel[:, 0] + c * rel[:, 1]
    # Along-wall coordinate: y on walls facing ±x (box frame), x on walls facing ±y.
    nx_local = np.abs(c * nrm[:, 0] + s * nrm[:, 1])
    u = np.where(nx_local > 0.7, ly, lx)
    zb = rel[:, 2] + boxes[:, 6] / 2  # height above the building's base
    fu = np.mod(u / 2.6, 1.0)
    fz = np.mod(zb / 3.0, 1.0)
    win = (np.abs(nrm[:, 2]) < 0.5) & (zb > 1.0) & (zb < boxes[:, 6] - 0.8) & (fu > 0.25) & (fu < 0.75)
    win &= (fz > 0.3) & (fz < 0.8)
    out = albedo.copy()
    out[win] = np.float32([0.16, 0.19, 0.24])
    return out
