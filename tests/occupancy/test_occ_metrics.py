"""Occupancy metrics vs plain loops, Occ3D's formula and hand-made cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from occupancy.classes import OCC3D_CLASSES, Occ3DClass
from occupancy.metrics import OccupancyMetrics, confusion_matrix, iou_summary

SHAPE = (12, 10, 4)


def _loop_confusion(pred, gt, valid):
    conf = np.zeros((18, 18), dtype=np.int64)
    for p, g, v in zip(pred.ravel(), gt.ravel(), valid.ravel()):
        if v:
            conf[g, p] += 1
    return conf


def _loop_iou(conf, c):
    tp = conf[c, c]
    fp = sum(conf[g, c] for g in range(18) if g != c)
    fn = sum(conf[c, p] for p in range(18) if p != c)
    return tp / (tp + fp + fn) if tp + fp + fn else math.nan


def test_random_labels_match_plain_loop_reference():
    rng = np.random.default_rng(0)
    m = OccupancyMetrics()
    total = np.zeros((18, 18), dtype=np.int64)
    for _ in range(3):
        # classes 12..16 absent from gt
        gt = np.where(rng.random(SHAPE) < 0.5, Occ3DClass.FREE, rng.integers(0, 12, SHAPE))
        pred = np.where(rng.random(SHAPE) < 0.3, gt, rng.integers(0, 18, SHAPE))
        cam = rng.random(SHAPE) < 0.8
        ignore = np.zeros(SHAPE, dtype=bool)
        ignore[:2] = True
        m.update(
            torch.from_numpy(pred),
            torch.from_numpy(gt),
            torch.from_numpy(cam.astype(np.uint8)),
            torch.from_numpy(ignore),
        )
        total += _loop_confusion(pred, gt, cam & ~ignore)
    np.testing.assert_array_equal(m.confusion[0].numpy(), total)
    res = m.compute()["overall"]
    ious = [_loop_iou(total, c) for c in range(17)]
    for c in range(17):
        got = res["per_class_iou"][OCC3D_CLASSES[c]]
        assert (got is None and math.isnan(ious[c])) or got == pytest.approx(ious[c])
    present = [c for c in range(17) if total[c].sum() > 0]
    assert present == list(range(12))
    assert res["miou"] == pytest.approx(np.mean([ious[c] for c in present]))
    # Occ3D's script: per_class_iu = diag / (sum(1) + sum(0) - diag), nanmean over the first 17 classes
    with np.errstate(invalid="ignore", divide="ignore"):
        occ3d = np.diag(total) / (total.sum(1) + total.sum(0) - np.diag(total))
    assert res["miou_occ3d"] == pytest.approx(np.nanmean(occ3d[:17]))
    assert res["miou_occ3d"] < res["miou"]  # predicted-but-absent classes count 0 there
    occ_g, occ_p = np.arange(18) != Occ3DClass.FREE, np.arange(18) != Occ3DClass.FREE
    tp = total[np.ix_(occ_g, occ_p)].sum()
    assert res["geometry_iou"] == pytest.approx(
        tp / (tp + total[Occ3DClass.FREE, occ_p].sum() + total[occ_g, Occ3DClass.FREE].sum())
    )
    assert res["num_voxels"] == int(total.sum())


def test_hand_made_cases():
    gt = torch.full(SHAPE, Occ3DClass.FREE, dtype=torch.uint8)
    gt[0, 0, :2] = 4  # two car voxels
    gt[1, 1, 0] = 7  # one pedestrian voxel
    perfect = iou_summary(confusion_matrix(gt, gt))
    assert perfect["miou"] == 1.0 and perfect["geometry_iou"] == 1.0
    assert perfect["per_class_iou"]["car"] == 1.0 and perfect["per_class_iou"]["bus"] is None
    assert perfect["classes_present"] == ["car", "pedestrian"]

    wrong = gt.clone()
    wrong[gt == 4] = 3  # cars predicted as bus: geometry right, semantics wrong
    wrong[gt == 7] = Occ3DClass.FREE  # pedestrian missed
    s = iou_summary(confusion_matrix(wrong, gt))
    assert s["per_class_iou"]["car"] == 0.0 and s["per_class_iou"]["pedestrian"] == 0.0
    assert s["per_class_iou"]["bus"] == 0.0  # absent from gt but predicted: IoU 0 ...
    assert s["miou"] == 0.0 and s["classes_present"] == ["car", "pedestrian"]  # ... but not in miou
    assert s["geometry_iou"] == pytest.approx(2 / 3)

    half = gt.clone()
    half[0, 0, 1] = Occ3DClass.FREE  # one of two car voxels missed
    half[5, 5, 3] = 4  # one false car voxel
    s = iou_summary(confusion_matrix(half, gt))
    assert s["per_class_iou"]["car"] == pytest.approx(1 / 3)
    assert s["miou"] == pytest.approx((1 / 3 + 1) / 2)

    empty = iou_summary(confusion_matrix(torch.full(SHAPE, Occ3DClass.FREE), torch.full(SHAPE, Occ3DClass.FREE)))
    assert empty["miou"] is None and empty["geometry_iou"] is None


def test_per_horizon_and_masks():
    rng = np.random.default_rng(1)
    t = 3
    gt = torch.from_numpy(rng.integers(0, 18, (2, t, *SHAPE)))
    pred = gt.clone()
    pred[:, 2] = Occ3DClass.FREE  # last horizon predicts nothing
    m = OccupancyMetrics(horizons=t, horizon_times=[0.5, 1.0, 1.5])
    m.update(pred, gt)
    out = m.compute()
    assert [h["miou"] for h in out["per_horizon"][:2]] == [1.0, 1.0]
    assert out["per_horizon"][2]["miou"] == 0.0 and out["per_horizon"][2]["time_s"] == 1.5
    for k in range(t):
        np.testing.assert_array_equal(
            m.confusion[k].numpy(), _loop_confusion(pred[:, k].numpy(), gt[:, k].numpy(), np.ones((2, *SHAPE), bool))
        )
    # camera mask [X, Y, Z] broadcast over batch and time; an ignored region is not counted
    mask = torch.zeros(SHAPE, dtype=torch.uint8)
    mask[:6] = 1
    ignore = torch.zeros(SHAPE, dtype=torch.bool)
    ignore[:3] = True
    m2 = OccupancyMetrics(horizons=t).update(pred, gt, mask, ignore)
    assert int(m2.confusion.sum()) == 2 * t * 3 * 10 * 4
    # serialize → JSON → deserialize keeps everything; merge adds
    blob = json.loads(json.dumps(m.serialize()))
    back = OccupancyMetrics.deserialize(blob)
    assert torch.equal(back.confusion, m.confusion) and back.compute() == m.compute()
    back.merge(m)
    assert torch.equal(back.confusion, 2 * m.confusion)
    assert back.num_samples == 2 * m.num_samples == 4


def test_bad_input():
    m = OccupancyMetrics(horizons=2)
    gt = torch.zeros(2, *SHAPE, dtype=torch.uint8)
    with pytest.raises(ValueError, match="T=2"):
        m.update(gt[:1], gt[:1])
    with pytest.raises(ValueError, match="class ids outside"):
        m.update(gt + 18, gt)
    with pytest.raises(ValueError, match="integer"):
        m.update(gt.float(), gt)
    with pytest.raises(ValueError, match="does not match"):
        m.update(gt, gt[:, :5])
    with pytest.raises(ValueError, match="mask shape"):
        m.update(gt, gt, mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match="horizons"):
        m.merge(OccupancyMetrics())
