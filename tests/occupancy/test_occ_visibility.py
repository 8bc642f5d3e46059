"""Ray-cast visibility masks: hand cases and a plain-loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from occupancy.grid import GridSpec
from occupancy.visibility import camera_rays, lidar_rays, ray_cast_mask, ray_cast_observed

G = GridSpec.occ3d()


def test_ray_along_x_hitting_at_10m():
    m = ray_cast_mask(G, torch.tensor([0.0, 0.0, 1.0]), torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([10.0]))
    assert m.dtype == torch.uint8 and tuple(m.shape) == G.shape
    idx = m.nonzero()
    # x from 0 to the hit at 10.0 m: voxels 100 ([0, 0.4)) .. 125 ([10.0, 10.4), the hit voxel)
    assert idx[:, 0].tolist() == list(range(100, 126))
    assert (idx[:, 1] == 100).all() and (idx[:, 2] == 5).all()  # y = 0 → 100, z = 1.0 → [1.0, 1.4) = 5


def test_no_hit_and_beyond_max_range():
    origin = torch.tensor([0.0, 0.0, 1.0])
    # no hit: followed to the grid's edge (x = 40 m)
    m = ray_cast_observed(G, origin, torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([math.inf]))
    assert m.nonzero()[:, 0].tolist() == list(range(100, 200))
    # max_range 5 m: the hit at 10 m is not observed, free space stops at 5 m
    m = ray_cast_observed(G, origin, torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([10.0]), max_range=5.0)
    assert m.nonzero()[:, 0].tolist() == list(range(100, 113))
    # a ray from outside the grid entering it, hitting at 50 m (x = 10)
    m = ray_cast_observed(G, torch.tensor([-60.0, 0.1, 0.1]), torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([70.0]))
    assert m.nonzero()[:, 0].tolist() == list(range(0, 126))
    # pointing away from the grid: nothing
    m = ray_cast_observed(G, torch.tensor([-60.0, 0.1, 0.1]), torch.tensor([[-1.0, 0.0, 0.0]]), torch.tensor([5.0]))
    assert not m.any()


def _plain_loop_reference(grid, origins, directions, hit_range, max_range, step):
    """Per ray, per sample, in float64: the same sampling definition written as plain loops."""
    lower, voxel, shape = np.array(grid.lower), np.array(grid.voxel), np.array(grid.shape)
    out = np.zeros(grid.shape, dtype=bool)
    for o, d, h in zip(origins, directions, hit_range):
        end = min(h, max_range)
        t = 0.5 * step
        while t < end:
            i = np.floor((o + t * d - lower) / voxel).astype(int)
            if (i >= 0).all() and (i < shape).all():
                out[tuple(i)] = True
            t += step
        if np.isfinite(h) and h <= max_range:
            i = np.floor((o + h * d - lower) / voxel).astype(int)
            if (i >= 0).all() and (i < shape).all():
                out[tuple(i)] = True
    return out


def test_random_rays_match_plain_loop_reference():
    rng = np.random.default_rng(0)
    r = 150
    origins = rng.uniform([-5, -5, 0.5], [5, 5, 2.5], (r, 3))
    d = rng.normal(size=(r, 3))
    d[:, 2] *= 0.3
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    hit = rng.uniform(1.0, 30.0, r)
    hit[::5] = np.inf
    got = ray_cast_observed(
        G, torch.from_numpy(origins), torch.from_numpy(d), torch.from_numpy(hit), max_range=25.0
    ).numpy()
    # the reference steps from t = step/2 at the origin, ours from the grid entry (identical: all origins inside)
    ref = _plain_loop_reference(G, origins, d, hit, 25.0, 0.2)
    union = (got | ref).sum()
    assert union > 1000
    assert (got ^ ref).sum() <= 0.002 * union  # float32 vs float64 only at voxel faces


def test_camera_rays_geometry():
    # one camera at (1, 0, 1.5) looking along ego +x (OpenCV axes: z forward, x right, y down)
    k = torch.tensor([[[100.0, 0.0, 50.0], [0.0, 100.0, 25.0], [0.0, 0.0, 1.0]]])
    t = torch.eye(4)[None].clone()
    t[0, :3, :3] = torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    t[0, :3, 3] = torch.tensor([1.0, 0.0, 1.5])
    depth = torch.full((1, 50, 100), 10.0)
    depth[0, 0, 0] = math.inf
    o, d, rng = camera_rays(k, t, depth)
    assert o.shape == (5000, 3) and d.shape == (5000, 3) and rng.shape == (5000,)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(5000))
    assert math.isinf(rng[0])
    hit = o[1:] + rng[1:, None] * d[1:]
    torch.testing.assert_close(hit[:, 0], torch.full((4999,), 11.0))  # z-depth 10 → x = 1 + 10
    # pixel (u, v) = (50.5, 25.5) (index [25, 50]): 0.005 rad right of and below the axis
    i = 25 * 100 + 50
    torch.testing.assert_close(d[i], torch.nn.functional.normalize(torch.tensor([1.0, -0.005, -0.005]), dim=0))
    # range along the ray for the same depth
    _, _, r2 = camera_rays(k, t, depth, stride=2, depth_is_z=False)
    assert r2.shape == (25 * 50,) and torch.isinf(r2[0]) and (r2[1:] == 10.0).all()
    m = ray_cast_mask(G, o, d, rng)
    assert m[int((11.0 + 40) / 0.4), 100, int((1.5 + 1) / 0.4)] == 1  # the straight-ahead hit voxel
    with pytest.raises(ValueError, match="intrinsics"):
        camera_rays(k[:, :2], t, depth)


def test_lidar_rays_and_bad_input():
    pts = torch.tensor([[10.0, 0.0, 1.8, 0.5, 3.0], [0.0, -5.0, 1.8, 0.1, 2.0]])
    o, d, r = lidar_rays(pts, torch.tensor([0.0, 0.0, 1.8]))
    torch.testing.assert_close(r, torch.tensor([10.0, 5.0]))
    torch.testing.assert_close(d, torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]))
    with pytest.raises(ValueError, match="unit"):
        ray_cast_mask(G, o, d * 2, r)
    with pytest.raises(ValueError, match="hit_range"):
        ray_cast_mask(G, o, d, torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="origins"):
        ray_cast_mask(G, torch.zeros(3, 3), d, r)
