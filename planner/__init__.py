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

__all__ = [
    "HISTORY_STEPS",
    "HORIZON_STEPS",
    "STEP_SECONDS",
    "LightState",
    "Observation",
    "Prediction",
    "PrivilegedState",
    "SceneState",
    "WorldModel",
    "validate_plans",
]
