"""Resampling between grids and ego frames: round trips, plain-loop references, boxes moved by a pose."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.se2 import se2_apply
from occupancy.builders import voxelize_boxes
from occupancy.classes import Occ3DClass
from occupancy.grid import GridSpec
from occupancy.resample import downsample_labels, resample_nearest, upsample_nearest, warp_labels_se2

FINE = GridSpec.occ3d()
COARSE = FINE.coarsen(2)  # 100 x 100 x 8 at 0.8 m


def test_upsample_then_downsample_is_identity():
    g = torch.Generator().manual_seed(0)
    coarse = torch.randint(0, 18, (2, *COARSE.shape), generator=g, dtype=torch.uint8)
    fine = upsample_nearest(coarse, COARSE, FINE)
    assert fine.shape == (2, *FINE.shape) and fine.dtype == torch.uint8
    assert torch.equal(fine[0, ::2, ::2, ::2], coarse[0]) and torch.equal(fine[1, 1::2, 1::2, 1::2], coarse[1])
    assert torch.equal(downsample_labels(fine, FINE, COARSE), coarse)
    assert torch.equal(downsample_labels(fine, FINE, COARSE, occupied_first=False), coarse)
    # logits [C, X, Y, Z] upsample the same way, channel by channel
    logits = torch.randn(18, *COARSE.shape, generator=g)
    up = upsample_nearest(logits, COARSE, FINE)
    assert torch.equal(up.argmax(0).to(torch.uint8), upsample_nearest(logits.argmax(0).to(torch.uint8), COARSE, FINE))


def test_downsample_votes_match_plain_loop():
    src = GridSpec((-2.0, -2.0, -1.0), (2.0, 2.0, 0.6), (0.4, 0.4, 0.4))  # 10 x 10 x 4
    dst = src.coarsen(2)  # 5 x 5 x 2
    rng = np.random.default_rng(3)
    lab = np.where(rng.random(src.shape) < 0.6, Occ3DClass.FREE, rng.integers(0, 4, src.shape)).astype(np.uint8)
    lab[:2, :2, :2] = Occ3DClass.FREE  # an all-free block
    for occupied_first in (True, False):
        got = downsample_labels(torch.from_numpy(lab), src, dst, occupied_first).numpy()
        for i in range(5):
            for j in range(5):
                for k in range(2):
                    block = lab[2 * i : 2 * i + 2, 2 * j : 2 * j + 2, 2 * k : 2 * k + 2].ravel()
                    counts = np.bincount(block, minlength=18)
                    if occupied_first and counts[: Occ3DClass.FREE].sum() > 0:
                        expected = int(np.argmax(counts[: Occ3DClass.FREE]))
                    else:
                        expected = int(np.argmax(counts))
                    assert got[i, j, k] == expected, (i, j, k, occupied_first)
    assert downsample_labels(torch.from_numpy(lab), src, dst)[0, 0, 0] == Occ3DClass.FREE


def test_resample_nearest_to_shifted_grid_fills_outside():
    shifted = GridSpec((-20.0, -40.0, -1.0), (60.0, 40.0, 5.4), (0.4, 0.4, 0.4))  # 20 m forward
    lab = torch.randint(0, 17, FINE.shape, dtype=torch.uint8)
    out = resample_nearest(lab, FINE, shifted)
    assert torch.equal(out[:150], lab[50:])
    assert (out[150:] == Occ3DClass.FREE).all()
    with pytest.raises(ValueError, match="values must have shape"):
        resample_nearest(lab[:10], FINE, shifted)


def _plain_loop_warp(lab, grid, pose):
    x0, y0, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    out = np.full(lab.shape, Occ3DClass.FREE, dtype=lab.dtype)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            px = grid.lower[0] + (i + 0.5) * grid.voxel[0] - x0
            py = grid.lower[1] + (j + 0.5) * grid.voxel[1] - y0
            sx, sy = c * px + s * py, -s * px + c * py  # R^T (p - t)
            si = math.floor((sx - grid.lower[0]) / grid.voxel[0])
            sj = math.floor((sy - grid.lower[1]) / grid.voxel[1])
            if 0 <= si < grid.shape[0] and 0 <= sj < grid.shape[1]:
                out[i, j] = lab[si, sj]
    return out


def test_warp_matches_plain_loop_and_inverts():
    small = GridSpec((-6.0, -5.0, -1.0), (6.0, 5.0, 0.6), (0.4, 0.4, 0.4))  # 30 x 25 x 4
    rng = np.random.default_rng(4)
    lab = rng.integers(0, 18, small.shape).astype(np.uint8)
    pose = (1.3, -0.7, 0.4)
    got = warp_labels_se2(torch.from_numpy(lab), small, torch.tensor(pose)).numpy()
    diff = (got != _plain_loop_warp(lab, small, pose)).mean()
    assert diff < 0.003  # only voxel centres within float noise of a face may differ
    # identity and exact grid moves (90° + whole voxels) invert exactly
    t = torch.from_numpy(lab)
    assert torch.equal(warp_labels_se2(t, small, torch.zeros(3)), t)
    sq = GridSpec((-4.0, -4.0, -1.0), (4.0, 4.0, 0.6), (0.4, 0.4, 0.4))
    lab_sq = torch.from_numpy(rng.integers(0, 18, sq.shape).astype(np.uint8))
    p = torch.tensor([0.0, 0.0, math.pi / 2])
    back = warp_labels_se2(warp_labels_se2(lab_sq, sq, p), sq, torch.tensor([0.0, 0.0, -math.pi / 2]))
    assert torch.equal(back, lab_sq)
    # batched: one pose per leading index
    both = warp_labels_se2(torch.stack([t, t]), small, torch.tensor([[0.0, 0.0, 0.0], list(pose)]))
    assert torch.equal(both[0], t) and torch.equal(both[1], torch.from_numpy(got))
    with pytest.raises(ValueError, match="src_in_dst"):
        warp_labels_se2(t, small, torch.zeros(2))


def test_warp_moves_boxes_like_transforming_them():
    boxes = torch.tensor(
        [
            [10.0, 3.0, 0.8, 0.3, 4.5, 1.9, 1.6],
            [-8.0, -6.0, 1.0, -1.2, 10.0, 2.5, 3.0],
            [20.0, -15.0, 0.9, 2.0, 3.0, 2.0, 1.8],
        ]
    )
    labels = torch.tensor([4, 3, 7])
    pose = torch.tensor([4.0, -2.0, 0.35])  # source frame in destination frame
    src = voxelize_boxes(FINE, boxes, labels)
    moved = boxes.clone()
    moved[:, :2] = se2_apply(pose, boxes[None, :, :2])[0]
    moved[:, 3] = boxes[:, 3] + pose[2]
    expected = voxelize_boxes(FINE, moved, labels)
    got = warp_labels_se2(src, FINE, pose)
    for c in (3, 4, 7):
        inter = ((got == c) & (expected == c)).sum().item()
        union = ((got == c) | (expected == c)).sum().item()
        assert inter / union > 0.75, c  # nearest lookup differs only along box faces
