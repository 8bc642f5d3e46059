"""planner: decision making, model-agnostic.

Owns the contract every world model meets (`WorldModel`, `Observation`, `SceneState`,
`Prediction`, and the separate `PrivilegedState`), ego-plan proposals, the vectorized plan scorer,
selection with safe rejection and fallback, the plan-tracking controller, open-loop planning
metrics and reference world models (empty, constant velocity). Depends on `agents/` and
`occupancy/` only.
"""

from planner.contracts import (
    HISTORY_STEPS,
    HORIZON_STEPS,
    STEP_SECONDS,
    LightState,
    Observation,
    Prediction,
    PrivilegedState,
    SceneState,
    WorldModel,
    validate_plans,
)
from planner.plan import PlannerConfig, PlanResult, plan
from planner.proposals import ProposalConfig, Proposals, ProposalSource, generate_proposals
from planner.scorer import Gate, LossReason, ScorerConfig, ScoreResult, Soft, score_plans
from planner.selection import Decision, RejectReason, Selection, SelectionConfig, select_plan
from planner.world_models import PLANNER_BEV_GRID, ConstantVelocityWorldModel, EmptyWorldModel

__all__ = [
    "HISTORY_STEPS",
    "HORIZON_STEPS",
    "PLANNER_BEV_GRID",
    "STEP_SECONDS",
    "ConstantVelocityWorldModel",
    "Decision",
    "EmptyWorldModel",
    "Gate",
    "LightState",
    "LossReason",
    "Observation",
    "PlanResult",
    "PlannerConfig",
    "Prediction",
    "PrivilegedState",
    "ProposalConfig",
    "ProposalSource",
    "Proposals",
    "RejectReason",
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
    "validate_plans",
]
