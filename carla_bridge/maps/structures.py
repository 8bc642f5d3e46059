"""Roadside buildings and trees placed procedurally (seeded) off the road, as 3D boxes.

Placement works on a 1 m distance field to the road area (drivable ∪ sidewalk ∪ shoulder): buildings
stand in a band `BUILDING_SETBACK` metres behind the road edge, facing it, without touching the road
area or each other; trees line the road edge just beyond the sidewalks, and a sparser scatter fills open
terrain. Boxes are (x, y, z_centre, yaw, length, width, height) in the world frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

BUILDING_SETBACK = (4.0, 9.0)  # [m] building front from the road area
BUILDING_CLEARANCE = 2.5  # [m] minimum distance of any footprint point to the road area
BUILDING_SIZE = ((8.0, 24.0), (6.0, 14.0), (5.0, 22.0))  # length along the road, depth, height ranges [m]
TREE_BAND = (3.0, 5.5)  # [m] tree centre distance from the road area
TREE_SIZE = ((2.0, 4.0), (4.0, 9.0))  # canopy size, height [m]
TREE_CLEARANCE = 1.5  # on the 1 m field: ≥ 1.5 keeps every footprint sample ≥ 2 cells off the road


@dataclass(frozen=True)
class Box3D:
    """A static box: centre (x, y, z) [m], yaw [rad], size (length, width, height) [m]."""

    x: float
    y: float
    z: float
    yaw: float
    length: float
    width: float
    height: float

    def as_array(self) -> np.ndarray:
        """`[7]` (x, y, z, yaw, l, w, h)."""
        return np.array([self.x, self.y, self.z, self.yaw, self.length, self.width, self.height])

    def corners_xy(self) -> np.ndarray:
        """`[4, 2]` footprint corners, counter-clockwise."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        hl, hw = self.length / 2, self.width / 2
        local = np.array([[hl, -hw], [hl, hw], [-hl, hw], [-hl, -hw]])
        return local @ np.array([[c, s], [-s, c]]) + np.array([self.x, self.y])


def boxes_to_array(boxes: list[Box3D]) -> np.ndarray:
    """`[S, 7]` array of boxes (empty `[0, 7]` if none)."""
    return np.stack([b.as_array() for b in boxes]) if boxes else np.zeros((0, 7))


