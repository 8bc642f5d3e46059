"""One replan step: proposals → one batched rollout → score → select or reject.

result = plan(world_model, obs)                      # deployed models
result = plan(cv_gt, obs, privileged=gt)             # privileged baselines (names end in -gt)
control = controller(result.selection.plan[0], speed)

The inputs are checked first (`Observation.validate`: a bad observation is the caller's error, a
`ValueError` naming the field). The world model is then trusted with nothing: any exception from
`encode` or `rollout`, or a scene state with NaN/inf in it, is a recorded rejection
(`RejectReason.MODEL_ERROR`, the message names the stage and the error) and a comfortable stop on the
route, never an exception out of `plan()`. The failed step's scene is built from the observation alone
(no latent), so the next step starts afresh rather than fusing a broken state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from agents import AgentStates
from agents.se2 import se2_relative
from occupancy import GridSpec
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
from planner.selection import Selection, SelectionConfig, reject_for_model_error, select_plan

_UNKNOWN_GRID = GridSpec((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0), (2.0, 2.0, 2.0))
"""The one-cell grid of the unknown prediction that stands in for a model that failed."""


@dataclass(frozen=True)
class PlannerConfig:
    """Settings of every stage."""

    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)


@dataclass(frozen=True)
class PlanResult:
    """Everything one replan step produced (the scene is the `prev` of the next step).

    `model_error` is None when the world model worked, else what failed ("encode: RuntimeError: …");
    then `prediction` is the unknown (all-NaN) prediction and the selection a comfortable stop."""

    selection: Selection
    scene: SceneState
    proposals: Proposals
    prediction: Prediction
    scores: ScoreResult
    model_error: str | None = None


def _non_finite_part(scene: SceneState) -> str | None:
    """The first field of `scene` the planner reads that holds NaN/inf (None: all finite)."""
    parts: dict[str, Tensor | None] = {
        "SceneState.speed": scene.speed,
        "SceneState.ego_pose": scene.ego_pose,
        "SceneState.route": scene.route,
        "SceneState.latent": scene.latent,
        "SceneState.ego_plans": scene.ego_plans,
        "SceneState.agents.xy": scene.agents.xy,
        "SceneState.agents.velocity": scene.agents.velocity,
    }
    if scene.light is not None:
        parts["SceneState.light.probs"] = scene.light.probs
    for name, t in parts.items():
        if t is not None and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


def unknown_prediction(b: int, n: int, t: int, device: torch.device | str = "cpu") -> Prediction:
    """A prediction that knows nothing (every value NaN), `[B, N, T]` on a one-cell grid: what a world
    model that failed predicted. The scorer rejects it like any non-finite prediction."""
    nan = float("nan")
    nx, ny = _UNKNOWN_GRID.bev_shape
    return Prediction(
        grid=_UNKNOWN_GRID,
        obstacle_prob=torch.full((b, 1, t, nx, ny), nan, device=device).expand(b, n, t, nx, ny),
        drivable_prob=torch.full((b, nx, ny), nan, device=device),
        light_probs=torch.full((b, 3), nan, device=device),
        light_distance=torch.full((b,), float("inf"), device=device),
        agent_trajs=torch.zeros(b, n, 0, 1, t, 3, device=device),
        agent_mode_probs=torch.zeros(b, n, 0, 1, device=device),
        agent_valid=torch.zeros(b, 0, dtype=torch.bool, device=device),
        agent_size=torch.zeros(b, 0, 3, device=device),
        agent_cls=torch.zeros(b, 0, dtype=torch.int64, device=device),
    )


def _describe(stage: str, err: BaseException) -> str:
    text = " ".join(str(err).split())[:300]
    return f"{stage}: {type(err).__name__}: {text}" if text else f"{stage}: {type(err).__name__}"


def _encode(
    world_model: WorldModel, obs: Observation, prev_scene: SceneState | None, privileged: PrivilegedState | None
) -> tuple[SceneState, str | None]:
    """The model's scene state, or the observation-only scene and what went wrong."""
    try:
        if privileged is not None:
            scene = world_model.encode_privileged(obs, privileged, prev_scene)  # type: ignore[attr-defined]
        else:
            scene = world_model.encode(obs, prev_scene)
        if not isinstance(scene, SceneState):
            raise TypeError(f"encode returned {type(scene).__name__}, not a SceneState")
        scene.validate()
        bad = _non_finite_part(scene)
        if bad is None:
            return scene, None
        error = f"encode: {bad} contains NaN or inf"
    except Exception as err:  # the model is trusted with nothing: any failure is a rejection
        error = _describe("encode", err)
    b = obs.batch_size
    return SceneState.from_observation(obs, AgentStates.empty((b,), device=obs.speed.device)), error


