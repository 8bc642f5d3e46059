"""Choose the best plan, or reject all and fall back safely.

A scene is rejected when its prediction is non-finite, no plan passes every hard gate, or the world
model failed (raised, or returned NaN/inf: `reject_for_model_error`). The fallback is the
comfortable stop (proposal 0), or a straight emergency brake when a collision is imminent: the
comfortable stop itself collides within `imminent_seconds` under the prediction. A non-finite
prediction or a failed model cannot tell whether a collision is imminent, so it falls back to the
comfortable stop. Every rejection is logged with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum

import torch
from torch import Tensor

from planner.proposals import Proposals, coarse_from_dense, emergency_brake
from planner.scorer import Gate, ScoreResult

log = logging.getLogger(__name__)


class Decision(IntEnum):
    """What the planner executes (`Selection.decision`)."""

    PLAN = 0
    COMFORTABLE_STOP = 1
    EMERGENCY_BRAKE = 2


class RejectReason(IntEnum):
    """Why a scene's plans were all rejected (`Selection.reject_reason`)."""

    NONE = 0
    NON_FINITE_PREDICTION = 1
    NO_PLAN_PASSES_GATES = 2
    MODEL_ERROR = 3  # the world model raised or returned NaN/inf: nothing it said is used


@dataclass(frozen=True)
class SelectionConfig:
    """Attributes:
    imminent_seconds: a collision of the comfortable stop within this time triggers the emergency brake [s].
    emergency_decel: deceleration of the emergency brake [m/s²].
    """

    imminent_seconds: float = 1.5
    emergency_decel: float = 8.0


@dataclass(frozen=True)
class Selection:
    """The planner's decision per scene.

    Attributes:
        plan: `[B, T, 3]` the plan to execute (the chosen proposal or the fallback).
        dense: `[B, D, 3]` the same at 0.1 s.
        index: `[B]` int64 chosen proposal (-1 for the emergency brake; 0 = the comfortable stop).
        decision: `[B]` int64 `Decision`.
        reject_reason: `[B]` int64 `RejectReason` (`NONE` when a plan was chosen).
        messages: per scene a human-readable reason ("" when a plan was chosen).
    """

    plan: Tensor
    dense: Tensor
    index: Tensor
    decision: Tensor
    reject_reason: Tensor
    messages: list[str]

    @property
    def rejected(self) -> Tensor:
        """`[B]` bool."""
        return self.reject_reason != RejectReason.NONE


def select_plan(proposals: Proposals, scores: ScoreResult, cfg: SelectionConfig | None = None) -> Selection:
    """Pick `scores.best` per scene, or reject and fall back (see the module docstring)."""
    cfg = cfg or SelectionConfig()
    b, n = scores.score.shape
    if proposals.plans.shape[:2] != (b, n):
        raise ValueError(f"proposals have {list(proposals.plans.shape[:2])} plans, scores {[b, n]}")
    dev = scores.score.device
    rows = torch.arange(b, device=dev)
    passes = scores.passes
    ok = scores.finite & passes[rows, scores.best]
    stop = proposals.stop_index()
    imminent = scores.finite & (scores.collision_time[rows, stop] <= cfg.imminent_seconds)
    brake = emergency_brake(proposals.speed0, cfg.emergency_decel, proposals.plans.shape[2])  # [B, D, 3]
    dense = proposals.dense[rows, scores.best].clone()
    index = scores.best.clone()
    decision = torch.full((b,), int(Decision.PLAN), dtype=torch.int64, device=dev)
    reason = torch.full((b,), int(RejectReason.NONE), dtype=torch.int64, device=dev)
    messages = []
    for i in range(b):
        if bool(ok[i]):
            messages.append("")
            continue
        if not bool(scores.finite[i]):
            reason[i] = RejectReason.NON_FINITE_PREDICTION
            msg = "prediction is non-finite"
        else:
            reason[i] = RejectReason.NO_PLAN_PASSES_GATES
            failed = {g.name: int((scores.gates[i, g] < 0.5).sum()) for g in Gate}
            msg = f"no plan passes the gates (plans failing each gate: {failed})"
        if bool(imminent[i]):
            decision[i], index[i], dense[i] = Decision.EMERGENCY_BRAKE, -1, brake[i]
            msg += f"; collision imminent at {float(scores.collision_time[i, stop[i]]):.1f} s → emergency brake"
        else:
            decision[i], index[i], dense[i] = Decision.COMFORTABLE_STOP, stop[i], proposals.dense[i, stop[i]]
            msg += " → comfortable stop"
        log.warning("planner rejected all %d plans of scene %d: %s", n, i, msg)
        messages.append(msg)
    return Selection(coarse_from_dense(dense), dense, index, decision, reason, messages)


def reject_for_model_error(proposals: Proposals, error: str) -> Selection:
    """Every scene rejected because the world model failed (`error` says how): the
    comfortable stop (proposal 0) of each scene, reason `MODEL_ERROR`, the error in the message."""
    b = proposals.plans.shape[0]
    dev = proposals.plans.device
    stop = proposals.stop_index()
    rows = torch.arange(b, device=dev)
    dense = proposals.dense[rows, stop]
    msg = f"world model failed ({error}) → comfortable stop"
    log.warning("planner rejected all %d plans: %s", proposals.plans.shape[1], msg)
    return Selection(
        plan=coarse_from_dense(dense),
        dense=dense,
        index=stop.clone(),
        decision=torch.full((b,), int(Decision.COMFORTABLE_STOP), dtype=torch.int64, device=dev),
        reject_reason=torch.full((b,), int(RejectReason.MODEL_ERROR), dtype=torch.int64, device=dev),
        messages=[msg] * b,
    )
