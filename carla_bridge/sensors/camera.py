"""Six-camera renderer: Embree ray casting of one per-frame mesh, Lambert shading, labels per pixel.

All cameras of a frame share one mesh (`build_mesh`); their rays are cut into tiles (`TILE_RAYS`) that a
thread pool casts, labels and shades (Embree and numpy release the GIL, so 2 threads ≈ 2× on 2 cores).

Outputs (V cameras, h × w pixels):
- rgb `[V, h, w, 3]` uint8,
- depth `[V, h, w]` float32: distance **along each camera's optical (z) axis** to the first surface [m]
  (the z of the hit in the camera frame, as a depth map from a pinhole camera; inf = sky),
- semantic `[V, h, w]` uint8 Occ3D class (17 free = sky),
- instance `[V, h, w]` int32 (`RenderScene.instance_id` of the box seen, -1 for everything else).

A ray goes through each pixel centre: pixel (i, j) ↔ image coordinates (u, v) = (j, i) (see `rig.py`).
Appearance: sky gradient, ground coloured from the semantic raster (asphalt with a world-anchored noise
texture faded with distance, white/yellow paint, zebra stripes, lighter sidewalks, green grass), sun shadows
cast on the ground (one occlusion ray per ground pixel), per-instance body colours with a glass cabin, wheels
and head/tail lamps, façades with windows, emissive traffic-light lamps, flat Lambert sun + ambient shading
(per camera and triangle) and distance haze.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from carla_bridge.sensors.mesh import DEFAULT_RADIUS, MAT_FACADE, SceneMesh, build_mesh, label_hits
from carla_bridge.sensors.rig import CameraRig
from carla_bridge.sensors.scene import (
    DRIVEABLE,
    MARK_CROSSWALK,
    MARK_LANE,
    MARK_STOP,
    MARK_YELLOW,
    OTHER_FLAT,
    SIDEWALK,
    TERRAIN,
    RenderScene,
)

# Ground albedo per Occ3D class and the strength of its texture noise.
_GROUND_ALBEDO = {
    DRIVEABLE: (0.30, 0.30, 0.32),
    OTHER_FLAT: (0.46, 0.44, 0.41),
    SIDEWALK: (0.62, 0.61, 0.59),
    TERRAIN: (0.30, 0.44, 0.19),
}
_GROUND_NOISE = {DRIVEABLE: 0.16, OTHER_FLAT: 0.14, SIDEWALK: 0.10, TERRAIN: 0.35}
_WHITE_PAINT = (0.88, 0.88, 0.86)
_PAINT = {
    MARK_LANE: _WHITE_PAINT,
    MARK_CROSSWALK: _WHITE_PAINT,
    MARK_STOP: _WHITE_PAINT,
    MARK_YELLOW: (0.85, 0.68, 0.15),
}
_N_PAINT = 8  # paint codes 0..7 (unknown non-zero codes render white)
_TEXTURE_CELL = 0.1  # [m]
_TEXTURE_SIZE = 512
TILE_RAYS = 32768  # rays per work item of the thread pool


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

    def mosaic(self) -> np.ndarray:
        """`[2h, 3w, 3]` uint8 preview in the usual nuScenes layout: FRONT_LEFT, FRONT, FRONT_RIGHT over
        BACK_LEFT, BACK, BACK_RIGHT (needs the six cameras in `CAMERAS` order)."""
        if len(self.rgb) != 6:
            raise ValueError(f"CameraFrame.mosaic needs the 6 rig cameras, got {len(self.rgb)}")
        top = np.concatenate([self.rgb[2], self.rgb[0], self.rgb[1]], axis=1)
        bottom = np.concatenate([self.rgb[4], self.rgb[3], self.rgb[5]], axis=1)
        return np.concatenate([top, bottom], axis=0)


@lru_cache(maxsize=8)
def _texture(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean noise tiles `[S·S]` float32 (flattened), tiled over the world at 0.1 m cells: the coarse
    octaves (6.4 m and 1.6 m blobs) and the per-cell fine octave, which the shader fades out with distance
    (a one-level mip map: no sparkle where a pixel covers several cells). Their sum has unit scale ≈ 2.5σ."""
    rng = np.random.default_rng(seed)
    parts = []
    for octave, amp in ((8, 0.5), (32, 0.3), (_TEXTURE_SIZE, 0.35)):
        small = rng.standard_normal((octave, octave)).astype(np.float32)
        rep = _TEXTURE_SIZE // octave
        parts.append(amp * np.kron(small, np.ones((rep, rep), np.float32)))
    scale = np.float32(1.0 / (2.5 * (sum(parts).std() + 1e-6)))
    return ((parts[0] + parts[1]) * scale).ravel(), (parts[2] * scale).ravel()


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
    tile: int = TILE_RAYS,
    shadows: bool = True,
    antialias: bool = False,
) -> CameraFrame:
    """Render every camera of `rig` from one frame mesh; tiles of rays are cast and shaded in a thread pool.

    Args:
        scene: the frame's `RenderScene` (validated here).
        rig: camera rig (resolution and calibration).
        ego_pose: (x, y, z, yaw) world pose of the ego; default `scene.ego_pose`.
        radius: geometry farther than this [m] from the ego is culled (ignored when `mesh` is given).
        mesh: a prebuilt `build_mesh(scene)` to share with `render_lidar`.
        threads: worker threads (Embree and numpy release the GIL); default min(4, cpu count).
        tile: rays per work item (small enough to stay in cache).
        shadows: cast sun shadows onto the ground (one occlusion ray per ground pixel, ~+20 % time).
        antialias: re-sample edge pixels (where the face, class, paint or shadow changes to a neighbour) with 3
            more sub-pixel rays and average the colours; depth and labels stay those of the pixel centre.
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
    pixels = h * w
    rays = rig.camera_rays().reshape(v * pixels, 3)
    norm, sin_el = rig.ray_norms_and_elevation()
    cos_yaw, sin_yaw = np.float32(rot[0, 0]), np.float32(rot[1, 0])
    cam_pos = (rig.cam_to_ego_np()[:, :3, 3] @ rot.T + trans).astype(np.float32)  # [V, 3] local frame
    shader = _Shader(mesh, scene, cam_pos, rig.intrinsics_np()[:, 0, 0])
    rgb = np.empty((v * pixels, 3), np.uint8)
    depth = np.empty(v * pixels, np.float32)
    semantic = np.empty(v * pixels, np.uint8)
    instance = np.empty(v * pixels, np.int32)

    key = np.empty(v * pixels, np.int64) if antialias else None

    def trace(cam: int, ray: np.ndarray, ray_norm: np.ndarray, ray_sin_el: np.ndarray):
        """Cast, label and shade ego-frame rays `[n, 3]` of camera `cam` → (rgb [n, 3], t, hits, shadow key)."""
        dirs = np.empty_like(ray)  # ego frame → local frame: rotate about z by the ego's yaw
        dirs[:, 0] = ray[:, 0] * cos_yaw - ray[:, 1] * sin_yaw
        dirs[:, 1] = ray[:, 0] * sin_yaw + ray[:, 1] * cos_yaw
        dirs[:, 2] = ray[:, 2]
        origins = np.broadcast_to(cam_pos[cam], dirs.shape)
        t, tri = mesh.cast(origins, dirs, threads=1)
        hits = label_hits(mesh, scene, origins, dirs, t, tri)
        shadow = None
        shadow_px = np.zeros(len(t), bool)
        if shadows:
            gi = np.flatnonzero(hits.ground)
            p = np.take(hits.points, gi, axis=0)
            p[:, 2] += np.float32(0.02)
            shadow = mesh.occluded(p, shader.sun)
            shadow_px[gi] = shadow
        return shader(cam, hits, dirs, ray_norm, ray_sin_el, shadow), t, hits, shadow_px

    def work(cam: int, lo: int, hi: int) -> None:
        out, t, hits, shadow_px = trace(cam, rays[lo:hi], norm[lo:hi], sin_el[lo:hi])
        rgb[lo:hi] = out
        depth[lo:hi] = t
        semantic[lo:hi] = hits.semantic
        instance[lo:hi] = hits.instance
        if key is not None:  # what makes a visible edge: box face (triangle pair), sky/ground, class, paint, shadow
            surface = np.where(hits.ground, -2, hits.tri // 2).astype(np.int64)
            key[lo:hi] = ((surface * 32 + hits.semantic) * 8 + np.minimum(hits.paint, 7)) * 2 + shadow_px

    n_tiles = max(1, round(pixels / max(tile, 1)))
    jobs = [(c, c * pixels + a, c * pixels + b) for c in range(v) for a, b in _bounds(pixels, n_tiles)]
    threads = threads or min(4, os.cpu_count() or 1)
    _run(work, jobs, threads)
    if key is not None:
        _antialias(rig, rgb, key.reshape(v, h, w), trace, tile, threads)
    return CameraFrame(
        rgb=rgb.reshape(v, h, w, 3),
        depth=depth.reshape(v, h, w),
        semantic=semantic.reshape(v, h, w),
        instance=instance.reshape(v, h, w),
    )


def _run(fn, jobs: list[tuple], threads: int) -> None:
    if threads <= 1:
        for job in jobs:
            fn(*job)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda job: fn(*job), jobs))


_AA_OFFSETS = np.array([[-1 / 3, -1 / 3], [1 / 3, -1 / 3], [0.0, 1 / 3]])  # (du, dv) around the pixel centre


def _antialias(rig: CameraRig, rgb: np.ndarray, key: np.ndarray, trace, tile: int, threads: int) -> None:
    """Average the centre sample of every edge pixel (`key` differs from a 4-neighbour) with 3 sub-pixel rays."""
    v, h, w = key.shape
    edge = np.zeros_like(key, bool)
    dx = key[:, :, 1:] != key[:, :, :-1]
    dy = key[:, 1:, :] != key[:, :-1, :]
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    intr = rig.intrinsics_np()
    rot = rig.cam_to_ego_np()[:, :3, :3]
    acc = rgb.reshape(v, h, w, 3).astype(np.float32)
    jobs = []
    for cam in range(v):
        rows, cols = np.nonzero(edge[cam])
        if len(rows) == 0:
            continue
        k = intr[cam]
        u = (cols[:, None] + _AA_OFFSETS[None, :, 0]).ravel()
        vv = (rows[:, None] + _AA_OFFSETS[None, :, 1]).ravel()
        d_cam = np.stack([(u - k[0, 2]) / k[0, 0], (vv - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
        d_ego = (d_cam @ rot[cam].T).astype(np.float32)
        nrm = np.linalg.norm(d_ego, axis=1).astype(np.float32)
        jobs += [(cam, rows, cols, d_ego[a:b], nrm[a:b], a, b) for a, b in _bounds(len(u), max(1, len(u) // tile))]
    sums = {}

    def work(cam, rows, cols, ray, ray_norm, a, b):
        out, *_ = trace(cam, ray, ray_norm, ray[:, 2] / ray_norm)
        sums[(cam, a)] = (out, a, b)

    _run(work, jobs, threads)
    for cam in range(v):
        rows, cols = np.nonzero(edge[cam])
        if len(rows) == 0:
            continue
        sub_rgb = np.concatenate([o for (c, _), (o, _, _) in sorted(sums.items(), key=lambda kv: kv[0]) if c == cam])
        sub_rgb = sub_rgb.reshape(len(rows), len(_AA_OFFSETS), 3).astype(np.float32)
        acc[cam, rows, cols] = (acc[cam, rows, cols] + sub_rgb.sum(1)) / (1 + len(_AA_OFFSETS))
    rgb[:] = (acc.reshape(-1, 3) + 0.5).astype(np.uint8)


def _bounds(n: int, parts: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n, parts + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


class _Shader:
    """Per-frame shading tables; `__call__(cam, hits, dirs)` colours one tile of camera `cam`.

    Flat shading: the light of a triangle seen from one camera is a constant, so it is computed per
    (camera, triangle) once per frame and gathered per pixel; only ground texture/paint, façade windows,
    sky and haze are per-pixel work.
    """

    def __init__(self, mesh: SceneMesh, scene: RenderScene, cam_pos: np.ndarray, focal: np.ndarray) -> None:
        app = scene.appearance
        self.mesh, self.seed = mesh, app.seed
        n_tri = len(mesh.triangles)
        sun = np.asarray(app.sun_direction, np.float32)
        sun = sun / np.linalg.norm(sun)
        centre = mesh.triangles.mean(1)  # [F, 3]
        side = np.einsum("vfk,fk->vf", cam_pos[:, None, :] - centre[None], mesh.normals)
        ndots = np.where(side >= 0, 1.0, -1.0).astype(np.float32) * (mesh.normals @ sun)[None]  # [V, F]
        light = np.float32(app.ambient) + np.float32(app.sun_intensity) * np.clip(ndots, 0.0, None)
        is_prim = mesh.tri_prim >= 0
        prim = mesh.tri_prim[is_prim]
        albedo = np.ones((n_tri, 3), np.float32)
        albedo[is_prim] = mesh.prims.color[prim]
        emissive = np.zeros(n_tri, bool)
        emissive[is_prim] = mesh.prims.emissive[prim]
        light[:, emissive] = 1.0
        self.light = light  # [V, F]
        self.sun = sun
        self.ambient = np.float32(app.ambient)
        self.table = light[..., None] * albedo[None]  # [V, F, 3] shaded colour per camera and triangle
        # Façade windows: per-triangle along-wall axis, box centre, base height and building height.
        self.facade = np.zeros(n_tri, bool)
        self.facade[is_prim] = mesh.prims.material[prim] == MAT_FACADE
        face = mesh.tri_face  # 0-3 walls ⟂ the box's x axis, 4-7 walls ⟂ y, 8-11 bottom/top, -1 ground
        self.facade &= (face >= 0) & (face < 8)
        boxes = np.zeros((n_tri, 7))
        boxes[is_prim] = mesh.prims.boxes[prim]
        along = boxes[:, 3] + np.where(face < 4, np.pi / 2, 0.0)
        ax, ay = np.cos(along), np.sin(along)
        cx, cy = boxes[:, 0] - mesh.origin[0], boxes[:, 1] - mesh.origin[1]
        self.win_ax, self.win_ay = ax.astype(np.float32), ay.astype(np.float32)
        self.win_u0 = (cx * ax + cy * ay).astype(np.float32)  # along-wall coordinate u = p·axis - u0
        self.win_base = (boxes[:, 2] - boxes[:, 6] / 2).astype(np.float32)
        self.win_height = boxes[:, 6].astype(np.float32)
        self.alb, self.amp = _ground_tables(app.seed)
        self.tex_coarse, self.tex_fine = _texture(app.seed)
        self.focal = np.float32(focal)  # [V] px
        self.tex_offset = np.round(mesh.origin[:2] / _TEXTURE_CELL).astype(np.int64) % _TEXTURE_SIZE
        self.hor, self.zen = np.float32(app.sky_horizon), np.float32(app.sky_zenith)
        self.haze = np.float32(max(app.haze_distance, 1e-3))

    def __call__(
        self, cam: int, hits, dirs: np.ndarray, norm: np.ndarray, sin_el: np.ndarray, shadow: np.ndarray | None = None
    ) -> np.ndarray:
        """`[n, 3]` uint8 colours of one tile of rays from camera `cam`.

        Args:
            hits: `label_hits` of the tile; dirs `[n, 3]` its ray directions; norm `[n]` their lengths;
            sin_el `[n]` the sine of their elevation (for the sky gradient); shadow: optional `[G]` bool per
            ground hit (in ray order): the sun is blocked there, leaving ambient light only.
        """
        take = np.take
        n = len(dirs)
        hit = np.flatnonzero(hits.tri >= 0)
        tri = take(hits.tri, hit)
        col_hit = take(self.table[cam], tri, axis=0)  # [H, 3]
        g = np.flatnonzero(take(hits.ground, hit))
        if len(g):
            rays = take(hit, g)
            paint = np.minimum(take(hits.paint, rays), _N_PAINT - 1)
            code = take(hits.semantic, rays).astype(np.intp) * _N_PAINT + paint
            xy = take(hits.points, rays, axis=0)[:, :2] * np.float32(1.0 / _TEXTURE_CELL)
            ti = (np.floor(xy).astype(np.int64) + self.tex_offset) % _TEXTURE_SIZE
            flat = ti[:, 0] * _TEXTURE_SIZE + ti[:, 1]
            # Fine octave at full strength while a pixel covers ≤ half a cell, gone once it covers a whole one.
            footprint = take(hits.t, rays) * take(norm, rays) / self.focal[cam]
            detail = np.clip(2.0 - footprint * np.float32(2.0 / _TEXTURE_CELL), 0.0, 1.0)
            noise = np.clip(take(self.tex_coarse, flat) + detail * take(self.tex_fine, flat), -1.0, 1.0)
            shade = 1.0 + take(self.amp, code) * noise
            if shadow is not None and shadow.any():
                shade[shadow] *= self.ambient / take(self.light[cam], take(tri, g[shadow]))
            col_hit[g] *= take(self.alb, code, axis=0) * shade[:, None]
        f = np.flatnonzero(take(self.facade, tri))
        if len(f):
            tf = take(tri, f)
            p = take(hits.points, take(hit, f), axis=0)
            u = p[:, 0] * take(self.win_ax, tf) + p[:, 1] * take(self.win_ay, tf) - take(self.win_u0, tf)
            zb = p[:, 2] - take(self.win_base, tf)
            fu = u * np.float32(1 / 2.6)
            fu -= np.floor(fu)
            fz = zb * np.float32(1 / 3.0)
            fz -= np.floor(fz)
            win = (zb > 1.0) & (zb < take(self.win_height, tf) - 0.8) & (fu > 0.25) & (fu < 0.75)
            win &= (fz > 0.3) & (fz < 0.8)
            fw = f[win]
            col_hit[fw] = np.float32([0.16, 0.19, 0.24]) * take(self.light[cam], take(tri, fw))[:, None]
        dist = take(hits.t, hit) * take(norm, hit)
        fog = 1.0 - np.exp(-dist / self.haze)
        col = np.empty((n, 3), np.float32)
        col_hit += (self.hor - col_hit) * fog[:, None]
        col[hit] = col_hit
        sky = np.flatnonzero(hits.tri < 0)
        if len(sky):
            a = np.sqrt(np.clip(take(sin_el, sky) * np.float32(2.2), 0.0, 1.0))
            col[sky] = self.hor + (self.zen - self.hor) * a[:, None]
        col *= np.float32(255)
        np.clip(col, 0.0, 255.0, out=col)
        col += np.float32(0.5)
        return col.astype(np.uint8)


@lru_cache(maxsize=8)
def _ground_tables(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Albedo `[18·P, 3]` and texture amplitude `[18·P]` indexed by class·P + paint code (P = `_N_PAINT`)."""
    rng = np.random.default_rng(seed)
    alb = np.tile(np.float32(_GROUND_ALBEDO[TERRAIN]), (18 * _N_PAINT, 1))
    amp = np.full(18 * _N_PAINT, _GROUND_NOISE[TERRAIN], np.float32)
    for cls, base in _GROUND_ALBEDO.items():
        jitter = rng.uniform(-0.04, 0.04, 3).astype(np.float32)
        alb[cls * _N_PAINT] = np.float32(base) + jitter
        amp[cls * _N_PAINT] = _GROUND_NOISE[cls]
    for cls in range(18):
        for code in range(1, _N_PAINT):
            alb[cls * _N_PAINT + code] = _PAINT.get(code, _WHITE_PAINT)
            amp[cls * _N_PAINT + code] = 0.05
    return alb, amp
