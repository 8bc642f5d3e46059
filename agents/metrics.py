"""Forecast metrics as the nuScenes prediction challenge defines them: minADE_k, minFDE_k, miss rate.

Layered like the devkit (`nuscenes.eval.prediction.metrics`): per-mode distances
(`mode_distances`, the devkit's `mean_distances`/`final_distances`/`max_distances`) → a top-k
reduction over the modes ranked by probability (`rank_over_top_k`, the devkit's
`rank_metric_over_top_k_modes`) → aggregation over valid agents (`MaskedMetric.mean`, the devkit's
`RowMean`). Shapes: predictions `[B, A, K, T, 2]` (or `[..., K, T, 2|3]`; only x, y are used), mode
probabilities `[B, A, K]`, ground truth `[B, A, T, 2|3]`, valid `[B, A, T]`.

With full validity the numbers equal the devkit's. Partially observed futures (the devkit has no
mask) use only the valid steps: ADE averages the valid steps, FDE is taken at the last valid step,
the miss test uses the maximum over valid steps; an agent without any valid step is masked out.
A miss is `max distance >= threshold` for every one of the top-k modes (the devkit's `>=`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "MaskedMetric",
    "ModeDistances",
    "aggregate",
    "forecast_metrics",
    "min_ade_k",
    "min_fde_k",
    "miss_rate_k",
    "mode_distances",
    "rank_over_top_k",
]


@dataclass(frozen=True)
class MaskedMetric:
    """A per-agent metric with its mask.

    Attributes:
        value: `[B, A]` float values (meaningless where `valid` is False; 0 there).
        valid: `[B, A]` bool.
    """

    value: Tensor
    valid: Tensor

    def mean(self) -> float:
        """Mean over valid agents (the devkit's `RowMean`); NaN when no agent is valid."""
        n = int(self.valid.sum())
        return float(self.value[self.valid].double().sum() / n) if n else float("nan")


@dataclass(frozen=True)
class ModeDistances:
    """Per-mode distances to the ground truth, `[B, A, K]` each, and the agent mask `[B, A]`.

    Attributes:
        ade: mean displacement over the valid steps [m].
        fde: displacement at the last valid step [m].
        max: maximum displacement over the valid steps [m].
        valid: `[B, A]` True where the agent has at least one valid future step.
    """

    ade: Tensor
    fde: Tensor
    max: Tensor
    valid: Tensor


def _check(pred: Tensor, probs: Tensor | None, gt: Tensor, valid: Tensor) -> None:
    for name, t in (("pred", pred), ("gt", gt), ("valid", valid)) + ((("probs", probs),) if probs is not None else ()):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if pred.dim() < 3 or pred.shape[-1] not in (2, 3) or not pred.is_floating_point():
        raise ValueError(f"pred must be a float tensor [..., K, T, 2|3], got {tuple(pred.shape)} {pred.dtype}")
    lead, K, T = pred.shape[:-3], pred.shape[-3], pred.shape[-2]
    if gt.shape[:-1] != (*lead, T) or gt.shape[-1] not in (2, 3) or not gt.is_floating_point():
        raise ValueError(
            f"gt must be a float tensor {(*lead, T, 2)} matching pred {tuple(pred.shape)}, got {tuple(gt.shape)}"
        )
    if valid.dtype != torch.bool or valid.shape != (*lead, T):
        raise ValueError(f"valid must be a bool tensor {(*lead, T)}, got {tuple(valid.shape)} {valid.dtype}")
    if probs is not None:
        if probs.shape != (*lead, K) or not probs.is_floating_point():
            raise ValueError(f"probs must be a float tensor {(*lead, K)}, got {tuple(probs.shape)} {probs.dtype}")
        if not bool(torch.isfinite(probs).all()):
            raise ValueError("probs contains NaN or inf")
    if not bool(torch.isfinite(pred).all()):
        raise ValueError("pred contains NaN or inf")
    if not bool(torch.isfinite(gt).all()):
        raise ValueError("gt contains NaN or inf")


def mode_distances(pred: Tensor, gt: Tensor, valid: Tensor) -> ModeDistances:
    """Pairwise (mode vs ground truth) displacement statistics over the valid steps.

    Args:
        pred: `[B, A, K, T, 2|3]` predicted positions (x, y[, yaw]).
        gt: `[B, A, T, 2|3]` ground truth.
        valid: `[B, A, T]` bool.

    Returns:
        `ModeDistances` with `[B, A, K]` fields.
    """
    _check(pred, None, gt, valid)
    d = torch.linalg.vector_norm(pred[..., :2] - gt[..., None, :, :2], dim=-1)  # [B, A, K, T]
    m = valid[..., None, :]  # [B, A, 1, T]
    count = valid.sum(-1)  # [B, A]
    zero = torch.zeros((), dtype=d.dtype, device=d.device)
    ade = torch.where(m, d, zero).sum(-1) / count.clamp_min(1)[..., None]
    T = valid.shape[-1]
    steps = torch.arange(T, device=valid.device)
    last = torch.where(valid, steps, -1).amax(-1).clamp_min(0)  # [B, A] index of the last valid step
    fde = d.gather(-1, last[..., None, None].expand(*d.shape[:-1], 1)).squeeze(-1)
    dmax = torch.where(m, d, zero).amax(-1)
    return ModeDistances(ade=ade, fde=fde, max=dmax, valid=count > 0)


def rank_over_top_k(values: Tensor, probs: Tensor, k: int, reduce: str = "min") -> Tensor:
    """Reduce a per-mode metric over the `k` most probable modes.

    Args:
        values: `[..., K]` per-mode metric.
        probs: `[..., K]` mode probabilities (ties: the lower mode index ranks first).
        k: number of top modes (k > K uses all K, like the devkit pads with the last value).
        reduce: "min" or "max".

    Returns:
        `[...]` reduced metric.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if reduce not in ("min", "max"):
        raise ValueError(f"reduce must be 'min' or 'max', got {reduce!r}")
    if values.shape != probs.shape:
        raise ValueError(f"values {tuple(values.shape)} and probs {tuple(probs.shape)} must have the same shape")
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices[..., :k]  # [..., min(k, K)]
    top = values.gather(-1, order)
    return top.amin(-1) if reduce == "min" else top.amax(-1)


def min_ade_k(pred: Tensor, probs: Tensor, gt: Tensor, valid: Tensor, k: int) -> MaskedMetric:
    """minADE over the top-k modes per agent. Shapes as in the module docstring; returns `[B, A]`."""
    _check(pred, probs, gt, valid)
    md = mode_distances(pred, gt, valid)
    return _masked(rank_over_top_k(md.ade, probs, k), md.valid)


def min_fde_k(pred: Tensor, probs: Tensor, gt: Tensor, valid: Tensor, k: int) -> MaskedMetric:
    """minFDE over the top-k modes per agent (at the last valid step); returns `[B, A]`."""
    _check(pred, probs, gt, valid)
    md = mode_distances(pred, gt, valid)
    return _masked(rank_over_top_k(md.fde, probs, k), md.valid)


def miss_rate_k(pred: Tensor, probs: Tensor, gt: Tensor, valid: Tensor, k: int, threshold: float = 2.0) -> MaskedMetric:
    """Miss indicator per agent (1.0 = every top-k mode has max distance >= `threshold` [m]);
    its `mean()` is the miss rate. Returns `[B, A]`."""
    _check(pred, probs, gt, valid)
    md = mode_distances(pred, gt, valid)
    return _masked(_miss(md, probs, k, threshold), md.valid)


def _miss(md: ModeDistances, probs: Tensor, k: int, threshold: float) -> Tensor:
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold!r}")
    return rank_over_top_k((md.max >= threshold).to(md.max.dtype), probs, k, "min")


def _masked(value: Tensor, valid: Tensor) -> MaskedMetric:
    return MaskedMetric(value=torch.where(valid, value, torch.zeros_like(value)), valid=valid)


def forecast_metrics(
    pred: Tensor,
    probs: Tensor,
    gt: Tensor,
    valid: Tensor,
    ks: tuple[int, ...] = (1, 5),
    miss_threshold: float = 2.0,
) -> dict[str, MaskedMetric]:
    """All forecast metrics for several k at once (distances computed once).

    Returns:
        `{"minADE_{k}", "minFDE_{k}", "MR_{k}"}` → `MaskedMetric` `[B, A]` for each k in `ks`.
    """
    _check(pred, probs, gt, valid)
    md = mode_distances(pred, gt, valid)
    out: dict[str, MaskedMetric] = {}
    for k in ks:
        out[f"minADE_{k}"] = _masked(rank_over_top_k(md.ade, probs, k), md.valid)
        out[f"minFDE_{k}"] = _masked(rank_over_top_k(md.fde, probs, k), md.valid)
        out[f"MR_{k}"] = _masked(_miss(md, probs, k, miss_threshold), md.valid)
    return out


def aggregate(metrics: dict[str, MaskedMetric]) -> dict[str, float]:
    """Mean over valid agents of each metric (the devkit's `RowMean`), plus `num_agents`."""
    out = {name: m.mean() for name, m in metrics.items()}
    if metrics:
        out["num_agents"] = float(next(iter(metrics.values())).valid.sum())
    return out
