"""Build agents and world models by name — one vocabulary for every command.

World models: `drivewm` (the learned model, needs a checkpoint), `drivewm-noplan` (the same model
with its plan pathway switched off in every rollout: the ablation), `cv` (constant velocity on the
learned model's detections, needs a checkpoint), `cv-gt` (constant velocity on privileged ground
truth), `empty` (an empty road), `oracle` (the lite simulator's true future under each plan,
privileged, needs the run's simulator handle). The one factory of the project: every command and
evaluation builds its world models here (several from one loaded checkpoint with `learned=`).
Agents: each world model behind a `DrivingAgent`, plus `autopilot` (the privileged rule-based
expert, `carla_bridge.closed_loop.agent.AutopilotAgent`).

`AgentSpec` is a picklable recipe (`spec()` builds the agent), so the closed-loop harness can ship it
to worker processes or Ray tasks. Unknown names → `ValueError` listing the known ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NO_PLAN = "drivewm-noplan"
"""The learned model with plan conditioning off (`rollout(..., plan_conditioning=False)`)."""

WORLD_MODELS: dict[str, str] = {
    "drivewm": "the learned world model (needs --ckpt)",
    NO_PLAN: "the learned world model with its plan pathway off: the ablation (needs --ckpt)",
    "cv": "constant velocity on the learned model's detections (needs --ckpt)",
    "cv-gt": "constant velocity on ground-truth agents (privileged)",
    "empty": "an empty, fully drivable road (the floor)",
    "oracle": "the lite simulator's true future under each plan (privileged, lite backend only)",
}
AGENTS: dict[str, str] = {**WORLD_MODELS, "autopilot": "the privileged rule-based expert (lite backend only)"}
PRIVILEGED = frozenset({"cv-gt", "oracle", "autopilot"})
NEEDS_CKPT = frozenset({"drivewm", NO_PLAN, "cv"})
NEEDS_IMAGES = frozenset({"drivewm", NO_PLAN, "cv"})


def _check_name(name: str, known: dict[str, str], what: str) -> None:
    if name not in known:
        listing = ", ".join(f"{k} ({v})" for k, v in known.items())
        raise ValueError(f"unknown {what} {name!r}; known: {listing}")


def _check_ckpt(name: str, ckpt: str | None) -> None:
    if name in NEEDS_CKPT and not ckpt:
        raise ValueError(f"{name!r} needs a trained checkpoint: pass --ckpt PATH")


def load_learned(ckpt: str, device: str = "cpu") -> Any:
    """The learned `DriveWorldModel` of a checkpoint (to share between several world models)."""
    from drivewm.model.checkpoint import load_world_model

    return load_world_model(ckpt, device)


def build_world_model(
    name: str,
    ckpt: str | None = None,
    device: str = "cpu",
    backend: Any = None,
    *,
    learned: Any = None,
    oracle_dt: float = 0.1,
    oracle_max_branch: int = 32,
) -> Any:
    """A `planner.WorldModel` by name (see the module docstring).

    Args:
        name: one of `WORLD_MODELS`.
        ckpt: checkpoint of the learned model (`drivewm`, `drivewm-noplan`, `cv`).
        device: torch device of the learned model.
        backend: the lite simulator handle (`oracle` only).
        learned: an already loaded learned model to use instead of loading `ckpt` (one model shared
            by the `drivewm`, `drivewm-noplan` and `cv` rows of an evaluation).
        oracle_dt: branch step of the oracle's simulation [s]; oracle_max_branch: branches per batch.
    """
    _check_name(name, WORLD_MODELS, "world model")
    if learned is None:
        _check_ckpt(name, ckpt)
    from planner.world_models import ConstantVelocityWorldModel, EmptyWorldModel

    if name == "empty":
        return EmptyWorldModel()
    if name == "cv-gt":
        return ConstantVelocityWorldModel("cv-gt")
    if name == "oracle":
        if backend is None:
            raise ValueError("the oracle needs the lite simulator handle of the run (backend=...)")
        from carla_bridge.closed_loop.agent import lite_world

        try:
            from carla_bridge.oracle import OracleWorldModel
        except ImportError as err:
            raise ValueError(f"the oracle world model is not available in this build ({err})") from None
        return OracleWorldModel(lite_world(backend), dt=oracle_dt, max_branch=oracle_max_branch)
    model = learned if learned is not None else load_learned(ckpt, device)  # type: ignore[arg-type]
    if name == "drivewm":
        return model
    if name == NO_PLAN:
        return NoPlanWorldModel(model)
    return ConstantVelocityWorldModel("cv", detector=_Detector(model))


class NoPlanWorldModel:
    """The learned model with its plan pathway switched off in every rollout (the ablation): the
    same weights, `rollout(scene, plans, plan_conditioning=False)`; the model itself is not changed."""

    name = NO_PLAN

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def config(self) -> Any:
        """The learned model's config (its camera input size)."""
        return self.model.config

    def encode(self, obs: Any, prev: Any = None) -> Any:
        return self.model.encode(obs, prev)

    def rollout(self, scene: Any, plans: Any) -> Any:
        return self.model.rollout(scene, plans, plan_conditioning=False)


