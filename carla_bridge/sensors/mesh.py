"""Scene → oriented-box primitives → one triangle mesh per frame, ray cast with Embree.

Every renderable thing is built from yaw-oriented boxes (vehicles = body + cabin, trees = trunk + two
crown blocks, light heads = pole + housing + three lamps), so a plain slab test over the same primitives
(`carla_bridge.sensors.reference`) is an exact independent reference. The ground is a separate triangle
grid (one quad for a flat patch, a ~2 m grid when the patch carries per-cell heights) with a skirt out to
`GROUND_EXTENT`; its colour and class come from the raster at each hit's xy, not from the triangles.

The mesh lives in a local frame: world coordinates minus `origin ≈ (ego_x, ego_y, 0)`, which keeps
Embree's float32 exact to ~1e-5 m anywhere in a town.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from carla_bridge.sensors.scene import (
    FREE,
    GROUND_CLASSES,
    LIGHT_GREEN,
    LIGHT_RED,
    LIGHT_YELLOW,
    MANMADE,
    TERRAIN,
    VEGETATION,
    HeightField,
    RenderScene,
)

GROUND_EXTENT = 600.0  # [m] half size of the ground skirt around the ego
DEFAULT_RADIUS = 80.0  # [m] geometry farther than this (xy, from the ego) is culled
DETAIL_RADIUS = 40.0  # [m] vehicles farther than this are drawn without wheels and lamps

# Materials (`Primitives.material`): shading and lidar reflectivity.
MAT_PAINT, MAT_GLASS, MAT_FACADE, MAT_FOLIAGE, MAT_BARK, MAT_METAL, MAT_LAMP, MAT_CLOTH, MAT_PLASTIC = range(9)
MATERIAL_REFLECTIVITY = np.array([0.55, 0.15, 0.35, 0.25, 0.2, 0.5, 0.9, 0.3, 0.45], dtype=np.float32)

# Unit-box corners (x, y, z ∈ ±0.5) and 12 triangles, outward counter-clockwise.
_CORNERS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
_FACES = np.array(
    [
        [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5],  # -x, +x
        [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],  # -y, +y
        [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],  # -z, +z
    ]
)  # fmt: skip

VEHICLE_CABIN = (4,)  # car
VEHICLE_BUS = (3,)
VEHICLE_TRUCK = (5, 10)  # construction vehicle, truck
_LAMP_COLORS = {
    LIGHT_RED: (1.0, 0.12, 0.08),
    LIGHT_YELLOW: (1.0, 0.75, 0.05),
    LIGHT_GREEN: (0.1, 1.0, 0.35),
}
_FACADES = np.array(
    [[0.78, 0.72, 0.62], [0.62, 0.60, 0.58], [0.66, 0.42, 0.33], [0.85, 0.83, 0.78], [0.52, 0.55, 0.60],
     [0.74, 0.66, 0.50], [0.45, 0.40, 0.38]],
    dtype=np.float32,
)  # fmt: skip
_STATIC_COLORS = {1: (0.85, 0.85, 0.82), 8: (0.95, 0.45, 0.08), 15: (0.55, 0.55, 0.56), 16: (0.22, 0.42, 0.18)}


@dataclass
class Primitives:
    """K yaw-oriented boxes with their labels.

    Attributes:
        boxes: `[K, 7]` float64 (x, y, z_centre, yaw, length, width, height), world frame.
        cls: `[K]` uint8 Occ3D class.
        instance: `[K]` int32 instance id (-1: static).
        color: `[K, 3]` float32 albedo in [0, 1].
        emissive: `[K]` bool (lit lamps: colour shown unshaded).
        material: `[K]` uint8 `MAT_*`.
        open_bottom: `[K]` bool: the box rests on the ground or on another part, so its bottom face can never
            be seen and is left out of the mesh.
    """

    boxes: np.ndarray
    cls: np.ndarray
    instance: np.ndarray
    color: np.ndarray
    emissive: np.ndarray
    material: np.ndarray
    open_bottom: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


class _Builder:
    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, boxes, cls, instance, color, emissive, material, open_bottom: bool = False) -> None:
        k = len(boxes)
        if k == 0:
            return

        def full(v, dtype, tail=()):
            a = np.asarray(v, dtype=dtype)
            return np.broadcast_to(a, (k, *tail)).copy()

        self.parts.append(
            (
                np.asarray(boxes, np.float64).reshape(k, 7),
                full(cls, np.uint8),
                full(instance, np.int32),
                full(color, np.float32, (3,)),
                full(emissive, bool),
                full(material, np.uint8),
                full(open_bottom, bool),
            )
        )

    def build(self) -> Primitives:
        if not self.parts:
            return Primitives(
                np.zeros((0, 7)),
                np.zeros(0, np.uint8),
                np.zeros(0, np.int32),
                np.zeros((0, 3), np.float32),
                np.zeros(0, bool),
                np.zeros(0, np.uint8),
                np.zeros(0, bool),
            )
        return Primitives(*(np.concatenate([p[i] for p in self.parts]) for i in range(7)))


def _part(boxes: np.ndarray, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """Sub-boxes `[K, 7]` of parent boxes `[K, 7]`: x ∈ [x0, x1]·length, y ∈ [y0, y1]·width (fractions in
    [-0.5, 0.5] of the parent's frame) and z ∈ [z0, z1]·height above the parent's bottom."""
    x, y, zc, yaw, ln, w, h = boxes.T
    cx, cy = (x0 + x1) / 2 * ln, (y0 + y1) / 2 * w
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack(
        [x + c * cx - s * cy, y + s * cx + c * cy, zc - h / 2 + (z0 + z1) / 2 * h, yaw, (x1 - x0) * ln,
         (y1 - y0) * w, (z1 - z0) * h],
        -1,
    )  # fmt: skip


def _sub_boxes(boxes: np.ndarray, fx0, fx1, fy, fz0, fz1) -> np.ndarray:
    """`_part` centred laterally with width fraction `fy`."""
    return _part(boxes, fx0, fx1, -fy / 2, fy / 2, fz0, fz1)


def _add_vehicle_details(b: _Builder, bx: np.ndarray, c, i, wheel_x: float, lamp_z: float, near: np.ndarray) -> None:
    """Four dark wheels and head/tail lamps (white front, red rear) of the vehicles `bx [K, 7]` that are `near`."""
    bx, c, i = bx[near], np.asarray(c)[near], np.asarray(i)[near]
    if len(bx) == 0:
        return
    tyre = np.float32([0.05, 0.05, 0.05])
    for fx in (-wheel_x, wheel_x):
        for y0, y1 in ((-0.49, -0.35), (0.35, 0.49)):  # inset: no face coplanar with the body's sides
            b.add(_part(bx, fx - 0.08, fx + 0.08, y0, y1, 0.0, 0.26), c, i, tyre, False, MAT_PLASTIC, True)
    # Lamps protrude 1 cm beyond the body so they are not coplanar with it.
    e = 0.01 / np.maximum(bx[:, 4:5], 1e-3)
    for y0, y1 in ((-0.42, -0.24), (0.24, 0.42)):
        front = _part(bx, 0.49, 0.5, y0, y1, lamp_z, lamp_z + 0.07)
        rear = _part(bx, -0.5, -0.49, y0, y1, lamp_z, lamp_z + 0.07)
        shift = e[:, 0] * bx[:, 4] / 2
        for part, sign in ((front, 1.0), (rear, -1.0)):
            part[:, 0] += sign * shift * np.cos(bx[:, 3])
            part[:, 1] += sign * shift * np.sin(bx[:, 3])
        b.add(front, c, i, np.float32([0.95, 0.93, 0.85]), False, MAT_LAMP, True)
        b.add(rear, c, i, np.float32([0.75, 0.05, 0.04]), False, MAT_LAMP, True)


def _within(boxes: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, bool)
    d = np.hypot(boxes[:, 0] - center[0], boxes[:, 1] - center[1])
    return d <= radius + 0.5 * np.hypot(boxes[:, 4], boxes[:, 5])


def _hash_unit(seed: int, idx: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic uniform [0, 1) per index (a cheap integer hash; no RNG state)."""
    x = (idx.astype(np.uint64) * np.uint64(2654435761) + np.uint64((seed * 97 + salt * 7919) % 2**32)) % np.uint64(
        2**32
    )
    x = (x ^ (x >> np.uint64(13))) * np.uint64(1274126177) % np.uint64(2**32)
    return (x % np.uint64(10007)).astype(np.float64) / 10007.0


def scene_primitives(
    scene: RenderScene, radius: float = DEFAULT_RADIUS, detail_radius: float = DETAIL_RADIUS
) -> Primitives:
    """All boxes of a (validated) scene within `radius` [m] (xy) of the ego, decomposed into primitives;
    vehicles within `detail_radius` also get wheels and lamps."""
    center = scene.ego_pose[:2]

    def near(bx: np.ndarray) -> np.ndarray:
        return np.hypot(bx[:, 0] - center[0], bx[:, 1] - center[1]) < detail_radius

    seed = scene.appearance.seed
    b = _Builder()

    keep = _within(scene.boxes, center, radius)
    boxes, cls, inst = scene.boxes[keep], scene.occ_class[keep], scene.instance_id[keep]
    col = scene.color[keep].astype(np.float32) / 255.0
    glass = np.float32([0.17, 0.21, 0.27])
    car = np.isin(cls, VEHICLE_CABIN)
    if car.any():
        bx, c, i = boxes[car], cls[car], inst[car]
        b.add(_sub_boxes(bx, -0.5, 0.5, 1.0, 0.14, 0.58), c, i, col[car], False, MAT_PAINT, open_bottom=True)
        tint = 0.7 * glass + 0.3 * col[car]
        b.add(_sub_boxes(bx, -0.33, 0.22, 0.86, 0.58, 0.95), c, i, tint, False, MAT_GLASS, open_bottom=True)
        b.add(_sub_boxes(bx, -0.3, 0.19, 0.84, 0.95, 1.0), c, i, col[car], False, MAT_PAINT, open_bottom=True)
        _add_vehicle_details(b, bx, c, i, wheel_x=0.32, lamp_z=0.38, near=near(bx))
    bus = np.isin(cls, VEHICLE_BUS)
    if bus.any():
        bx, c, i = boxes[bus], cls[bus], inst[bus]
        b.add(_sub_boxes(bx, -0.5, 0.5, 1.0, 0.09, 0.45), c, i, col[bus], False, MAT_PAINT, open_bottom=True)
        b.add(_sub_boxes(bx, -0.49, 0.49, 0.98, 0.45, 0.85), c, i, glass, False, MAT_GLASS, open_bottom=True)
        b.add(_sub_boxes(bx, -0.5, 0.5, 1.0, 0.85, 1.0), c, i, col[bus], False, MAT_PAINT, open_bottom=True)
        _add_vehicle_details(b, bx, c, i, wheel_x=0.34, lamp_z=0.15, near=near(bx))
    truck = np.isin(cls, VEHICLE_TRUCK)
    if truck.any():
        bx, c, i = boxes[truck], cls[truck], inst[truck]
        b.add(
            _sub_boxes(bx, -0.5, 0.26, 1.0, 0.1, 1.0), c, i, 0.5 * col[truck] + 0.4, False, MAT_METAL, open_bottom=True
        )
        b.add(_sub_boxes(bx, 0.28, 0.5, 0.96, 0.1, 0.55), c, i, col[truck], False, MAT_PAINT, open_bottom=True)
        b.add(_sub_boxes(bx, 0.28, 0.45, 0.9, 0.55, 0.8), c, i, glass, False, MAT_GLASS, open_bottom=True)
        _add_vehicle_details(b, bx, c, i, wheel_x=0.36, lamp_z=0.14, near=near(bx))
    ped = cls == 7
    if ped.any():
        bx, c, i = boxes[ped], cls[ped], inst[ped]
        trousers = (0.12 + 0.3 * _hash_unit(seed, i, 5)[:, None] * np.float32([1.0, 1.0, 1.3])).astype(np.float32)
        b.add(_sub_boxes(bx, -0.4, 0.4, 0.8, 0.0, 0.48), c, i, trousers, False, MAT_CLOTH, open_bottom=True)
        b.add(_sub_boxes(bx, -0.5, 0.5, 1.0, 0.48, 0.86), c, i, col[ped], False, MAT_CLOTH, open_bottom=True)
        b.add(_sub_boxes(bx, -0.22, 0.22, 0.45, 0.86, 1.0), c, i, np.float32([0.80, 0.62, 0.50]), False, MAT_CLOTH)
    rider = np.isin(cls, (2, 6))  # bicycle, motorcycle: frame + rider
    if rider.any():
        bx, c, i = boxes[rider], cls[rider], inst[rider]
        b.add(_sub_boxes(bx, -0.5, 0.5, 0.5, 0.0, 0.55), c, i, col[rider], False, MAT_METAL, open_bottom=True)
        b.add(
            _sub_boxes(bx, -0.2, 0.15, 1.0, 0.55, 0.9), c, i, 0.6 * col[rider] + 0.2, False, MAT_CLOTH, open_bottom=True
        )
        b.add(_sub_boxes(bx, -0.12, 0.08, 0.5, 0.9, 1.0), c, i, np.float32([0.2, 0.2, 0.22]), False, MAT_PLASTIC)
    rest = ~(car | bus | truck | ped | rider)
    if rest.any():
        b.add(boxes[rest], cls[rest], inst[rest], col[rest], False, MAT_PLASTIC)

    keep = _within(scene.static_boxes, center, radius)
    if keep.any():
        sb, sc = scene.static_boxes[keep], scene.static_class[keep]
        idx = np.flatnonzero(keep)
        if scene.static_color is not None:
            scol = scene.static_color[keep].astype(np.float32) / 255.0
        else:
            pick = (_hash_unit(seed, idx, 1) * len(_FACADES)).astype(int)
            scol = _FACADES[pick] * (0.9 + 0.2 * _hash_unit(seed, idx, 2)[:, None]).astype(np.float32)
            for k, v in _STATIC_COLORS.items():
                if k != MANMADE:
                    scol[sc == k] = v
            pole = (sc == MANMADE) & (np.minimum(sb[:, 4], sb[:, 5]) < 1.0)
            scol[pole] = _STATIC_COLORS[MANMADE]
        big = (sc == MANMADE) & (np.minimum(sb[:, 4], sb[:, 5]) >= 1.0) & (sb[:, 6] >= 2.5)
        mat = np.where(big, MAT_FACADE, np.where(sc == VEGETATION, MAT_FOLIAGE, MAT_METAL))
        b.add(sb, sc, -1, scol, False, mat)

    keep = _within(scene.trees, center, radius)
    if keep.any():
        tr = scene.trees[keep]
        idx = np.flatnonzero(keep)
        x, y, zc, yaw, _, _, h = tr.T
        bottom = zc - h / 2
        trunk_h = 0.45 * h
        trunk = np.stack([x, y, bottom + trunk_h / 2, yaw, np.full_like(x, 0.3), np.full_like(x, 0.3), trunk_h], -1)
        b.add(trunk, VEGETATION, -1, np.float32([0.36, 0.26, 0.18]), False, MAT_BARK, True)
        g = _hash_unit(seed, idx, 3)[:, None].astype(np.float32)
        green = np.float32([0.16, 0.36, 0.12]) + g * np.float32([0.12, 0.14, 0.05])
        b.add(_sub_boxes(tr, -0.5, 0.5, 1.0, 0.35, 0.78), VEGETATION, -1, green, False, MAT_FOLIAGE)
        top = _sub_boxes(tr, -0.33, 0.33, 0.66, 0.78, 1.0)
        top[:, 3] = top[:, 3] + math.pi / 4
        b.add(top, VEGETATION, -1, green * 1.1, False, MAT_FOLIAGE)

    keep = _within(np.c_[scene.lights[:, :2], np.zeros((len(scene.lights), 5))], center, radius)
    if keep.any():
        _add_lights(b, scene.lights[keep], scene.light_state[keep])
    return b.build()


def _add_lights(b: _Builder, lights: np.ndarray, state: np.ndarray) -> None:
    """Pole, housing and three lamps (red top, yellow, green bottom) per head; the lamp of `state` is lit."""
    x, y, zg, yaw, hh = lights.T
    n = len(lights)
    c, s = np.cos(yaw), np.sin(yaw)
    pole_h = hh + 0.55
    b.add(np.stack([x, y, zg + pole_h / 2, yaw, np.full(n, 0.16), np.full(n, 0.16), pole_h], -1), MANMADE, -1,
          np.float32([0.35, 0.36, 0.37]), False, MAT_METAL, True)  # fmt: skip
    hx, hy = x + 0.25 * c, y + 0.25 * s  # housing 0.34 deep, in front of the pole
    b.add(np.stack([hx, hy, zg + hh, yaw, np.full(n, 0.34), np.full(n, 0.42), np.full(n, 1.1)], -1), MANMADE, -1,
          np.float32([0.10, 0.10, 0.09]), False, MAT_METAL)  # fmt: skip
    lx, ly = hx + 0.19 * c, hy + 0.19 * s  # lamp discs just in front of the housing's face
    for lamp, dz in ((LIGHT_RED, 0.34), (LIGHT_YELLOW, 0.0), (LIGHT_GREEN, -0.34)):
        lit = state == lamp
        base = np.float32(_LAMP_COLORS[lamp])
        col = np.where(lit[:, None], base, 0.12 * base + 0.05).astype(np.float32)
        boxes = np.stack([lx, ly, zg + hh + dz, yaw, np.full(n, 0.04), np.full(n, 0.28), np.full(n, 0.28)], -1)
        b.add(boxes, MANMADE, -1, col, lit, MAT_LAMP)


def box_vertices(boxes: np.ndarray) -> np.ndarray:
    """Corners `[K, 8, 3]` (float64) of yaw-oriented boxes `[K, 7]`, in `_CORNERS` order."""
    x, y, zc, yaw, ln, w, h = boxes.T
    local = _CORNERS[None] * np.stack([ln, w, h], -1)[:, None, :]  # [K,8,3]
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    return np.stack(
        [x[:, None] + c * local[..., 0] - s * local[..., 1], y[:, None] + s * local[..., 0] + c * local[..., 1],
         zc[:, None] + local[..., 2]],
        -1,
    )  # fmt: skip


def ground_triangles(scene: RenderScene, cell: float = 2.0) -> np.ndarray:
    """Ground triangles `[G, 3, 3]` (world frame): a flat quad for a scalar height, else a grid through the
    height-field cell centres (every k-th cell so that vertices are ≥ ~`cell` m apart) plus a skirt at the
    mean border height out to `GROUND_EXTENT` around the ego. `scene` must be validated."""
    g = scene.ground
    ex, ey = scene.ego_pose[:2]
    far = GROUND_EXTENT
    if not isinstance(g.height, HeightField):
        z = float(g.height)
        q = np.array(
            [[ex - far, ey - far, z], [ex + far, ey - far, z], [ex + far, ey + far, z], [ex - far, ey + far, z]]
        )
        return np.stack([q[[0, 1, 2]], q[[0, 2, 3]]])
    hf = g.height
    hgt = hf.values.astype(np.float64)
    nx, ny = hgt.shape
    step = max(1, round(cell / hf.resolution))
    ii = np.unique(np.r_[np.arange(0, nx, step), nx - 1])
    jj = np.unique(np.r_[np.arange(0, ny, step), ny - 1])
    xy = hf.cell_centres()[ii][:, jj]  # [I, J, 2]
    verts = np.concatenate([xy, hgt[ii][:, jj][..., None]], -1)  # [I, J, 3]
    a, b_, cc, d = verts[:-1, :-1], verts[1:, :-1], verts[1:, 1:], verts[:-1, 1:]
    tris = [np.stack([a, b_, cc], -2).reshape(-1, 3, 3), np.stack([a, cc, d], -2).reshape(-1, 3, 3)]
    border = np.r_[hgt[0], hgt[-1], hgt[:, 0], hgt[:, -1]].mean()
    # Skirt: four quads between the grid's outline and a far square, at the border height.
    corners = np.stack([verts[0, 0], verts[-1, 0], verts[-1, -1], verts[0, -1]])[:, :2]
    far_sq = np.array([[ex - far, ey - far], [ex + far, ey - far], [ex + far, ey + far], [ex - far, ey + far]])
    # Match each grid corner with the far corner in the same direction from the grid centre.
    centre = corners.mean(0)
    corners = corners[np.argsort(np.arctan2(*(corners - centre).T[::-1]))]
    far_sq = far_sq[np.argsort(np.arctan2(*(far_sq - centre).T[::-1]))]
    zc = np.full((4, 1), border)
    inner = np.c_[corners, zc]
    outer = np.c_[far_sq, zc]
    for k in range(4):
        k2 = (k + 1) % 4
        tris.append(np.stack([inner[k], outer[k], outer[k2]])[None])
        tris.append(np.stack([inner[k], outer[k2], inner[k2]])[None])
    return np.concatenate(tris)


@dataclass
class SceneMesh:
    """One frame's triangles, ready to ray cast.

    Attributes:
        origin: `[3]` world position subtracted from every vertex (ego x, y rounded to whole metres; z = 0).
        triangles: `[F, 3, 3]` float32 local-frame triangles (primitives first, 12 per box, then ground).
        tri_prim: `[F]` int32 primitive index per triangle (-1: ground).
        normals: `[F, 3]` float32 unit face normals.
        prims: the primitives (`Primitives`).
        vertices / faces: `[Nv, 3]` float32 / `[F, 3]` int32 the same triangles, indexed (what Embree gets).
        tri_face: `[F]` int8 face of its box per triangle (`_FACES` order: 0-3 walls ⟂ the box's x axis,
            4-7 walls ⟂ y, 8-9 bottom, 10-11 top; -1 ground).
    """

    origin: np.ndarray
    triangles: np.ndarray
    tri_prim: np.ndarray
    normals: np.ndarray
    prims: Primitives
    vertices: np.ndarray
    faces: np.ndarray
    tri_face: np.ndarray

    def __post_init__(self) -> None:
        from embreex import rtcore_scene
        from embreex.mesh_construction import TriangleMesh

        self._embree = rtcore_scene.EmbreeScene()
        TriangleMesh(self._embree, np.ascontiguousarray(self.vertices), np.ascontiguousarray(self.faces))
        # Per-triangle label tables with one extra entry at the end for misses (triangle index -1).
        ground = self.tri_prim < 0
        safe = np.where(ground, 0, self.tri_prim)
        n_p = len(self.prims)
        cls = self.prims.cls[safe] if n_p else np.zeros(len(safe), np.uint8)
        inst = self.prims.instance[safe] if n_p else np.zeros(len(safe), np.int32)
        self.tri_prim_ext = np.r_[self.tri_prim, -1].astype(np.int32)
        self.tri_sem_ext = np.r_[np.where(ground, 0, cls), FREE].astype(np.uint8)
        self.tri_inst_ext = np.r_[np.where(ground, -1, inst), -1].astype(np.int32)
        self.tri_ground_ext = np.r_[ground, False]

    def cast(
        self, origins: np.ndarray, directions: np.ndarray, threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """First hits of rays (local frame).

        Args:
            origins: `[N, 3]` (or `[3]`, shared) ray origins, local frame.
            directions: `[N, 3]` ray directions (any length: `t` is in units of the direction's length).
            threads: worker threads (Embree releases the GIL); default `min(4, cpu_count)`.

        Returns:
            t: `[N]` float32 ray parameter of the first hit (inf: no hit).
            tri: `[N]` int32 triangle index (-1: no hit).
        """
        d = np.ascontiguousarray(directions, dtype=np.float32).reshape(-1, 3)
        n = len(d)
        o = np.ascontiguousarray(np.broadcast_to(np.asarray(origins, np.float32), (n, 3)))
        threads = threads or min(4, os.cpu_count() or 1)
        t = np.empty(n, np.float32)
        tri = np.empty(n, np.int32)

        def run(lo: int, hi: int) -> None:
            if hi <= lo:
                return
            r = self._embree.run(o[lo:hi], d[lo:hi], output=1)
            t[lo:hi] = r["tfar"]
            tri[lo:hi] = r["primID"]

        bounds = np.linspace(0, n, max(1, min(threads, n // 20000 + 1)) + 1).astype(int)
        if len(bounds) == 2:
            run(0, n)
        else:
            with ThreadPoolExecutor(len(bounds) - 1) as pool:
                list(pool.map(run, bounds[:-1], bounds[1:]))
        miss = tri < 0
        t[miss] = np.inf
        tri[miss] = -1
        return t, tri

    def occluded(self, origins: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """`[N]` bool: does a ray from each of `origins [N, 3]` along `direction [3]` hit anything? (one thread)"""
        o = np.ascontiguousarray(origins, dtype=np.float32).reshape(-1, 3)
        d = np.ascontiguousarray(np.broadcast_to(np.asarray(direction, np.float32), o.shape))
        if len(o) == 0:
            return np.zeros(0, bool)
        return self._embree.run(o, d, query="OCCLUDED") >= 0


def build_mesh(scene: RenderScene, radius: float = DEFAULT_RADIUS, detail_radius: float = DETAIL_RADIUS) -> SceneMesh:
    """The frame's mesh: primitives within `radius` of the ego plus the ground. `scene` must be validated.

    Boxes are stored as 8 shared vertices + 12 triangles (10 when `open_bottom`), the cheapest form for
    Embree's scene construction (which costs ~1.5 µs per triangle in embreex).
    """
    prims = scene_primitives(scene, radius, detail_radius)
    origin = np.array([round(scene.ego_pose[0]), round(scene.ego_pose[1]), 0.0])  # whole metres: texture-aligned
    k = len(prims)
    verts = box_vertices(prims.boxes).reshape(-1, 3) if k else np.zeros((0, 3))
    closed = np.flatnonzero(~prims.open_bottom)
    opened = np.flatnonzero(prims.open_bottom)
    keep_faces = np.r_[0:8, 10:12]  # all but the bottom (-z) pair
    faces = np.concatenate(
        [(_FACES[None] + 8 * closed[:, None, None]).reshape(-1, 3),
         (_FACES[keep_faces][None] + 8 * opened[:, None, None]).reshape(-1, 3)]
    )  # fmt: skip
    tri_prim = np.r_[np.repeat(closed, 12), np.repeat(opened, 10)].astype(np.int32)
    tri_face = np.r_[np.tile(np.arange(12), len(closed)), np.tile(keep_faces, len(opened))].astype(np.int8)
    ground = ground_triangles(scene).reshape(-1, 3)
    n_g = len(ground) // 3
    verts = np.concatenate([verts, ground]) - origin
    faces = np.concatenate([faces, len(verts) - len(ground) + np.arange(len(ground)).reshape(-1, 3)]).astype(np.int32)
    tri_prim = np.r_[tri_prim, np.full(n_g, -1, np.int32)]
    tri_face = np.r_[tri_face, np.full(n_g, -1, np.int8)]
    verts32 = verts.astype(np.float32)
    tris = verts32[faces]
    nrm = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    return SceneMesh(origin, tris, tri_prim, nrm.astype(np.float32), prims, verts32, faces, tri_face)


@dataclass
class Hits:
    """Labels of ray hits (N rays).

    Attributes:
        t: `[N]` float32 ray parameter (inf: miss).
        tri: `[N]` int32 triangle (-1: miss).
        prim: `[N]` int32 primitive (-1: ground or miss).
        ground: `[N]` bool ray hit the ground.
        semantic: `[N]` uint8 Occ3D class (17 free for misses).
        instance: `[N]` int32 (-1: none).
        paint: `[N]` uint8 ground paint code at the hit (`GroundPatch.markings`; `crosswalk` stripes → 1).
        points: `[N, 3]` float32 local-frame hit points (the ray origin for misses).
    """

    t: np.ndarray
    tri: np.ndarray
    prim: np.ndarray
    ground: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray
    paint: np.ndarray
    points: np.ndarray


_GROUND_LUT = np.full(256, TERRAIN, np.uint8)  # raster value → rendered ground class (unknown → terrain)
_GROUND_LUT[list(GROUND_CLASSES)] = GROUND_CLASSES


def label_hits(mesh: SceneMesh, scene: RenderScene, origins: np.ndarray, dirs: np.ndarray, t, tri) -> Hits:
    """Semantic/instance/paint of cast rays; ground hits read the raster at the hit's xy.

    Args:
        origins: `[n, 3]` (a broadcast view is fine) and dirs `[n, 3]` float32 local-frame rays.
        t, tri: `mesh.cast` results.
    """
    from carla_bridge.sensors.scene import MARK_WHITE, TERRAIN

    prim = np.take(mesh.tri_prim_ext, tri)
    semantic = np.take(mesh.tri_sem_ext, tri)
    instance = np.take(mesh.tri_inst_ext, tri)
    ground = np.take(mesh.tri_ground_ext, tri)
    paint = np.zeros(len(t), np.uint8)
    tt = np.where(tri >= 0, t, np.float32(0.0))
    pts = np.multiply(dirs, tt[:, None], dtype=np.float32)
    pts += origins
    gi = np.flatnonzero(ground)
    if len(gi):
        g = scene.ground
        xy = np.take(pts, gi, axis=0)[:, :2] + mesh.origin[:2]
        i, j, inside = g.to_patch(xy)  # fancy indexing below works on strided views without copies
        semantic[gi] = np.where(inside, np.take(_GROUND_LUT, g.classes[i, j]), TERRAIN)
        if g.markings is not None:
            paint[gi] = np.where(inside, g.markings[i, j], 0)
        if g.crosswalk is not None:
            paint[gi[inside & g.crosswalk[i, j]]] = MARK_WHITE
    return Hits(t, tri, prim, ground, semantic, instance, paint, pts)
