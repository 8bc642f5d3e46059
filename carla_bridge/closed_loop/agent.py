"""The `Agent` protocol the closed-loop runner drives — the CARLA leaderboard's contract — and the
privileged reference agents that live in `carla_bridge/` (the autopilot).

Contract (as `leaderboard.autoagents.autonomous_agent.AutonomousAgent`):

- `setup(context)` once per route, before the simulator resets;
- `sensors() -> list[dict]` the sensor suite in the leaderboard format (`carla_bridge.live.mount.sensor_specs`);
- `run_step(obs, timestamp, privileged) -> Control` every simulation step (0.05 s);
- `destroy()` after the route, also after a failure.

`privileged` (class attribute) says whether the runner must pass the backend's `PrivilegedState`
(autopilot, oracle, `-gt` baselines — their names say so); every other agent receives `None`.
The runner also calls `needs_cameras(timestamp) -> bool` (whether the observation at `timestamp` must
carry fresh camera images; forwarded to the backend's `step`), `stats() -> dict` (planner latency,
rejections, fallbacks) and `debug_view() -> dict | None` (last candidate plans and scores, for
videos). `AgentDefaults` gives an agent the usual answers (always cameras, no stats, no view).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agents import Control
from carla_bridge.live.mount import sensor_specs
from carla_bridge.sensors.rig import CameraRig
from planner import Observation, PrivilegedState

SIM_DT = 0.05
"""Simulation step [s] (20 Hz, as the leaderboard)."""

_SENSOR_KEYS = ("type", "id", "x", "y", "z", "roll", "pitch", "yaw")


@dataclass
class RunContext:
    """Everything an agent may know about the run before it starts.

    Attributes:
        route: the `carla_bridge.routes.Route` being driven (possibly cut to its first metres).
        route_xy: `[P, 2]` world-frame route polyline (≈1 m spacing) the agent follows.
        town: the `TownMap` of the route's town (None for a live server without a vendored map).
        backend: the simulator handle — only privileged agents (autopilot, oracle) may use it.
        seed: the run's seed (agents seed their own randomness from it).
        replan_hz: how often a planning agent replans [Hz] (2–10).
        dt: simulation step [s].
        camera_size: (width, height) of the camera images [px].
        extras: anything else (free-form, e.g. the output folder).
    """

    route: Any
    route_xy: np.ndarray
    town: Any = None
    backend: Any = None
    seed: int = 0
    replan_hz: float = 2.0
    dt: float = SIM_DT
    camera_size: tuple[int, int] = (400, 225)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xy = np.asarray(self.route_xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 2 or not np.isfinite(xy).all():
            raise ValueError(f"RunContext.route_xy must be a finite [P>=2, 2] polyline, got shape {list(xy.shape)}")
        self.route_xy = xy
        if not 2.0 <= float(self.replan_hz) <= 10.0:
            raise ValueError(f"RunContext.replan_hz must lie in [2, 10] Hz, got {self.replan_hz}")
        if not self.dt > 0:
            raise ValueError(f"RunContext.dt must be positive, got {self.dt}")


@runtime_checkable
class Agent(Protocol):
    """What the closed-loop runner drives (see the module docstring)."""

    name: str
    privileged: bool

    def setup(self, context: RunContext) -> None: ...

    def sensors(self) -> list[dict[str, Any]]: ...

    def run_step(self, obs: Observation, timestamp: float, privileged: PrivilegedState | None) -> Control: ...

    def destroy(self) -> None: ...

    def needs_cameras(self, timestamp: float) -> bool: ...

    def stats(self) -> dict[str, Any]: ...

    def debug_view(self) -> dict[str, Any] | None: ...


class AgentDefaults:
    """Default answers of the `Agent` extras (mix in and override what differs)."""

    def needs_cameras(self, timestamp: float) -> bool:
        """Every observation carries fresh camera images."""
        return True

    def stats(self) -> dict[str, Any]:
        return {}

    def debug_view(self) -> dict[str, Any] | None:
        return None


def default_sensors(camera_size: tuple[int, int] = (400, 225)) -> list[dict[str, Any]]:
    """The nuScenes rig (six cameras + LIDAR_TOP) in the leaderboard's sensor format."""
    w, h = camera_size
    return sensor_specs(CameraRig.nuscenes(int(w), int(h)))


