"""Ground heights for hilly towns (Town03/04/05 climb up to ~10 m): a coarse `HeightField` around the ego
from the z of the nearest driving-lane centreline points.

Where roads cross at two levels (overpasses), the cell takes the level closest to the reference height
(the ego's), among lane points within `level_tolerance` metres of the nearest one in xy whose z differs from
the nearest one's by more than `LEVEL_GAP` (a ramp's own neighbouring points do not compete); the upper deck itself
is not rendered (a known limitation: a height field has one level).
"""

from __future__ import annotations

import weakref

import numpy as np
from scipy.spatial import cKDTree

from carla_bridge.sensors.scene import HeightField

_TREES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
LEVEL_GAP = 2.0  # [m] lane points this much higher/lower than the nearest one belong to another level


def _lane_tree(town) -> tuple[cKDTree, np.ndarray]:
    """(KD-tree over all lane centreline xy, their z) of a `TownMap`, cached per town object."""
    try:
        return _TREES[town]
    except (KeyError, TypeError):  # TypeError: not weak-referenceable → no caching
        pass
    xy = np.concatenate([lane.points for lane in town.lanes]).astype(np.float64)
    z = np.concatenate([np.asarray(lane.z, np.float64) for lane in town.lanes])
    out = (cKDTree(xy), z)
    try:
        _TREES[town] = out
    except TypeError:
        pass
    return out


def lane_height_field(
    town,
    center_xy: np.ndarray,
    ref_z: float,
    half_size: float = 80.0,
    cell: float = 2.0,
    level_tolerance: float = 3.0,
    neighbours: int = 8,
) -> HeightField:
    """Axis-aligned `HeightField` of `2·half_size` m around `center_xy` at `cell` m from a `TownMap`'s lanes.

    Args:
        town: a `carla_bridge.maps.TownMap` (uses `lanes[*].points` `[P, 2]` and `.z` `[P]`).
        center_xy: `[2]` world centre (the ego's xy).
        ref_z: reference height [m] (the ego's z) to pick the level where roads overlap.
        half_size, cell: extent and cell size [m].
        level_tolerance: lane points within this xy distance [m] of the nearest one compete by |z - ref_z|.
        neighbours: lane points considered per cell.
    """
    if not np.isfinite(ref_z):
        raise ValueError(f"ref_z must be finite, got {ref_z}")
    c = np.asarray(center_xy, np.float64).reshape(-1)
    if c.shape != (2,) or not np.isfinite(c).all():
        raise ValueError(f"center_xy must be 2 finite numbers, got {center_xy!r}")
    if not (half_size > 0 and cell > 0):
        raise ValueError(f"half_size and cell must be positive, got {half_size}, {cell}")
    tree, z = _lane_tree(town)
    n = max(2, round(2 * half_size / cell))
    res = 2 * half_size / n
    hf = HeightField(np.zeros((n, n), np.float32), res, (float(c[0]), float(c[1]), 0.0), (-half_size, -half_size))
    pts = hf.cell_centres().reshape(-1, 2)
    k = min(neighbours, len(z))
    dist, idx = tree.query(pts, k=k)
    dist, idx = dist.reshape(len(pts), k), idx.reshape(len(pts), k)
    zz = z[idx]  # [C, k], sorted by xy distance
    z0 = zz[:, 0]  # the nearest lane point's level
    # Another level: a lane point almost as near in xy whose z differs by more than a slope would explain.
    other = (dist <= dist[:, :1] + level_tolerance) & (np.abs(zz - z0[:, None]) > LEVEL_GAP)
    has = other.any(1)
    z1 = zz[np.arange(len(pts)), np.argmax(other, 1)]  # nearest point of the other level (if any)
    pick = np.where(has & (np.abs(z1 - ref_z) < np.abs(z0 - ref_z)), z1, z0)
    hf.values = pick.reshape(n, n).astype(np.float32)
    return hf.validate()
