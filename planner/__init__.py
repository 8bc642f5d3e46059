"""planner: decision making, model-agnostic.

Owns the contract every world model meets (`WorldModel`, `Observation`, the frozen `SceneState`
and `Prediction`, the separate `PrivilegedState` and `PrivilegedWorldModel`), the one time base
(`planner.timebase`), ego-plan proposals, the vectorized plan scorer, selection with safe rejection
and fallback, the plan-tracking controller and reference world models (empty, constant velocity).
Evaluation metrics live in `drivewm.evaluation`. Depends on `agents/` and `occupancy/` only.
"""

from planner.contracts import (
    LightBelief,
    LightState,
    Observation,
    Prediction,
    PrivilegedState,
    PrivilegedWorldModel,
    SceneFeatures,
    SceneState,
    WorldModel,
    valid_route_points,
    validate_plans,
)
from planner.plan import PlannerConfig, PlanResult, plan
from planner.proposals import ProposalConfig, Proposals, ProposalSource, generate_proposals
from planner.scorer import Gate, LossReason, ScorerConfig, ScoreResult, Soft, score_plans
from planner.selection import Decision, RejectReason, Selection, SelectionConfig, select_plan
from planner.timebase import DENSE_DT, DENSE_PER_STEP, HISTORY_STEPS, HORIZON_SECONDS, HORIZON_STEPS, STEP_SECONDS
from planner.world_models import PLANNER_BEV_GRID, ConstantVelocityWorldModel, EmptyWorldModel

__all__ = [
    "DENSE_DT",
    "DENSE_PER_STEP",
    "HISTORY_STEPS",
    "HORIZON_SECONDS",
    "HORIZON_STEPS",
    "PLANNER_BEV_GRID",
    "STEP_SECONDS",
    "ConstantVelocityWorldModel",
    "Decision",
    "EmptyWorldModel",
    "Gate",
    "LightBelief",
    "LightState",
    "LossReason",
    "Observation",
    "PlanResult",
    "PlannerConfig",
    "Prediction",
    "PrivilegedState",
    "PrivilegedWorldModel",
    "ProposalConfig",
    "ProposalSource",
    "Proposals",
    "RejectReason",
    "SceneFeatures",
    "SceneState",
    "ScoreResult",
    "ScorerConfig",
    "Selection",
    "SelectionConfig",
    "Soft",
    "WorldModel",
    "generate_proposals",
    "plan",
    "score_plans",
    "select_plan",
    "valid_route_points",
    "validate_plans",
]