def plan(
    world_model: WorldModel,
    obs: Observation,
    prev: PlanResult | None = None,
    cfg: PlannerConfig | None = None,
    privileged: PrivilegedState | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Plan one step with any world model (see the module docstring); `prev` is the last step's result.

    Raises:
        ValueError: a bad observation or privileged state (naming the field), or privileged state for
            a world model that does not read it. Never for anything the world model does.
    """
    cfg = cfg or PlannerConfig()
    obs.validate()
    if privileged is not None:
        if not isinstance(world_model, PrivilegedWorldModel):
            raise ValueError(f"world model {world_model.name!r} does not read privileged state (no encode_privileged)")
        privileged.validate()
    # 1. encode the observation (fusing the previous scene); only -gt baselines read privileged state
    prev_scene = prev.scene if prev is not None else None
    scene, error = _encode(world_model, obs, prev_scene, privileged)
    # 2. proposals: comfortable stop, route lattice, the model's own ego plans, the previous plan ± noise
    previous = None
    if prev is not None:
        prev_in_current = se2_relative(scene.ego_pose, prev.scene.ego_pose)
        elapsed = (scene.timestamp - prev.scene.timestamp).clamp_min(1e-3)
        previous = previous_plan_proposals(prev.selection.plan, prev_in_current, elapsed, cfg.proposals, generator)
    try:
        proposals = generate_proposals(
            scene.route, scene.route_valid, scene.speed, cfg.proposals, scene.ego_plans, previous
        )
    except ValueError as err:  # the model's own ego plans do not fit (the observation's route was checked)
        if scene.ego_plans is None:
            raise
        error = error or _describe("encode (SceneState.ego_plans)", err)
        proposals = generate_proposals(scene.route, scene.route_valid, scene.speed, cfg.proposals, None, previous)
    # 3. one batched rollout of all N plans
    b, n, t = proposals.plans.shape[:3]
    prediction = None
    if error is None:
        try:
            prediction = world_model.rollout(scene, proposals.plans)
            if not isinstance(prediction, Prediction):
                raise TypeError(f"rollout returned {type(prediction).__name__}, not a Prediction")
            prediction.validate(finite=False)
            pb, pn, pt = prediction.obstacle_prob.shape[:3]
            if pb != b or pn not in (1, n) or pt != t:
                raise ValueError(f"Prediction has batch/plans/steps {[pb, pn, pt]}, the plans are {[b, n, t]}")
        except Exception as err:
            error, prediction = _describe("rollout", err), None
    if prediction is None:
        prediction = unknown_prediction(b, n, t, proposals.plans.device)
    # 4. score every plan in one vectorized pass (a non-finite prediction scores 0 everywhere)
    scores = score_plans(proposals, prediction, scene.route, scene.route_valid, cfg.scorer)
    # 5. choose the best plan, or reject all and fall back (comfortable stop / emergency brake)
    if error is None:
        selection = select_plan(proposals, scores, cfg.selection)
    else:
        selection = reject_for_model_error(proposals, f"{getattr(world_model, 'name', '?')} {error}")
    return PlanResult(selection, scene, proposals, prediction, scores, error)


__all__ = ["PlanResult", "PlannerConfig", "plan", "unknown_prediction"]
