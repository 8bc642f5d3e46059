"""One replan step: proposals → one batched rollout → score → select or reject.

result = plan(world_model, obs)                      # deployed models
result = plan(cv_gt, obs, privileged=gt)             # privileged baselines (names end in -gt)
control = controller(result.selection.plan[0], speed)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from agents.se2 import se2_relative
from planner.contracts import (
    Observation,
    Prediction,
    PrivilegedState,
    PrivilegedWorldModel,
    SceneState,
    WorldModel,
)
from planner.proposals import ProposalConfig, Proposals, generate_proposals, previous_plan_proposals
from planner.scorer import ScorerConfig, ScoreResult, score_plans
from planner.selection import Selection, SelectionConfig, select_plan


@dataclass(frozen=True)
class PlannerConfig:
    """Settings of every stage."""

    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)


@dataclass(frozen=True)
class PlanResult:
    """Everything one replan step produced (the scene is the `prev` of the next step)."""

    selection: Selection
    scene: SceneState
    proposals: Proposals
    prediction: Prediction
    scores: ScoreResult


def plan(
    world_model: WorldModel,
    obs: Observation,
    prev: PlanResult | None = None,
    cfg: PlannerConfig | None = None,
    privileged: PrivilegedState | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Plan one step with any world model (see the module docstring); `prev` is the last step's result."""
    cfg = cfg or PlannerConfig()
    # 1. encode the observation (fusing the previous scene); only -gt baselines read privileged state
    prev_scene = prev.scene if prev is not None else None
    if privileged is not None:
        if not isinstance(world_model, PrivilegedWorldModel):
            raise ValueError(f"world model {world_model.name!r} does not read privileged state (no encode_privileged)")
        scene = world_model.encode_privileged(obs, privileged, prev_scene)
    else:
        scene = world_model.encode(obs, prev_scene)
    # 2. proposals: comfortable stop, route lattice, the model's own ego plans, the previous plan ± noise
    previous = None
    if prev is not None:
        prev_in_current = se2_relative(scene.ego_pose, prev.scene.ego_pose)
        elapsed = (scene.timestamp - prev.scene.timestamp).clamp_min(1e-3)
        previous = previous_plan_proposals(prev.selection.plan, prev_in_current, elapsed, cfg.proposals, generator)
    proposals = generate_proposals(
        scene.route, scene.route_valid, scene.speed, cfg.proposals, scene.ego_plans, previous
    )
    # 3. one batched rollout of all N plans
    prediction = world_model.rollout(scene, proposals.plans)
    # 4. score every plan in one vectorized pass
    scores = score_plans(proposals, prediction, scene.route, scene.route_valid, cfg.scorer)
    # 5. choose the best plan, or reject all and fall back (comfortable stop / emergency brake)
    selection = select_plan(proposals, scores, cfg.selection)
    return PlanResult(selection, scene, proposals, prediction, scores)
