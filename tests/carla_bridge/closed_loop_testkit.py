"""Shared pieces of the closed-loop tests: a cheap real lite backend, the devtest routes and agents
that misbehave on purpose (module level, so they pickle into worker processes)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from agents import Control
from carla_bridge.closed_loop.agent import AgentDefaults, AutopilotAgent, default_sensors
from carla_bridge.closed_loop.backend_spec import BackendSpec
from carla_bridge.routes import parse_routes

FAST_BACKEND = BackendSpec(
    num_vehicles=2, num_pedestrians=0, num_parked=0, num_props=0, render=False, camera_size=(32, 18)
)
"""The real lite simulator with almost no traffic and no cameras (fast)."""


def devtest_route(route_id: str = "0"):
    return next(r for r in parse_routes("routes_devtest") if r.id == route_id)


class ScriptedAgent(AgentDefaults):
    """Drives forward gently; subclasses misbehave at step `bad_step`."""

    name = "scripted"
    privileged = False

    def __init__(self, bad_step: int = 5) -> None:
        self.bad_step = bad_step
        self.steps = 0
        self.destroyed = 0
        self.set_up = 0

    def setup(self, context) -> None:
        self.set_up += 1
        self.steps = 0

    def sensors(self):
        return default_sensors((32, 18))

    def run_step(self, obs, timestamp, privileged) -> Control:
        self.steps += 1
        if self.steps >= self.bad_step:
            return self.misbehave()
        return Control(throttle=0.3, steer=0.0, brake=0.0)

    def misbehave(self) -> Control:
        return Control(throttle=0.3)

    def destroy(self) -> None:
        self.destroyed += 1


class RaisingAgent(ScriptedAgent):
    name = "raising"

    def misbehave(self) -> Control:
        raise RuntimeError("planner exploded on purpose")


class HangingAgent(ScriptedAgent):
    name = "hanging"

    def misbehave(self) -> Control:
        while True:
            time.sleep(0.01)


class NanAgent(ScriptedAgent):
    name = "nan"

    def misbehave(self) -> Control:
        return Control(throttle=float("nan"), steer=0.0, brake=0.0)


class OutOfRangeAgent(ScriptedAgent):
    name = "out-of-range"

    def misbehave(self) -> Control:
        return Control(throttle=0.5, steer=1.7, brake=0.0)


class BadSensorsAgent(ScriptedAgent):
    name = "bad-sensors"

    def sensors(self):
        specs = default_sensors((32, 18))
        specs[1]["id"] = specs[0]["id"]
        return specs


class SetupFailAgent(ScriptedAgent):
    name = "setup-fail"

    def setup(self, context) -> None:
        raise FileNotFoundError("weights.ckpt is missing on purpose")


@dataclass
class CountingBackendFactory:
    """Wraps a backend factory and keeps every control that reached a backend."""

    inner: BackendSpec = FAST_BACKEND
    controls: list = field(default_factory=list)
    backends: list = field(default_factory=list)

    def __call__(self, town: str):
        backend = self.inner(town)
        original = backend.step
        sent = self.controls

        def step(control, render=None):
            sent.append(control)
            return original(control, render=render)

        backend.step = step
        self.backends.append(backend)
        return backend


@dataclass(frozen=True)
class AutopilotFactory:
    """Picklable agent factory for worker processes."""

    def __call__(self):
        return AutopilotAgent()
