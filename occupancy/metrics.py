"""Occupancy metrics as Occ3D evaluates them: one confusion matrix accumulated over a whole set.

`conf[g, p]` counts voxels with ground truth `g` and prediction `p` (18 × 18, free = 17), only where
the evaluation mask holds (`mask_camera`, as Occ3D's camera-only track) and outside `ignore` (e.g.
the ego's own voxels). From it:
- per-class IoU for the 17 semantic classes 0..16: `TP / (TP + FP + FN)`, where predicting free on
  an occupied voxel is a false negative of its class (as in Occ3D);
- `miou`: mean of the per-class IoU over the classes **present in the ground truth** of the set
  (a class never in the ground truth has no defined recall and is left out, even if predicted);
- `miou_occ3d`: the Occ3D evaluation script's own convention (nan-mean over classes whose union is
  non-empty, so a class absent from the ground truth but predicted counts as 0), for comparison;
- `geometry_iou`: occupied (any class 0..16) vs free, class-agnostic.
With `horizons = T`, inputs carry a time dim `[..., T, X, Y, Z]` and one matrix is kept per horizon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from occupancy.classes import NUM_CLASSES, NUM_SEMANTIC_CLASSES, OCC3D_CLASSES, Occ3DClass

__all__ = ["OccupancyMetrics", "confusion_matrix", "iou_summary"]


def _check_labels(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{name} must hold integer class ids, got {x.dtype}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= NUM_CLASSES):
        raise ValueError(f"{name} has class ids outside 0..{NUM_CLASSES - 1}")
    return x


def confusion_matrix(pred: Tensor, gt: Tensor, valid: Tensor | None = None) -> Tensor:
    """`[18, 18]` int64 confusion matrix `conf[gt, pred]` over the voxels where `valid` (all if None).

    Args:
        pred, gt: `[...]` integer labels 0..17, same shape.
        valid: `[...]` bool (broadcastable to `gt`), or None.
    """
    _check_labels(pred, "pred")
    _check_labels(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} does not match gt shape {tuple(gt.shape)}")
    key = gt.long() * NUM_CLASSES + pred.long().to(gt.device)
    if valid is not None:
        key = key[torch.broadcast_to(valid.to(gt.device), gt.shape)]
    return torch.bincount(key.reshape(-1), minlength=NUM_CLASSES * NUM_CLASSES).view(NUM_CLASSES, NUM_CLASSES)


def _nan_to_none(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def iou_summary(conf: Tensor) -> dict:
    """Metrics of one `[18, 18]` confusion matrix (see the module docstring).

    Returns:
        dict with `per_class_iou` `{name: float | None}` (None = the class never occurs in ground
        truth nor prediction), `miou`, `miou_occ3d`, `geometry_iou` (None when undefined),
        `classes_present` (names present in the ground truth) and `num_voxels`.
    """
    c = conf.double()
    tp = c.diagonal()
    gt_count, pred_count = c.sum(1), c.sum(0)
    union = gt_count + pred_count - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))[:NUM_SEMANTIC_CLASSES]
    present = gt_count[:NUM_SEMANTIC_CLASSES] > 0
    miou = float(iou[present].mean()) if present.any() else math.nan
    defined = ~torch.isnan(iou)
    miou_occ3d = float(iou[defined].mean()) if defined.any() else math.nan
    occ = slice(0, Occ3DClass.FREE)
    g_tp = float(c[occ, occ].sum())
    g_fp = float(c[Occ3DClass.FREE, occ].sum())
    g_fn = float(c[occ, Occ3DClass.FREE].sum())
    g_union = g_tp + g_fp + g_fn
    return {
        "per_class_iou": {OCC3D_CLASSES[i]: _nan_to_none(float(iou[i])) for i in range(NUM_SEMANTIC_CLASSES)},
        "miou": _nan_to_none(miou),
        "miou_occ3d": _nan_to_none(miou_occ3d),
        "geometry_iou": g_tp / g_union if g_union > 0 else None,
        "classes_present": [OCC3D_CLASSES[i] for i in range(NUM_SEMANTIC_CLASSES) if bool(present[i])],
        "num_voxels": int(conf.sum()),
    }


class OccupancyMetrics:
    """Accumulator of Occ3D confusion matrices over a set, optionally one per forecast horizon.

    Args:
        horizons: None for single-frame inputs `[..., X, Y, Z]`; T for forecasts `[..., T, X, Y, Z]`
            (dim -4 is the horizon), one confusion matrix per horizon.
        horizon_times: optional `[T]` times [s] of the horizons, written by `serialize()`.
    """

    def __init__(self, horizons: int | None = None, horizon_times: Sequence[float] | None = None) -> None:
        if horizons is not None and horizons < 1:
            raise ValueError(f"horizons must be None or >= 1, got {horizons}")
        if horizon_times is not None and (horizons is None or len(horizon_times) != horizons):
            raise ValueError(f"horizon_times must have {horizons} entries, got {list(horizon_times)}")
        self.horizons = horizons
        self.horizon_times = None if horizon_times is None else [float(t) for t in horizon_times]
        self.confusion = torch.zeros(horizons or 1, NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)  # [T, gt, pred]
        self.num_samples = 0

    def reset(self) -> None:
        self.confusion.zero_()
        self.num_samples = 0

    def update(
        self, pred: Tensor, gt: Tensor, mask: Tensor | None = None, ignore: Tensor | None = None
    ) -> OccupancyMetrics:
        """Accumulate a batch.

        Args:
            pred: `[..., X, Y, Z]` (or `[..., T, X, Y, Z]` with horizons) integer labels 0..17.
            gt: same shape as `pred`.
            mask: evaluate only where `mask != 0` (e.g. `mask_camera`), broadcastable to `gt`; None = all.
            ignore: bool, True = excluded (e.g. `ego_mask(grid)` `[X, Y, Z]`), broadcastable to `gt`.

        Returns:
            self.
        """
        _check_labels(pred, "pred")
        _check_labels(gt, "gt")
        if pred.shape != gt.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} does not match gt shape {tuple(gt.shape)}")
        if gt.dim() < 3:
            raise ValueError(f"gt must have shape [..., X, Y, Z], got {tuple(gt.shape)}")
        valid = torch.ones((), dtype=torch.bool, device=gt.device)
        for name, m, keep in (("mask", mask, True), ("ignore", ignore, False)):
            if m is None:
                continue
            m = torch.as_tensor(m, device=gt.device)
            try:
                torch.broadcast_shapes(m.shape, gt.shape)
            except RuntimeError:
                raise ValueError(f"{name} shape {tuple(m.shape)} does not broadcast to {tuple(gt.shape)}") from None
            m = m != 0
            valid = valid & (m if keep else ~m)
        valid = torch.broadcast_to(valid, gt.shape)
        if self.horizons is None:
            self.confusion[0] += confusion_matrix(pred, gt, valid).cpu()
            self.num_samples += int(torch.tensor(gt.shape[:-3]).prod()) if gt.dim() > 3 else 1
            return self
        if gt.dim() < 4 or gt.shape[-4] != self.horizons:
            raise ValueError(f"gt must have shape [..., T={self.horizons}, X, Y, Z], got {tuple(gt.shape)}")
        for t in range(self.horizons):
            sel = (..., t, slice(None), slice(None), slice(None))
            self.confusion[t] += confusion_matrix(pred[sel], gt[sel], valid[sel]).cpu()
        self.num_samples += int(torch.tensor(gt.shape[:-4]).prod()) if gt.dim() > 4 else 1
        return self

    def merge(self, other: OccupancyMetrics) -> OccupancyMetrics:
        """Add another accumulator's counts (same horizons) into this one; returns self."""
        if other.horizons != self.horizons:
            raise ValueError(f"cannot merge metrics with horizons {other.horizons} into {self.horizons}")
        self.confusion += other.confusion
        self.num_samples += other.num_samples
        return self

    def compute(self) -> dict:
        """`{"overall": iou_summary(sum over horizons), "per_horizon": [iou_summary(t) ...]}` (the
        latter only with horizons)."""
        out: dict = {"overall": iou_summary(self.confusion.sum(0))}
        if self.horizons is not None:
            per = []
            for t in range(self.horizons):
                s = iou_summary(self.confusion[t])
                s["horizon"] = t
                if self.horizon_times is not None:
                    s["time_s"] = self.horizon_times[t]
                per.append(s)
            out["per_horizon"] = per
        return out

    def serialize(self) -> dict:
        """JSON-ready dict: the metrics of `compute()` plus the raw confusion matrices (so sets can be
        merged later) and the conventions used."""
        return {
            **self.compute(),
            "horizons": self.horizons,
            "horizon_times": self.horizon_times,
            "num_samples": self.num_samples,
            "classes": list(OCC3D_CLASSES),
            "miou_convention": "mean IoU over classes 0..16 present in the ground truth",
            "confusion": self.confusion.tolist(),
        }

    @classmethod
    def deserialize(cls, content: dict) -> OccupancyMetrics:
        """Rebuild an accumulator from `serialize()` output."""
        m = cls(content["horizons"], content.get("horizon_times"))
        conf = torch.tensor(content["confusion"], dtype=torch.int64)
        if conf.shape != m.confusion.shape:
            raise ValueError(f"confusion has shape {tuple(conf.shape)}, expected {tuple(m.confusion.shape)}")
        m.confusion = conf
        m.num_samples = int(content.get("num_samples", 0))
        return m
