"""Open-loop planning metrics (DESIGN.md §7): L2 to the logged trajectory at 1/2/3 s and the
collision rate of the planned ego box against ground-truth vehicle and pedestrian boxes, each in
both conventions found in the literature:

- "at t" (UniAD style): the value at the step of time t;
- "average up to t" (ST-P3 / VAD style): the mean of the per-step values over the steps ≤ t.

Collisions use the ego box (`agents.EGO`, rear-axle offset, the plan's yaw) at every future step
against the boxes of that step. Samples whose logged future itself collides are excluded from the
collision rates and counted (`num_excluded`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from agents import AgentClass
from agents.boxes import boxes_overlap, ego_boxes
from planner.timebase import STEP_SECONDS

HORIZONS = (1.0, 2.0, 3.0)
"""Reported horizons [s]."""


def _step(t: float, num_steps: int) -> int:
    k = round(t / STEP_SECONDS)
    if abs(k * STEP_SECONDS - t) > 1e-6 or not 1 <= k <= num_steps:
        raise ValueError(f"horizon {t} s is not a step of a {num_steps}-step plan at {STEP_SECONDS} s")
    return k


def _check(name: str, t: object, dims: int, last: int | None = None) -> Tensor:
    if not isinstance(t, Tensor) or t.dim() != dims or (last is not None and t.shape[-1] != last):
        shape = list(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(f"{name} has shape {shape}, expected {dims} dims" + (f" ending in {last}" if last else ""))
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return t


def l2_per_step(pred: Tensor, gt: Tensor) -> Tensor:
    """`[B, T]` Euclidean distance of plan positions `pred [B, T, ≥2]` to the logged `gt [B, T, ≥2]`."""
    _check("pred", pred, 3)
    _check("gt", gt, 3)
    if pred.shape[:2] != gt.shape[:2]:
        raise ValueError(f"pred {list(pred.shape)} and gt {list(gt.shape)} disagree in [B, T]")
    return (pred[..., :2] - gt[..., :2]).norm(dim=-1)


def at_and_average(per_step: Tensor, horizons: tuple[float, ...] = HORIZONS) -> dict[str, dict[float, float]]:
    """Both conventions from per-step values `[B, T]` (mean over samples first).

    Returns:
        `{"at": {t: value}, "avg": {t: value}}`.
    """
    mean = per_step.float().mean(0)  # [T]
    out: dict[str, dict[float, float]] = {"at": {}, "avg": {}}
    for t in horizons:
        k = _step(t, per_step.shape[1])
        out["at"][t] = float(mean[k - 1])
        out["avg"][t] = float(mean[:k].mean())
    return out


def collisions_per_step(plans: Tensor, boxes: Tensor, valid: Tensor, cls: Tensor | None = None) -> Tensor:
    """Whether the ego box collides at each step.

    Args:
        plans: `[B, T, 3]` rear-axle (x, y, yaw) in the ego frame.
        boxes: `[B, T, M, 5]` ground-truth boxes at each step (same frame).
        valid: `[B, T, M]` bool.
        cls: optional `[B, M]` int64 `AgentClass`; only vehicles and pedestrians count.

    Returns:
        `[B, T]` bool.
    """
    _check("plans", plans, 3, 3)
    _check("boxes", boxes, 4, 5)
    b, t = plans.shape[:2]
    if boxes.shape[:2] != (b, t) or valid.shape != boxes.shape[:3] or valid.dtype != torch.bool:
        raise ValueError(f"boxes {list(boxes.shape)} / valid {list(valid.shape)} do not match plans [{b}, {t}]")
    keep = valid
    if cls is not None:
        if cls.shape != (b, boxes.shape[2]):
            raise ValueError(f"cls has shape {list(cls.shape)}, expected [{b}, {boxes.shape[2]}]")
        counted = AgentClass.is_vehicle(cls) | (cls == AgentClass.PEDESTRIAN)
        keep = keep & counted[:, None, :]
    if boxes.shape[2] == 0:
        return torch.zeros(b, t, dtype=torch.bool, device=plans.device)
    hit = boxes_overlap(ego_boxes(plans)[..., None, :], boxes)[..., 0, :]  # [B, T, M]
    return (hit & keep).any(-1)


@dataclass(frozen=True)
class OpenLoopResult:
    """Attributes:
    l2: `{"at": {t: m}, "avg": {t: m}}` mean L2 [m].
    collision: `{"at": {t: rate}, "avg": {t: rate}}` over the samples kept.
    num_samples: samples given.
    num_excluded: samples whose logged future collides (left out of the collision rates).
    """

    l2: dict[str, dict[float, float]]
    collision: dict[str, dict[float, float]]
    num_samples: int
    num_excluded: int

    def to_dict(self) -> dict:
        return {
            "l2": {k: {str(t): v for t, v in d.items()} for k, d in self.l2.items()},
            "collision": {k: {str(t): v for t, v in d.items()} for k, d in self.collision.items()},
            "num_samples": self.num_samples,
            "num_excluded": self.num_excluded,
        }


def open_loop_metrics(
    pred: Tensor,
    gt: Tensor,
    boxes: Tensor,
    valid: Tensor,
    cls: Tensor | None = None,
    horizons: tuple[float, ...] = HORIZONS,
) -> OpenLoopResult:
    """L2 and collision rates of predicted plans `pred [B, T, 3]` vs the logged `gt [B, T, 3]`,
    ground-truth boxes `[B, T, M, 5]` with `valid [B, T, M]` (and classes `[B, M]`)."""
    l2 = at_and_average(l2_per_step(pred, gt), horizons)
    plan_hit = collisions_per_step(pred, boxes, valid, cls)
    logged_hit = collisions_per_step(gt, boxes, valid, cls).any(-1)  # [B]
    kept = plan_hit[~logged_hit]
    if kept.shape[0] == 0:
        nan = {t: float("nan") for t in horizons}
        collision = {"at": dict(nan), "avg": dict(nan)}
    else:
        collision = at_and_average(kept, horizons)
    return OpenLoopResult(l2, collision, int(pred.shape[0]), int(logged_hit.sum()))
