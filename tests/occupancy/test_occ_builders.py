"""Ground-truth builders vs brute-force references (numpy point-in-box, shapely polygons)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
import torch

import occupancy.builders as builders
from agents.ego import EGO
from occupancy.builders import (
    boxes_to_frame,
    compose_labels,
    ego_mask,
    ground_layer_index,
    paint_ground,
    voxelize_box_index,
    voxelize_boxes,
)
from occupancy.classes import Occ3DClass
from occupancy.grid import GridSpec

SMALL = GridSpec((-10.0, -8.0, -1.0), (10.0, 8.0, 3.0), (0.5, 0.5, 0.5))  # 40 x 32 x 8


def _random_boxes(rng, m, grid=SMALL):
    lo, hi = np.array(grid.lower), np.array(grid.upper)
    xyz = rng.uniform(lo - 1.0, hi + 1.0, (m, 3))
    yaw = rng.uniform(-np.pi, np.pi, (m, 1))
    size = rng.uniform(0.3, 6.0, (m, 3))
    return np.concatenate([xyz, yaw, size], axis=1)


def _centres(grid):
    axes = [grid.lower[i] + (np.arange(grid.shape[i]) + 0.5) * grid.voxel[i] for i in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # [X, Y, Z, 3] float64


def _brute_force_index(grid, boxes):
    """Plain numpy: every voxel centre against every box, later boxes win."""
    c = _centres(grid)
    winner = np.full(grid.shape, -1)
    for i, (x, y, z, yaw, length, width, height) in enumerate(boxes):
        dx, dy = c[..., 0] - x, c[..., 1] - y
        u = np.cos(yaw) * dx + np.sin(yaw) * dy
        v = -np.sin(yaw) * dx + np.cos(yaw) * dy
        inside = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2) & (np.abs(c[..., 2] - z) <= height / 2)
        winner[inside] = i
    return winner


def test_voxelize_matches_brute_force_and_shapely():
    rng = np.random.default_rng(0)
    boxes = _random_boxes(rng, 40)
    labels = rng.integers(0, 17, 40)
    got_index = voxelize_box_index(SMALL, torch.from_numpy(boxes)).numpy()
    np.testing.assert_array_equal(got_index, _brute_force_index(SMALL, boxes))
    got = voxelize_boxes(SMALL, torch.from_numpy(boxes).float(), torch.from_numpy(labels))
    assert got.dtype == torch.uint8 and tuple(got.shape) == SMALL.shape
    expected = np.where(got_index >= 0, labels[np.maximum(got_index, 0)], Occ3DClass.FREE)
    np.testing.assert_array_equal(got.numpy(), expected)
    assert (got_index >= 0).sum() > 500  # the test exercises real boxes

    # shapely: the xy footprint of each box vs its rotated polygon (`covers`: boundary included)
    c = _centres(SMALL)
    pts = shapely.points(c[:, :, 0, 0].ravel(), c[:, :, 0, 1].ravel())
    for x, y, z, yaw, length, width, height in boxes:
        one = voxelize_box_index(SMALL, torch.tensor([[x, y, z, yaw, length, width, height]])).numpy() >= 0
        corners = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * [length / 2, width / 2]
        rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
        poly = shapely.Polygon(corners @ rot.T + [x, y])
        footprint = shapely.covers(poly, pts).reshape(SMALL.bev_shape)
        zc = c[0, 0, :, 2]
        in_z = np.abs(zc - z) <= height / 2
        np.testing.assert_array_equal(one, footprint[:, :, None] & in_z[None, None, :])


def test_voxelize_chunking_and_overlap_rule(monkeypatch):
    rng = np.random.default_rng(1)
    boxes = torch.from_numpy(_random_boxes(rng, 60))
    full = voxelize_box_index(SMALL, boxes)
    monkeypatch.setattr(builders, "_CHUNK_POINTS", 50)  # one box per chunk, boxes re-ordered by size
    np.testing.assert_array_equal(voxelize_box_index(SMALL, boxes).numpy(), full.numpy())
    # two boxes overlapping: the later box wins in the shared voxels, whatever the order of sizes
    a = [0.0, 0.0, 1.0, 0.0, 4.0, 2.0, 2.0]
    b = [1.0, 0.0, 1.0, 0.0, 2.0, 4.0, 2.0]
    ab = voxelize_boxes(SMALL, torch.tensor([a, b]), torch.tensor([4, 7]))
    ba = voxelize_boxes(SMALL, torch.tensor([b, a]), torch.tensor([7, 4]))
    ix, iy, iz = SMALL.world_to_voxel(torch.tensor([1.1, 0.1, 1.1])).tolist()
    assert ab[ix, iy, iz] == 7 and ba[ix, iy, iz] == 4
    assert (ab == 4).sum() > 0 and (ab == 7).sum() > 0


def test_voxelize_axis_aligned_hand_case():
    # box x in [0.1, 2.1], y in [0.1, 0.9], z in [0.1, 1.1] on the occ3d grid (centres at 0.2 + 0.4 k)
    g = GridSpec.occ3d()
    sem = voxelize_boxes(g, torch.tensor([[1.1, 0.5, 0.6, 0.0, 2.0, 0.8, 1.0]]), torch.tensor([4]))
    ix = torch.arange(100, 105)  # x centres 0.2 .. 1.8
    iy = torch.tensor([100, 101])  # y centres 0.2, 0.6
    iz = torch.tensor([3, 4])  # z centres 0.4, 0.8
    assert (sem == 4).sum() == 5 * 2 * 2
    assert (sem[ix][:, iy][:, :, iz] == 4).all()
    # boundary included: on a 0.5 m grid centres are exact binary fractions (…, 0.25, 0.75, 1.25)
    s = voxelize_boxes(SMALL, torch.tensor([[0.5, 0.5, 0.75, 0.0, 0.5, 0.5, 1.0]]), torch.tensor([1]))
    assert (s == 1).sum() == 2 * 2 * 3  # x, y centres 0.25, 0.75 and z centres 0.25, 0.75, 1.25
    assert voxelize_boxes(g, torch.zeros(0, 7), torch.zeros(0, dtype=torch.long)).eq(Occ3DClass.FREE).all()


def test_voxelize_rejects_bad_input():
    g = SMALL
    with pytest.raises(ValueError, match=r"boxes must have shape \[M, 7\]"):
        voxelize_boxes(g, torch.zeros(3, 5), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        voxelize_boxes(g, torch.full((1, 7), float("nan")), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        voxelize_boxes(g, torch.ones(2, 7), torch.tensor([4, 17]))
    with pytest.raises(ValueError, match="labels"):
        voxelize_boxes(g, torch.ones(2, 7), torch.tensor([4]))


def test_paint_ground_layers():
    g = GridSpec.occ3d()
    classes = torch.full(g.bev_shape, 11, dtype=torch.long)
    classes[:, :50] = 13
    classes[:10] = Occ3DClass.FREE  # no ground known there
    sem = paint_ground(torch.full(g.shape, Occ3DClass.FREE, dtype=torch.uint8), classes, 0.0, g)
    assert ground_layer_index(g, 0.0).unique().tolist() == [2]  # z in [-0.2, 0.2)
    assert (sem[10:, 50:, 2] == 11).all() and (sem[10:, :50, 2] == 13).all()
    assert (sem[:10] == Occ3DClass.FREE).all()
    assert (sem[:, :, [0, 1, 3]] == Occ3DClass.FREE).all()
    z = torch.zeros(g.bev_shape)
    z[100:] = 1.0  # a raised area: layer 5 (z in [1.0, 1.4))
    sem2 = paint_ground(torch.full(g.shape, Occ3DClass.FREE, dtype=torch.uint8), classes, z, g, thickness=2)
    assert (sem2[100:, 60, 4:6] == 11).all() and (sem2[100:, 60, 6:] == Occ3DClass.FREE).all()
    assert (sem2[50, 60, 1:3] == 11).all() and (sem2[50, 60, 3:] == Occ3DClass.FREE).all()
    with pytest.raises(ValueError, match="ground_classes"):
        paint_ground(sem, classes[:5], 0.0, g)


def test_compose_labels_orders_layers_and_clears_ego():
    g = GridSpec.occ3d()
    ground = torch.full(g.bev_shape, 11, dtype=torch.long)
    car = [10.0, 0.0, 0.78, 0.0, 4.5, 1.9, 1.56]
    on_ego = [1.0, 0.0, 0.5, 0.0, 1.0, 1.0, 1.0]  # a (spurious) box inside the ego is cleared as well
    building = [0.0, 20.0, 3.0, 0.0, 10.0, 6.0, 8.0]
    sem = compose_labels(
        g,
        ground,
        0.0,
        torch.tensor([car, on_ego]),
        torch.tensor([4, 1]),
        torch.tensor([building]),
        torch.tensor([15]),
    )
    ego = ego_mask(g)
    assert ego.sum() > 0
    assert (sem[ego & (torch.arange(16) != 2)] == Occ3DClass.FREE).all()  # the ego itself is free
    assert (sem[ego & (torch.arange(16) == 2)] == 11).all()  # the road under it stays road
    ix, iy, iz = g.world_to_voxel(torch.tensor([10.1, 0.1, 0.9])).tolist()
    assert sem[ix, iy, iz] == 4 and sem[ix, iy, 2] == 4  # the car covers the ground layer it stands in
    bx, by, bz = g.world_to_voxel(torch.tensor([0.1, 20.1, 5.0])).tolist()
    assert sem[bx, by, bz] == 15
    assert sem[150, 150, 2] == 11 and sem[150, 150, 3] == Occ3DClass.FREE
    # the ego box matches the nuScenes car (EGO) placed at the rear axle
    xs = g.axis_centers(0)[ego.any(2).any(1)]
    assert xs.min() >= EGO.rear_axle_to_center - EGO.length / 2 and xs.max() <= EGO.rear_axle_to_center + EGO.length / 2
    plain = compose_labels(g, ground, 0.0, torch.tensor([car, on_ego]), torch.tensor([4, 1]), ego=None)
    assert (plain == 1).sum() > 0


def test_boxes_to_frame_matches_voxelizing_in_world():
    world = torch.tensor([[105.0, 52.0, 10.8, 2.0, 4.5, 1.9, 1.6], [90.0, 40.0, 11.0, -3.0, 2.0, 1.0, 1.0]])
    ego_pose = torch.tensor([100.0, 50.0, 10.0, 0.5])  # x, y, z (ground), yaw
    local = boxes_to_frame(world, ego_pose)
    c, s = math.cos(0.5), math.sin(0.5)
    dx, dy = 5.0, 2.0
    torch.testing.assert_close(local[0, :2], torch.tensor([c * dx + s * dy, -s * dx + c * dy]))
    assert local[0, 2].item() == pytest.approx(0.8) and local[0, 3].item() == pytest.approx(1.5)
    assert local[1, 3].item() == pytest.approx(-3.5 + 2 * math.pi)  # wrapped to (-π, π]
    torch.testing.assert_close(local[:, 4:], world[:, 4:])
    # each voxel centre, mapped back to the world, lies in the world box (brute force with numpy)
    lab = voxelize_box_index(SMALL, local).numpy()
    cen = _centres(SMALL)
    wx = 100.0 + c * cen[..., 0] - s * cen[..., 1]
    wy = 50.0 + s * cen[..., 0] + c * cen[..., 1]
    wz = 10.0 + cen[..., 2]
    in_world = np.full(SMALL.shape, -1)
    for i, (x, y, z, yaw, length, width, height) in enumerate(world.double().numpy()):
        u = np.cos(yaw) * (wx - x) + np.sin(yaw) * (wy - y)
        v = -np.sin(yaw) * (wx - x) + np.cos(yaw) * (wy - y)
        inside = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2) & (np.abs(wz - z) <= height / 2)
        in_world[inside] = i
    assert (lab >= 0).sum() > 20
    np.testing.assert_array_equal(lab, in_world)
    with pytest.raises(ValueError, match="frame_pose"):
        boxes_to_frame(world, torch.zeros(2))
