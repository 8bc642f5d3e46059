"""The closed-loop run: its frozen protocol (`configs/closed-loop-v1.json`) and run options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivewm.evaluation.common.config import ProtocolConfig

DEFAULT_PROTOCOL = "closed-loop-v1"


@dataclass(frozen=True)
class ClosedLoopConfig(ProtocolConfig):
    """One agent's closed-loop run (written beside its records as `config_<agent>.json`). Build it with
    `ClosedLoopConfig.from_protocol("closed-loop-v1", agent=..., routes=...)`.

    Protocol fields (frozen in `configs/<protocol>.json`):
        num_vehicles, num_pedestrians, num_parked, num_props: lite background traffic.
        replan_hz: replan rate of planning agents [Hz].
        camera_size: (width, height) of the rendered cameras [px].
        max_route_length: drive only each route's first metres (None: whole routes) [m].
        max_sim_seconds: simulated-time cap per route (None: the leaderboard's route timeout) [s].

    Run options:
        agent: agent name (`drivewm.factory.AGENTS`); ckpt: its checkpoint; device: torch device.
        routes: leaderboard route file (path or vendored name); route_ids: comma-separated ids (None: all).
        seeds: simulator seeds, each route runs once per seed.
        backend: "lite" or "carla"; host, port, carla_timeout: the CARLA server (backend "carla").
        workers: parallel processes (or Ray CPUs); ray: Ray address ("local" or a cluster), None: no Ray.
        frames_every: video frame interval [s] (0: no videos).
        step_timeout: watchdog on one agent step and one simulator step [s].
        route_timeout: wall-clock budget per route [s] (None: none).
    """

    TASK = "closed_loop"
    PROTOCOL_FIELDS = (
        "num_vehicles",
        "num_pedestrians",
        "num_parked",
        "num_props",
        "replan_hz",
        "camera_size",
        "max_route_length",
        "max_sim_seconds",
    )

    protocol: str
    num_vehicles: int
    num_pedestrians: int
    num_parked: int
    num_props: int
    replan_hz: float
    camera_size: tuple[int, int]
    max_route_length: float | None
    max_sim_seconds: float | None
    agent: str = "autopilot"
    ckpt: str | None = None
    device: str = "cpu"
    routes: str = "routes_devtest"
    route_ids: str | None = None
    seeds: tuple[int, ...] = (0,)
    backend: str = "lite"
    host: str = "127.0.0.1"
    port: int = 2000
    carla_timeout: float = 10.0
    workers: int = 1
    ray: str | None = None
    frames_every: float = 1.0
    step_timeout: float = 30.0
    route_timeout: float | None = None

    def validate(self) -> ClosedLoopConfig:
        """`ValueError` naming the field of the first bad setting; returns self."""
        if self.backend not in ("lite", "carla"):
            raise ValueError(f"backend must be 'lite' or 'carla', got {self.backend!r}")
        if self.backend == "carla" and self.agent in ("autopilot", "oracle"):
            raise ValueError(f"agent {self.agent!r} reads the lite simulator's state; use --backend lite")
        if self.workers < 1:
            raise ValueError(f"--workers must be ≥ 1, got {self.workers}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative integers, got {list(self.seeds)}")
        w, h = self.camera_size
        if w < 8 or h < 8:
            raise ValueError(f"camera_size must be at least 8x8, got {w}x{h}")
        if self.max_route_length is not None and not self.max_route_length > 0:
            raise ValueError(f"max_route_length must be positive, got {self.max_route_length}")
        if self.frames_every < 0:
            raise ValueError(f"frames_every must be ≥ 0 (0: no videos), got {self.frames_every}")
        return self

    def agent_spec(self) -> Any:
        """The picklable agent recipe (`drivewm.factory.AgentSpec`)."""
        from drivewm.factory import AgentSpec

        return AgentSpec(self.agent, self.ckpt, self.device, self.replan_hz, tuple(self.camera_size))

    def backend_spec(self, needs_images: bool) -> Any:
        """The picklable backend recipe; cameras are rendered when the agent or the videos need them."""
        from carla_bridge.closed_loop.backend_spec import BackendSpec

        return BackendSpec(
            kind=self.backend,
            host=self.host,
            port=self.port,
            timeout_s=self.carla_timeout,
            num_vehicles=self.num_vehicles,
            num_pedestrians=self.num_pedestrians,
            num_parked=self.num_parked,
            num_props=self.num_props,
            camera_size=tuple(self.camera_size),
            render=needs_images or self.frames_every > 0,
        )

    def limits(self) -> Any:
        """The runner's per-route budgets and options (`RunLimits`)."""
        from carla_bridge.closed_loop.runner import RunLimits

        return RunLimits(
            max_route_length=self.max_route_length,
            step_timeout=self.step_timeout,
            sim_timeout=self.step_timeout,
            route_timeout=self.route_timeout,
            max_sim_seconds=self.max_sim_seconds,
            replan_hz=self.replan_hz,
            camera_size=tuple(self.camera_size),
            frames_every=self.frames_every,
        )


__all__ = ["DEFAULT_PROTOCOL", "ClosedLoopConfig"]
