"""`LiteBackend`: the embedded simulator behind the `Backend` protocol (one world, W = 1), with
privileged views kept apart from the `Observation` and cameras rendered only on request."""

from __future__ import annotations

import time as _time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents import Control
from carla_bridge.backend import Event, SimState
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.world import LiteWorld
from carla_bridge.observation import EgoHistory, make_observation
from carla_bridge.rules import RuleSet
from planner import Observation, PrivilegedState


def resolve_route(route: Any, town) -> Any:
    """A `RoutePlan` from a `RoutePlan`, a parsed `Route` (planned on `town`) or a `[P, 2]` polyline."""
    from carla_bridge.route_planner import RoutePlan, plan_route

    if isinstance(route, RoutePlan):
        return route
    if hasattr(route, "waypoints_world"):
        return plan_route(town, route.waypoints_world, getattr(route, "yaw", None))
    arr = np.asarray(route, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] in (2, 3) and len(arr) >= 2:
        return plan_route(town, arr[:, :2])
    raise ValueError(f"route must be a RoutePlan, a Route or a [P, 2] polyline, got {type(route).__name__}")


class LiteBackend:
    """The lite simulator as a `Backend`.

    Args:
        town: a `TownMap`, a town name or a path to a .xodr file.
        config: simulator settings.
        render: "none" (observations without images: `images` is `[1, 0, 3, 0, 0]`) or "cameras"
            (the camera rig renderer of `carla_bridge.sensors`, every `render_every` steps).
        render_every: steps between rendered frames (10 = 2 Hz, the default replan rate).
        image_size: (width, height) of rendered images.
    """

    def __init__(
        self,
        town: Any,
        config: LiteConfig | None = None,
        render: str = "none",
        render_every: int = 10,
        image_size: tuple[int, int] = (400, 225),
    ) -> None:
        from carla_bridge.maps import TownMap, load_town

        self.town = town if isinstance(town, TownMap) else load_town(town if not isinstance(town, Path) else str(town))
        if render not in ("none", "cameras"):
            raise ValueError(f"render must be 'none' or 'cameras', got {render!r}")
        self.config = config or LiteConfig()
        self.world = LiteWorld(self.town, self.config)
        self.render = render
        self.render_every = max(1, int(render_every))
        self.image_size = image_size
        self.history = EgoHistory()
        self.events: list[Event] = []
        self.steps = 0
        self.step_seconds = 0.0
        self._last_images: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.route_plan = None
        self._closed_scenarios: list[dict] = []

    # ------------------------------------------------------------------ Backend protocol
    def reset(self, route: Any, seed: int) -> Observation:
        self.route_plan = resolve_route(route, self.town)
        self.world.reset(self.route_plan, seed, scenarios=getattr(route, "scenarios", ()))
        self._closed_scenarios = []
        self.history.reset()
        self.events, self.steps, self.step_seconds = [], 0, 0.0
        self._last_images = None
        self.history.update(0.0, self.world.ego_pose()[0].double().numpy())
        return self.observation(render=self.render != "none")

    def step(self, control: Control, render: bool | None = None) -> tuple[Observation, list[Event]]:
        """Apply `control` for one step (dt); render cameras when `render` and rendering is on (None:
        every `render_every` steps)."""
        if not isinstance(control, Control):
            raise ValueError(f"control must be an agents.Control, got {type(control).__name__}")
        control.validate()
        t0 = _time.perf_counter()
        ev = self.world.step(torch.tensor([[control.throttle, control.steer, control.brake]], dtype=torch.float32))
        self.step_seconds += _time.perf_counter() - t0
        self.steps += 1
        self.events.extend(ev)
        self.history.update(self.world.time, self.world.ego_pose()[0].double().numpy())
        if render is None:
            render = self.steps % self.render_every == 0
        return self.observation(render=render and self.render != "none"), ev

    def snapshot(self) -> SimState:
        snap = self.world.snapshot()
        snap.meta.update(
            steps=self.steps,
            events=list(self.events),
            history=(list(self.history._times), [p.copy() for p in self.history._poses]),
        )
        return snap

    def restore(self, state: SimState) -> None:
        self.world.restore(state)
        self.steps = int(state.meta.get("steps", 0))
        self.events = list(state.meta.get("events", []))
        times, poses = state.meta.get("history", ([], []))
        self.history.reset()
        for t, p in zip(times, poses):
            self.history._times.append(t)
            self.history._poses.append(np.array(p))

    def close(self) -> None:
        if self.world.state is not None:
            self._closed_scenarios = self.scenario_summary()
        self.world.state = None

    # ------------------------------------------------------------------ views
    @property
    def done(self) -> bool:
        """The route ended (completed, blocked, deviated or timed out)."""
        return self.world.state is not None and bool(self.world.done[0])

    @property
    def rules(self) -> RuleSet:
        """The rule set the simulator's criteria judge by (`LiteConfig.rules`)."""
        return self.config.rules

    def finish(self) -> list[Event]:
        """End the route now: the criteria's final events (`LiteWorld.finish`; none once it ended)."""
        if self.world.state is None:
            return []
        ev = self.world.finish()
        self.events.extend(ev)
        return ev

    def observation(self, render: bool = False) -> Observation:
        """The current `Observation` (B = 1); images only when rendered (else the last frame, or none)."""
        w = self.world
        if render:
            self._last_images = self._render()
        if self._last_images is None:
            images = torch.zeros(0, 3, 0, 0, dtype=torch.uint8)
            intr = torch.zeros(0, 3, 3)
            c2e = torch.zeros(0, 4, 4)
        else:
            images, intr, c2e = self._last_images
        return make_observation(
            images=images,
            intrinsics=intr,
            cam_to_ego=c2e,
            history=self.history,
            pose=w.ego_pose()[0].double().numpy(),
            speed=float(w.ego_speed()[0]),
            route_xy=np.asarray(self.route_plan.polyline),
            time=w.time,
        )

    def privileged(self) -> PrivilegedState:
        """Ground truth for the autopilot/oracle/-gt baselines only (never part of the Observation)."""
        return self.world.privileged()

    def scenario_summary(self) -> list[dict]:
        """What became of each scenario of the route: the build record (built, or why not) and, for built
        ones, the phase reached and the verdicts (for results and reports; kept after `close`)."""
        if self.world.state is None:
            return list(self._closed_scenarios)
        views = {v.name: v for v in self.world.scenario_views(0)}
        out = []
        for rec in self.world.scenario_records:
            d = rec.to_dict()
            v = views.get(rec.name)
            if v is not None:
                d.update(phase=v.phase, timed_out=v.timed_out, yield_failed=v.yield_failed)
            out.append(d)
        return out

    def ground_truth(self) -> dict:
        return self.world.ground_truth(0)

    def render_scene(self):
        """`carla_bridge.sensors.RenderScene` of the current state (world 0)."""
        from carla_bridge.lite.render import render_scene

        return render_scene(self.world, 0)

    def _render(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from carla_bridge.lite.render import render_images

        return render_images(self.world, 0, self.image_size)
