"""Action-relevance metrics (DESIGN.md §7): does a world model's scoring rank and reject candidate
plans like the simulated truth does?

Pure functions: over `[S, N]` numpy arrays (S scenes, N plans) the rank correlations per scene
(Kendall τ-b, Spearman ρ) with a Student-t confidence interval over scenes, top-1 regret, AUROC of
unsafe-plan detection and the false-accept rate at an operating threshold; over a scorer's
`ScoreResult` `[B, N]` the model-dependent score and the unsafety; plan-conditioned occupancy
counts; and `summarize`, which turns the per-scene records of a run into the per-model metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from agents import ego_boxes
from drivewm.evaluation.common.stats import mean_ci
from planner import LightState, Prediction
from planner.scorer import Gate, ScorerConfig, ScoreResult, Soft
from planner.timebase import HORIZON_SECONDS
from planner.world_models import rasterize_boxes


def _pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    return x, y


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get their average rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall τ-b (tie-corrected); NaN if x or y is constant."""
    x, y = _pair(x, y)
    iu = np.triu_indices(len(x), 1)
    sx = np.sign(x[:, None] - x[None, :])[iu]
    sy = np.sign(y[:, None] - y[None, :])[iu]
    den = math.sqrt(float(np.abs(sx).sum()) * float(np.abs(sy).sum()))
    return float((sx * sy).sum() / den) if den > 0 else math.nan


def spearman_rho(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ: Pearson correlation of the average ranks; NaN if x or y is constant."""
    x, y = _pair(x, y)
    rx, ry = rankdata(x) - (len(x) + 1) / 2, rankdata(y) - (len(y) + 1) / 2
    den = math.sqrt(float((rx * rx).sum()) * float((ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else math.nan


def per_scene(metric, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """`metric(pred[s], true[s])` for each scene of `[S, N]` arrays → `[S]`."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape} and true {true.shape} must both be [S, N]")
    return np.array([metric(p, t) for p, t in zip(pred, true)])