class _Field:
    """Distance [m] to the road area on a 1 m grid, with its gradient (pointing away from the road)."""

    def __init__(self, road_mask: np.ndarray, origin: np.ndarray, res: float) -> None:
        self.origin, self.res = origin, res
        self.dist = ndimage.distance_transform_edt(~road_mask) * res
        gy, gx = np.gradient(self.dist)
        self.gx, self.gy = gx, gy

    def index(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ij = np.floor((xy - self.origin) / self.res).astype(np.int64)
        ok = (ij[:, 0] >= 0) & (ij[:, 1] >= 0) & (ij[:, 0] < self.dist.shape[1]) & (ij[:, 1] < self.dist.shape[0])
        return np.clip(ij[:, 1], 0, self.dist.shape[0] - 1), np.clip(ij[:, 0], 0, self.dist.shape[1] - 1), ok

    def distance(self, xy: np.ndarray) -> np.ndarray:
        r, c, ok = self.index(xy)
        return np.where(ok, self.dist[r, c], np.inf)


def _footprint_samples(box: Box3D, step: float = 1.0) -> np.ndarray:
    nl, nw = max(2, int(box.length / step) + 1), max(2, int(box.width / step) + 1)
    u, v = np.meshgrid(np.linspace(-0.5, 0.5, nl) * box.length, np.linspace(-0.5, 0.5, nw) * box.width)
    local = np.stack([u.ravel(), v.ravel()], -1)
    c, s = np.cos(box.yaw), np.sin(box.yaw)
    return local @ np.array([[c, s], [-s, c]]) + np.array([box.x, box.y])


def place_structures(
    road_mask: np.ndarray,
    origin: np.ndarray,
    res: float,
    ground_z: Callable[[np.ndarray], np.ndarray],
    seed: int,
    building_spacing: float = 14.0,
    tree_spacing: float = 12.0,
    open_tree_density: float = 1.0 / 900.0,
) -> tuple[list[Box3D], list[Box3D]]:
    """Buildings and trees around the road area.

    Args:
        road_mask: `[R, C]` bool, True on the road area; row r ↔ y = origin[1] + (r + 0.5)·res, col c ↔ x.
        origin: `[2]` world (x, y) of the grid's lower-left corner [m]; res: cell size [m].
        ground_z: callable `[M, 2]` → `[M]` ground height [m] (box z = ground + height / 2).
        seed: placement seed.
        building_spacing / tree_spacing: mean distance between candidates along the road edge [m].
        open_tree_density: trees per m² of open terrain farther than 15 m from any road.

    Returns:
        (buildings, trees).
    """
    rng = np.random.default_rng(seed)
    field = _Field(road_mask, origin, res)
    dist = field.dist
    rows, cols = np.indices(dist.shape)
    centres = np.stack([origin[0] + (cols + 0.5) * res, origin[1] + (rows + 0.5) * res], -1)
    taken = np.zeros(dist.shape, bool)

    def band(lo: float, hi: float, spacing: float) -> np.ndarray:
        m = (dist >= lo) & (dist < hi)
        cells = centres[m]
        if len(cells) == 0:
            return cells
        # Roughly one candidate per `spacing` metres of road edge: thin the band by its area.
        n = int(len(cells) * res * res / (spacing * (hi - lo))) + 1
        return cells[rng.permutation(len(cells))[:n]]

    def heading_away(xy: np.ndarray) -> np.ndarray:
        r, c, _ = field.index(xy)
        return np.arctan2(field.gy[r, c], field.gx[r, c])

    def accept(box: Box3D, clearance: float) -> bool:
        pts = _footprint_samples(box)
        if np.min(field.distance(pts)) < clearance:
            return False
        r, c, ok = field.index(pts)
        if not ok.all() or taken[r, c].any():
            return False
        taken[r, c] = True
        return True

    buildings: list[Box3D] = []
    cand = band(BUILDING_SETBACK[0], BUILDING_SETBACK[1], building_spacing)
    out = heading_away(cand) if len(cand) else np.zeros(0)
    dims = np.stack([rng.uniform(*rg, size=len(cand)) for rg in BUILDING_SIZE], -1)  # [N, 3] length, depth, height
    centre = cand + dims[:, 1:2] / 2.0 * np.stack([np.cos(out), np.sin(out)], -1) if len(cand) else cand
    z = ground_z(centre) if len(cand) else np.zeros(0)
    for k in range(len(cand)):
        # The long side faces the road: the box's x axis runs along the road edge.
        yaw = float(np.arctan2(np.sin(out[k] + np.pi / 2), np.cos(out[k] + np.pi / 2)))
        length, depth, height = dims[k]
        box = Box3D(float(centre[k, 0]), float(centre[k, 1]), float(z[k] + height / 2), yaw, length, depth, height)
        if accept(box, BUILDING_CLEARANCE):
            buildings.append(box)
    trees: list[Box3D] = []
    edge = band(TREE_BAND[0], TREE_BAND[1], tree_spacing)
    far = centres[dist >= 15.0]
    n_far = rng.poisson(len(far) * res * res * open_tree_density) if len(far) else 0
    scatter = far[rng.choice(len(far), size=min(n_far, len(far)), replace=False)] if n_far else np.zeros((0, 2))
    spots = np.concatenate([edge, scatter])
    size = rng.uniform(*TREE_SIZE[0], size=len(spots))
    height = rng.uniform(*TREE_SIZE[1], size=len(spots))
    yaw = rng.uniform(-np.pi, np.pi, size=len(spots))
    z = ground_z(spots) if len(spots) else np.zeros(0)
    for k, xy in enumerate(spots):
        h = float(height[k])
        box = Box3D(float(xy[0]), float(xy[1]), float(z[k] + h / 2), float(yaw[k]), float(size[k]), float(size[k]), h)
        if accept(box, TREE_CLEARANCE):
            trees.append(box)
    return buildings, trees
