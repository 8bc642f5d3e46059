"""`DrivingAgent`: a world model + the planner + the plan-tracking controller behind the closed-loop
`Agent` protocol (`carla_bridge.closed_loop.agent`).

Every `1 / replan_hz` seconds (2–10 Hz, default 2 Hz) it runs one planner step (`planner.plan.plan`:
encode → proposals → one batched rollout → score → select or reject) on an observation whose
cameras were rendered for that step only (`needs_cameras`), and stores the chosen plan in the world
frame. Every simulation step (0.05 s) it re-expresses that plan in the current ego frame, shifted by
the time elapsed since it was made, and tracks it (`planner.controller.PlanFollower`). A plan
the planner rejected is already its fallback (comfortable stop or emergency brake); a control that is
still non-finite (it cannot be, but nothing is trusted) becomes a full brake and is counted.

`stats()` reports replan latency percentiles, decisions and rejection reasons; `debug_view()` the last
candidate plans with their scores (for the report's videos).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents import Control
from carla_bridge.closed_loop.agent import SIM_DT, AgentDefaults, RunContext, default_sensors
from planner import Observation, PrivilegedState, WorldModel
from planner.controller import ControllerParams, PlanFollower
from planner.plan import PlannerConfig, PlanResult, plan
from planner.proposals import DENSE_DT
from planner.selection import Decision, RejectReason


@dataclass(frozen=True)
class DrivingAgentConfig:
    """Settings of the driving agent.

    Attributes:
        replan_hz: replans per second (2–10).
        planner: proposal / scorer / selection settings.
        controller: plan-tracking gains.
        camera_size: (width, height) of the camera images it asks for [px].
        device: torch device of the world model.
    """

    replan_hz: float = 2.0
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    controller: ControllerParams = field(default_factory=ControllerParams)
    camera_size: tuple[int, int] = (400, 225)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 2.0 <= float(self.replan_hz) <= 10.0:
            raise ValueError(f"replan_hz must lie in [2, 10] Hz, got {self.replan_hz}")


class DrivingAgent(AgentDefaults):
    """World model + planner + controller (see the module docstring).

    Args:
        world_model: a `planner.WorldModel`, or a callable `RunContext -> WorldModel` built at setup
            (the oracle needs the simulator handle of the run).
        name: the agent's name in results ("drivewm", "cv", "cv-gt", "empty", "oracle").
        privileged: the world model reads `PrivilegedState` (names ending in "-gt").
        needs_images: the world model reads camera images (cameras are rendered at replan steps).
        config: settings.
    """

    def __init__(
        self,
        world_model: WorldModel | Callable[[RunContext], WorldModel],
        name: str | None = None,
        privileged: bool = False,
        needs_images: bool = True,
        config: DrivingAgentConfig | None = None,
    ) -> None:
        self.config = config or DrivingAgentConfig()
        self._model_or_builder = world_model
        self.world_model: WorldModel | None = None if _is_builder(world_model) else world_model  # type: ignore[assignment]
        self.name = name or getattr(self.world_model, "name", "agent")
        self.privileged = bool(privileged)
        self.needs_images = bool(needs_images)
        self.follower = PlanFollower(self.config.controller, dt=SIM_DT)
        self.replan_hz = float(self.config.replan_hz)
        self._camera_size = tuple(self.config.camera_size)
        self._reset_run_state()
        self._latencies: list[float] = []
        self._decisions: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()
        self._messages: list[str] = []
        self._guards = 0
        self._steps = 0

    # ------------------------------------------------------------------ Agent protocol
    def setup(self, context: RunContext) -> None:
        self.replan_hz = float(context.replan_hz)
        if not 2.0 <= self.replan_hz <= 10.0:
            raise ValueError(f"replan_hz must lie in [2, 10] Hz, got {self.replan_hz}")
        self._camera_size = tuple(context.camera_size)
        if _is_builder(self._model_or_builder):
            self.world_model = self._model_or_builder(context)  # type: ignore[operator]
        self.follower.reset()
        self._reset_run_state()
        self._generator = torch.Generator().manual_seed(int(context.seed))
        self._latencies, self._decisions, self._reasons, self._messages = [], Counter(), Counter(), []
        self._guards = 0
        self._steps = 0

    def sensors(self) -> list[dict[str, Any]]:
        return default_sensors(self._camera_size)

    def needs_cameras(self, timestamp: float) -> bool:
        """Whether the observation at `timestamp` must carry fresh images (replan steps only)."""
        return self.needs_images and timestamp + 1e-6 >= self._next_replan

    def run_step(self, obs: Observation, timestamp: float, privileged: PrivilegedState | None) -> Control:
        if self.world_model is None:
            raise RuntimeError("DrivingAgent.run_step before setup")
        if self.privileged and privileged is None:
            raise ValueError(f"agent {self.name!r} reads ground truth but the runner passed no PrivilegedState")
        self._steps += 1
        if self.follower.plan_world is None or timestamp + 1e-6 >= self._next_replan:
            self._replan(obs, timestamp, privileged)
        return self._track(obs, timestamp)

    def destroy(self) -> None:
        self.follower.reset()
        self._reset_run_state()

    # ------------------------------------------------------------------ extras
    def stats(self) -> dict[str, Any]:
        """Replan latency percentiles [ms], decisions, rejection reasons, control guards."""
        lat = np.asarray(self._latencies, dtype=np.float64) * 1000.0
        pct = (
            {
                "mean": round(float(lat.mean()), 3),
                "p50": round(float(np.percentile(lat, 50)), 3),
                "p90": round(float(np.percentile(lat, 90)), 3),
                "p99": round(float(np.percentile(lat, 99)), 3),
                "max": round(float(lat.max()), 3),
            }
            if len(lat)
            else {}
        )
        return {
            "replan_hz": self.replan_hz,
            "replans": len(self._latencies),
            "steps": self._steps,
            "latency_ms": pct,
            "decisions": dict(self._decisions),
            "rejections": int(sum(self._reasons.values())),
            "rejection_reasons": dict(self._reasons),
            "fallbacks": int(
                self._decisions.get(Decision.COMFORTABLE_STOP.name, 0)
                + self._decisions.get(Decision.EMERGENCY_BRAKE.name, 0)
            ),
            "control_guards": self._guards,
            "last_messages": self._messages[-5:],
        }

    def debug_view(self) -> dict[str, Any] | None:
        """The last replan's candidate plans `[N, T, 3]` (ego frame at that replan), scores `[N]` and
        chosen index (-1: emergency brake)."""
        return self._debug

    # ------------------------------------------------------------------ internals
    def _reset_run_state(self) -> None:
        self._prev: PlanResult | None = None
        self._next_replan = 0.0
        self._debug: dict[str, Any] | None = None
        self._generator = torch.Generator().manual_seed(0)

    def _replan(self, obs: Observation, timestamp: float, privileged: PrivilegedState | None) -> None:
        dev = self.config.device
        t0 = time.perf_counter()
        obs = self._fit_images(obs)
        with torch.no_grad():
            res = plan(
                self.world_model,
                obs.to(dev) if dev != "cpu" else obs,
                self._prev,
                self.config.planner,
                privileged=privileged if self.privileged else None,
                generator=self._generator,
            )
        self._latencies.append(time.perf_counter() - t0)
        self._prev = res
        sel = res.selection
        self._decisions[Decision(int(sel.decision[0])).name] += 1
        reason = RejectReason(int(sel.reject_reason[0]))
        if reason != RejectReason.NONE:
            self._reasons[reason.name] += 1
            self._messages.append(f"t={timestamp:.2f}s: {sel.messages[0]}")
        dense = sel.dense[:1].detach().cpu()  # [1, D, 3] at DENSE_DT·(1..D) s, ego frame now
        self.follower.set_plans(obs.ego_pose[:1].detach().cpu(), dense, float(timestamp), DENSE_DT)
        period = 1.0 / self.replan_hz
        while self._next_replan <= timestamp + 1e-6:
            self._next_replan += period
        self._debug = {
            "plans": res.proposals.plans[0].detach().float().cpu().numpy(),
            "scores": res.scores.score[0].detach().float().cpu().numpy(),
            "best": int(sel.index[0]),
            "decision": Decision(int(sel.decision[0])).name,
        }

    def _fit_images(self, obs: Observation) -> Observation:
        """Resize the cameras to the learned model's input size (`config.image_size` (h, w), or its
        detector's `image_size`) exactly as the dataset does for training (PIL bilinear; intrinsics rows
        scaled by w'/w and h'/h)."""
        size = getattr(getattr(self.world_model, "config", None), "image_size", None)
        if size is None:  # e.g. `cv`: constant velocity on a learned detector's output
            size = getattr(getattr(self.world_model, "detector", None), "image_size", None)
        if size is None or obs.images.shape[1] == 0:
            return obs
        h, w = int(size[0]), int(size[1])
        src_h, src_w = obs.images.shape[-2:]
        if (src_h, src_w) == (h, w):
            return obs
        from PIL import Image

        imgs = obs.images[0].permute(0, 2, 3, 1).cpu().numpy()  # [V, h, w, 3]
        out = [np.asarray(Image.fromarray(im).resize((w, h), Image.BILINEAR)) for im in imgs]
        images = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()[None]
        k = obs.intrinsics.clone()
        k[..., 0, :] *= w / src_w
        k[..., 1, :] *= h / src_h
        return dataclasses.replace(obs, images=images, intrinsics=k)

    def _track(self, obs: Observation, timestamp: float) -> Control:
        try:
            control = self.follower.control(obs.ego_pose[0].detach().cpu(), float(obs.speed[0]), timestamp)
        except ValueError as err:
            self._guards += 1
            self._messages.append(f"t={timestamp:.2f}s: control guard ({err}) → full brake")
            return Control.emergency_brake()
        if not all(math.isfinite(v) for v in (control.throttle, control.steer, control.brake)):
            self._guards += 1
            return Control.emergency_brake()
        return control


def _is_builder(obj: Any) -> bool:
    """A world-model builder is a plain callable without `encode`/`rollout`."""
    return callable(obj) and not (hasattr(obj, "encode") and hasattr(obj, "rollout"))


__all__ = ["DrivingAgent", "DrivingAgentConfig"]