def top1_regret(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """`[S]` true score of the best plan minus the true score of the plan the prediction ranks first."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape} and true {true.shape} must both be [S, N]")
    chosen = true[np.arange(len(true)), pred.argmax(1)]
    return true.max(1) - chosen


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of `scores` (higher = more likely positive) for binary `labels`
    (Mann–Whitney U with average ranks: ties count ½). NaN if a class is empty."""
    s, lab = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels).ravel().astype(bool)
    if s.shape != lab.shape:
        raise ValueError(f"scores and labels must have the same length, got {s.shape[0]} and {lab.shape[0]}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    pos, neg = int(lab.sum()), int((~lab).sum())
    if pos == 0 or neg == 0:
        return math.nan
    r = rankdata(s)
    return float((r[lab].sum() - pos * (pos + 1) / 2) / (pos * neg))


def false_accept_rate(accepted: np.ndarray, unsafe: np.ndarray) -> float:
    """Share of truly unsafe plans (collide or leave the road in simulation) that were accepted; NaN
    if there is no unsafe plan."""
    a, u = np.asarray(accepted).ravel().astype(bool), np.asarray(unsafe).ravel().astype(bool)
    if a.shape != u.shape:
        raise ValueError(f"accepted and unsafe must have the same length, got {a.shape[0]} and {u.shape[0]}")
    return float((a & u).sum() / u.sum()) if u.any() else math.nan


def relevance_summary(
    pred_score: np.ndarray,
    true_score: np.ndarray,
    pred_unsafe: np.ndarray,
    true_unsafe: np.ndarray,
    threshold: float = 0.5,
    level: float = 0.95,
) -> dict:
    """All relevance metrics for `[S, N]` arrays.

    Args:
        pred_score, true_score: plan scores from the model's prediction and from simulating the plan.
        pred_unsafe: the model's unsafety score (e.g. 1 - the product of the model-dependent gates,
            or a collision probability); a plan is accepted when `pred_unsafe < threshold`.
        true_unsafe: bool, the plan truly collides or leaves the road.
    """
    tau = per_scene(kendall_tau, pred_score, true_score)
    rho = per_scene(spearman_rho, pred_score, true_score)
    regret = top1_regret(pred_score, true_score)
    return {
        "kendall_tau": mean_ci(tau, level),
        "spearman_rho": mean_ci(rho, level),
        "top1_regret": mean_ci(regret, level),
        "unsafe_auroc": auroc(pred_unsafe, true_unsafe),
        "false_accept_rate": false_accept_rate(np.asarray(pred_unsafe) < threshold, true_unsafe),
        "threshold": threshold,
        "num_scenes": int(np.asarray(pred_score).shape[0]),
    }


def rank_per_scene(metric: Callable, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """`metric` (τ or ρ) per scene of `[S, N]` arrays. A scene whose truth is constant is undefined (NaN,
    left out of the mean and counted); a model that predicts the same value for every plan of a scene
    whose truth varies carries no ranking information and gets 0 there (τ-b itself is undefined)."""
    out = per_scene(metric, pred, true)
    flat_pred = np.ptp(pred, axis=1) == 0
    varied_true = np.ptp(true, axis=1) > 0
    return np.where(flat_pred & varied_true, 0.0, out)


def dependent_score(
    res: ScoreResult,
    collision: Tensor | None = None,
    off_road: Tensor | None = None,
    collision_time: Tensor | None = None,
) -> Tensor:
    """The model-dependent part of the score `[B, N]`: 0 off the driveable area; t_c / (2·3 s) ∈ (0, 0.5]
    when the first collision is at t_c; 0.5 + 0.5·TTC term without a collision. Progress, comfort and
    lane centring (which rank plans without any world model) are left out. True outcome flags
    `collision`/`off_road` `[B, N]` and the true first-collision time `collision_time` `[B, N]` (inf if
    none) override the scorer's gates when given (a flagged collision without a time counts as t = 3 s)."""
    t_first = res.collision_time
    if collision_time is not None:
        t_first = torch.minimum(t_first, collision_time)
    collides = res.gates[:, Gate.NO_COLLISION] < 0.5
    if collision is not None:
        collides = collides | collision
    off = res.gates[:, Gate.DRIVABLE] < 0.5
    if off_road is not None:
        off = off | off_road
    clear = 0.5 + 0.5 * res.soft[:, Soft.TTC]
    t_c = t_first.clamp(max=HORIZON_SECONDS)
    early = torch.where(torch.isfinite(t_first), t_c / (2.0 * HORIZON_SECONDS), torch.full_like(t_c, 0.5))
    out = torch.where(collides, early, clear)
    return torch.where(off, torch.zeros_like(out), out) * res.finite[:, None]


def unsafety(res: ScoreResult, cfg: ScorerConfig) -> Tensor:
    """`[B, N]` in [0, 1]: the model's belief that a plan collides or leaves the road, scaled so that
    0.5 is exactly where the scorer's collision and drivable gates fail (accepted ⇔ < 0.5)."""
    obst = res.obstacle_risk * (0.5 / cfg.obstacle_threshold)
    agent = res.agent_risk * (0.5 / cfg.agent_threshold)
    off = 1.0 - res.gates[:, Gate.DRIVABLE]
    u = torch.maximum(torch.maximum(obst, agent), off).clamp(0.0, 1.0)
    return torch.where(res.finite[:, None], u, torch.ones_like(u))


def gated_probabilities(res: ScoreResult, pred: Prediction) -> dict[str, list[float] | float]:
    """The probabilities the planner's gates act on, for the first scene of a batch, keyed like the truth
    they predict (a scene record's `truth[key]`): `collision` `[N]` — per plan the larger of the obstacle
    risk under the ego footprint and the agents' expected collision probability; `light_red` — P(the
    light governing the route is red)."""
    collision = torch.maximum(res.obstacle_risk[0], res.agent_risk[0]).clamp(0.0, 1.0)
    return {
        "collision": [round(float(p), 5) for p in collision],
        "light_red": round(float(pred.light_probs[0, LightState.RED]), 5),
    }


def occupancy_counts(pred: Prediction, truth: Tensor, plans: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Intersection and union cell counts per horizon step `[T]` of the predicted obstacles (≥ 0.5) vs
    the true occupancy `truth [N, T, X, Y]` on the prediction's grid, cells under the ego footprint at
    plan k's pose at step t excluded from both."""
    n, t = truth.shape[:2]
    p = pred.obstacle_prob[0].expand(n, t, *truth.shape[2:]) >= 0.5
    ego = ego_boxes(plans[0])[:, :, None]  # [N, T, 1, 5]
    mask = rasterize_boxes(ego, torch.ones(n, 1, dtype=torch.bool), pred.grid) > 0
    tr = (truth > 0.5) & ~mask
    p = p & ~mask
    inter = (p & tr).sum((0, 2, 3)).numpy().astype(np.int64)
    union = (p | tr).sum((0, 2, 3)).numpy().astype(np.int64)
    return inter, union


def summarize(records: list[dict], rows: list[str], threshold: float) -> dict:
    """Per-model metrics over the scenes of a run (see the package docstring and `rank_per_scene`)."""
    true_score = np.array([r["truth"]["score"] for r in records], dtype=np.float64)
    true_dep = np.array([r["truth"]["dependent"] for r in records], dtype=np.float64)
    unsafe = np.array([r["truth"]["unsafe"] for r in records], dtype=bool)
    out: dict[str, dict] = {}
    for row in rows:
        m = [r["models"][row] for r in records]
        score = np.array([x["score"] for x in m], dtype=np.float64)
        dep = np.array([x["dependent"] for x in m], dtype=np.float64)
        uns = np.array([x["unsafety"] for x in m], dtype=np.float64)
        s = relevance_summary(score, true_score, uns, unsafe, threshold)
        s["kendall_tau"] = mean_ci(rank_per_scene(kendall_tau, score, true_score))
        s["spearman_rho"] = mean_ci(rank_per_scene(spearman_rho, score, true_score))
        s["dependent"] = {
            "kendall_tau": mean_ci(rank_per_scene(kendall_tau, dep, true_dep)),
            "spearman_rho": mean_ci(rank_per_scene(spearman_rho, dep, true_dep)),
        }
        inter = np.array([x["occ_intersection"] for x in m], dtype=np.float64)  # [S, T]
        union = np.array([x["occ_union"] for x in m], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.where(union.sum(1) > 0, inter.sum(1) / union.sum(1), np.nan)
            per_t = inter.sum(0) / union.sum(0)
        s["occupancy_iou"] = {
            "per_scene": mean_ci(per),
            "pooled": float(inter.sum() / union.sum()) if union.sum() > 0 else float("nan"),
            "per_horizon": [float(v) for v in per_t],
        }
        s["accepted_fraction"] = float((uns < threshold).mean())
        out[row] = s
    out["_truth"] = {
        "unsafe_fraction": float(unsafe.mean()),
        "collision_fraction": float(np.mean([r["truth"]["collision"] for r in records])),
        "off_road_fraction": float(np.mean([r["truth"]["off_road"] for r in records])),
        "constructed_unsafe_truly_unsafe": float(
            unsafe[np.array([r["constructed_unsafe"] for r in records], dtype=bool)].mean()
        ),
    }
    return out


__all__ = [
    "auroc",
    "dependent_score",
    "false_accept_rate",
    "gated_probabilities",
    "kendall_tau",
    "occupancy_counts",
    "per_scene",
    "rank_per_scene",
    "rankdata",
    "relevance_summary",
    "spearman_rho",
    "summarize",
    "top1_regret",
    "unsafety",
]