class _Detector:
    """The learned model's agent estimates (`encode(obs).agents`) as a detector for `cv`."""

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def image_size(self) -> Any:
        """(h, w) camera input size of the learned model."""
        return self.model.config.image_size

    def __call__(self, obs: Any) -> Any:
        import torch

        with torch.no_grad():
            return self.model.encode(obs).agents


@dataclass(frozen=True)
class AgentSpec:
    """A picklable recipe for an agent (`spec()` → `Agent`).

    Attributes:
        name: one of `AGENTS`.
        ckpt: checkpoint for `drivewm` / `cv`.
        device: torch device of the learned model.
        replan_hz: replans per second (2–10) of a planning agent.
        camera_size: (width, height) of camera images [px].
    """

    name: str
    ckpt: str | None = None
    device: str = "cpu"
    replan_hz: float = 2.0
    camera_size: tuple[int, int] = (400, 225)

    def __post_init__(self) -> None:
        _check_name(self.name, AGENTS, "agent")
        _check_ckpt(self.name, self.ckpt)
        if not 2.0 <= float(self.replan_hz) <= 10.0:
            raise ValueError(f"replan_hz must lie in [2, 10] Hz, got {self.replan_hz}")

    @property
    def privileged(self) -> bool:
        return self.name in PRIVILEGED

    @property
    def needs_images(self) -> bool:
        return self.name in NEEDS_IMAGES

    def __call__(self) -> Any:
        return build_agent(self.name, self.ckpt, self.device, self.replan_hz, self.camera_size)


def build_agent(
    name: str,
    ckpt: str | None = None,
    device: str = "cpu",
    replan_hz: float = 2.0,
    camera_size: tuple[int, int] = (400, 225),
) -> Any:
    """An `Agent` by name (see the module docstring): a world model behind a `DrivingAgent`, or the autopilot."""
    _check_name(name, AGENTS, "agent")
    _check_ckpt(name, ckpt)
    if name == "autopilot":
        from carla_bridge.closed_loop.agent import AutopilotAgent

        return AutopilotAgent(camera_size=camera_size)
    from drivewm.driving_agent import DrivingAgent, DrivingAgentConfig

    cfg = DrivingAgentConfig(replan_hz=replan_hz, camera_size=tuple(camera_size), device=device)
    if name == "oracle":
        model: Any = _OracleBuilder()
    else:
        model = build_world_model(name, ckpt, device)
    return DrivingAgent(model, name=name, privileged=name in PRIVILEGED, needs_images=name in NEEDS_IMAGES, config=cfg)


class _OracleBuilder:
    """Builds the oracle at `setup`, when the run's simulator handle exists."""

    def __call__(self, context: Any) -> Any:
        return build_world_model("oracle", backend=context.backend)