def validate_sensors(specs: Any) -> list[dict[str, Any]]:
    """Check a leaderboard-format sensor list; `ValueError` naming the sensor and field otherwise."""
    if not isinstance(specs, list):
        raise ValueError(f"sensors() must return a list of dicts, got {type(specs).__name__}")
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise ValueError(f"sensor {i} must be a dict, got {type(spec).__name__}")
        for key in _SENSOR_KEYS:
            if key not in spec:
                raise ValueError(f"sensor {spec.get('id', i)!r} lacks the field {key!r}")
        for key in _SENSOR_KEYS[2:]:
            v = spec[key]
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"sensor {spec['id']!r} field {key!r} must be a finite number, got {v!r}")
        if not str(spec["type"]).startswith("sensor."):
            raise ValueError(f"sensor {spec['id']!r} has an unknown type {spec['type']!r}")
        if spec["type"].startswith("sensor.camera"):
            for key in ("width", "height", "fov"):
                v = spec.get(key)
                if not isinstance(v, (int, float)) or not v > 0:
                    raise ValueError(f"camera {spec['id']!r} field {key!r} must be positive, got {v!r}")
        if spec["id"] in seen:
            raise ValueError(f"sensor id {spec['id']!r} is used twice")
        seen.add(spec["id"])
    return specs


def check_control(control: Any) -> Control:
    """The control if it is a finite, in-range `Control`; `ValueError` saying what is wrong otherwise
    (the runner never sends such a control)."""
    if not isinstance(control, Control):
        raise ValueError(f"run_step must return agents.Control, got {type(control).__name__}")
    return control.validate()


def lite_world(backend: Any) -> Any:
    """The `LiteWorld` behind a lite backend handle (privileged agents only); `ValueError` otherwise."""
    from carla_bridge.lite.world import LiteWorld

    if isinstance(backend, LiteWorld):
        return backend
    world = getattr(backend, "world", None)
    if isinstance(world, LiteWorld):
        return world
    raise ValueError(
        f"this agent needs the lite backend's simulator state; got {type(backend).__name__} "
        "(use --backend lite, or the leaderboard's own autopilot on a CARLA server)"
    )


class AutopilotAgent(AgentDefaults):
    """The privileged rule-based expert (`carla_bridge.autopilot.Autopilot`) behind the `Agent`
    protocol. It reads the lite simulator's full state (route, agents, lights, signs), so it needs a
    lite backend; on a live server use CARLA's own Traffic-Manager autopilot instead."""

    privileged = True

    def __init__(self, blind: bool = False, camera_size: tuple[int, int] = (400, 225)) -> None:
        from carla_bridge.autopilot import Autopilot, AutopilotParams

        self.autopilot = Autopilot(AutopilotParams(blind=blind))
        self.name = self.autopilot.name
        self.camera_size = camera_size
        self._backend: Any = None
        self._steps = 0

    def setup(self, context: RunContext) -> None:
        if context.backend is None:
            raise ValueError("the autopilot needs the lite backend handle (RunContext.backend is None)")
        self._backend = context.backend
        self.camera_size = context.camera_size
        self.autopilot.reset()
        self._steps = 0

    def sensors(self) -> list[dict[str, Any]]:
        return default_sensors(self.camera_size)

    def needs_cameras(self, timestamp: float) -> bool:
        """The autopilot reads the simulator state, never the cameras."""
        return False

    def run_step(self, obs: Observation, timestamp: float, privileged: PrivilegedState | None) -> Control:
        if self._backend is None:
            raise RuntimeError("AutopilotAgent.run_step before setup")
        self._steps += 1
        return self.autopilot.control(lite_world(self._backend))

    def stats(self) -> dict[str, Any]:
        return {"steps": self._steps}

    def destroy(self) -> None:
        self._backend = None
