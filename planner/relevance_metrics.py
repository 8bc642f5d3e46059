"""Action-relevance metrics (DESIGN.md §7): does a world model's scoring rank and reject candidate
plans like the simulated truth does?

Pure numpy functions over `[S, N]` arrays (S scenes, N plans): rank correlations per scene (Kendall
τ-b, Spearman ρ) with a Student-t confidence interval over scenes, top-1 regret, AUROC of unsafe-plan
detection and the false-accept rate at an operating threshold.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


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


def mean_ci(values: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Mean over scenes with a Student-t confidence interval; NaN values (undefined scenes) are left
    out and counted. Returns `{"mean", "lo", "hi", "n", "n_undefined"}`."""
    v = np.asarray(values, dtype=np.float64)
    ok = v[~np.isnan(v)]
    out = {"n": len(ok), "n_undefined": int(len(v) - len(ok))}
    if len(ok) == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, **out}
    mean = float(ok.mean())
    if len(ok) == 1:
        return {"mean": mean, "lo": math.nan, "hi": math.nan, **out}
    half = float(stats.t.ppf(0.5 + level / 2, len(ok) - 1) * ok.std(ddof=1) / math.sqrt(len(ok)))
    return {"mean": mean, "lo": mean - half, "hi": mean + half, **out}


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
