"""Open-loop metrics (DESIGN.md §7), pure functions over batched tensors.

Planning: L2 to the logged trajectory at 1/2/3 s and the collision rate of the planned ego box
against ground-truth vehicle and pedestrian boxes, each in both conventions found in the literature:

- "at t" (UniAD style): the value at the step of time t;
- "average up to t" (ST-P3 / VAD style): the mean of the per-step values over the steps ≤ t.

Collisions use the ego box (`agents.EGO`, rear-axle offset, the plan's yaw) at every future step
against the boxes of that step. Samples whose logged future itself collides are excluded from the
collision rates and counted (`num_excluded`).

Also: the traffic-light head's confusion, detection ↔ ground-truth matching, the detection
heatmap's scores, the top-mode ADE of agent futures, and the cells whose truth depends on the plan.
(Occupancy IoU/mIoU is `occupancy.metrics`; minADE/minFDE/MR is `agents.metrics`.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from agents import AgentClass
from agents.boxes import boxes_overlap, ego_boxes
from agents.checks import check_tensor
from agents.metrics import forecast_metrics
from drivewm.model.heads import encode_detection_targets
from occupancy import GridSpec
from planner import LightState
from planner.timebase import STEP_SECONDS

HORIZONS = (1.0, 2.0, 3.0)
"""Reported horizons [s]."""


def _step(t: float, num_steps: int) -> int:
    k = round(t / STEP_SECONDS)
    if abs(k * STEP_SECONDS - t) > 1e-6 or not 1 <= k <= num_steps:
        raise ValueError(f"horizon {t} s is not a step of a {num_steps}-step plan at {STEP_SECONDS} s")
    return k


def l2_per_step(pred: Tensor, gt: Tensor) -> Tensor:
    """`[B, T]` Euclidean distance of plan positions `pred [B, T, ≥2]` to the logged `gt [B, T, ≥2]`."""
    check_tensor("pred", pred, (None, None, None))
    check_tensor("gt", gt, (None, None, None))
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
    check_tensor("plans", plans, (None, None, 3))
    check_tensor("boxes", boxes, (None, None, None, 5))
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


def match_agents(det_xy: Tensor, det_valid: Tensor, gt_xy: Tensor, gt_valid: Tensor, radius: float) -> Tensor:
    """Hungarian matching of detections to ground-truth agents by centre distance, gated.

    Args:
        det_xy `[B, A, 2]`, det_valid `[B, A]`, gt_xy `[B, G, 2]`, gt_valid `[B, G]`; radius [m].

    Returns:
        `[B, G]` int64 index of the matched detection (-1 if none).
    """
    b, g = gt_valid.shape
    out = torch.full((b, g), -1, dtype=torch.int64)
    for i in range(b):
        di = torch.nonzero(det_valid[i]).flatten()
        gi = torch.nonzero(gt_valid[i]).flatten()
        if len(di) == 0 or len(gi) == 0:
            continue
        cost = torch.cdist(gt_xy[i, gi].double(), det_xy[i, di].double()).numpy()
        rows, cols = linear_sum_assignment(np.where(cost <= radius, cost, 1e6))
        for r, c in zip(rows, cols):
            if cost[r, c] <= radius:
                out[i, gi[r]] = di[c]
    return out


def plan_dependent_cells(branch_occ: Tensor, branch_valid: Tensor) -> Tensor:
    """Cells whose truth depends on the plan: the sample's valid branches disagree there.

    Args:
        branch_occ: `[B, Kb, T, X, Y]` bool BEV obstacle truth per branch; branch_valid `[B, Kb]` bool.

    Returns:
        `[B, Kb, T, X, Y]` bool (the same cells for every branch of a sample; none with < 2 valid branches).
    """
    v = branch_valid[:, :, None, None, None]
    any_occ = (branch_occ & v).any(1)
    all_occ = (branch_occ | ~v).all(1)
    return (any_occ & ~all_occ)[:, None].expand_as(branch_occ)


def light_metrics(pred: Tensor, true: Tensor) -> dict:
    """Traffic-light head vs the recorded state of the light governing the ego's route.

    Args:
        pred: `[S]` int64 `LightState` (argmax); true `[S]` int64 `LightState`, -1 where unknown.

    Returns:
        accuracy, per-state recall and precision (red's are what the planner's red-light gate needs),
        the confusion matrix `[true][pred]` and the number of samples with a known state.
    """
    known = true >= 0
    p, t = pred[known], true[known]
    confusion = torch.zeros(len(LightState), len(LightState), dtype=torch.int64)
    confusion.index_put_((t, p), torch.ones_like(t), accumulate=True)
    out: dict = {"samples": int(known.sum()), "confusion_true_by_pred": confusion.tolist()}
    out["accuracy"] = float((p == t).float().mean()) if len(t) else None
    for state in LightState:
        k = int(state)
        tp = int(confusion[k, k])
        out[f"{state.name.lower()}_recall"] = tp / int(confusion[k].sum()) if int(confusion[k].sum()) else None
        out[f"{state.name.lower()}_precision"] = tp / int(confusion[:, k].sum()) if int(confusion[:, k].sum()) else None
    return out


def detection_scores(heatmap_logits: Tensor, tg, grid: GridSpec) -> dict[str, Tensor]:
    """Where the detection heatmap stands: its score at each ground-truth centre cell `[B, A]` (NaN for
    padding) and the strongest score away from every ground-truth agent `[B]` (target heat < 0.1)."""
    target, _, flat, inside = encode_detection_targets(
        tg.agent_box, tg.agent_cls, tg.agent_valid, tg.agent_velocity, grid
    )
    score = torch.sigmoid(heatmap_logits).amax(1).flatten(1)  # [B, X·Y]
    at_gt = torch.gather(score, 1, flat).masked_fill(~inside, float("nan"))
    away = score.masked_fill(target.amax(1).flatten(1) >= 0.1, 0.0).amax(1)
    return {"score_at_gt": at_gt, "background_peak": away}


def top_mode_ade(trajs: Tensor, probs: Tensor, truth: Tensor, valid: Tensor) -> Tensor:
    """ADE of the most probable mode (minADE_1, `agents.metrics`) of every future with a valid step.

    Args:
        trajs: `[..., K, T, >=2]` predicted poses; probs `[..., K]`; truth `[..., T, >=2]`; valid `[..., T]` bool.

    Returns:
        `[M]` one value per future that has a valid step (empty if none).
    """
    if not bool(valid.any()):
        return torch.zeros(0)
    fm = forecast_metrics(trajs[..., :2], probs, truth[..., :2], valid, ks=(1,))
    return fm["minADE_1"].value[fm["minADE_1"].valid]


def bev_counts(pred: Tensor, gt: Tensor) -> tuple[float, float]:
    """(intersection, union) cell counts of two bool BEV masks of one shape."""
    return float((pred & gt).sum()), float((pred | gt).sum())


__all__ = [
    "HORIZONS",
    "OpenLoopResult",
    "at_and_average",
    "bev_counts",
    "collisions_per_step",
    "detection_scores",
    "l2_per_step",
    "light_metrics",
    "match_agents",
    "open_loop_metrics",
    "plan_dependent_cells",
    "top_mode_ade",
]
