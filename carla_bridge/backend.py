"""The `Backend` seam between agents and a simulator (DESIGN.md §4): the embedded lite simulator
implements it today, a live CARLA server later. Also the `Event` record of infractions/route
events and the opaque `SimState` snapshot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from agents import Control
from carla_bridge.rules import RuleSet
from planner import Observation, PrivilegedState


@dataclass(frozen=True)
class Event:
    """One thing that happened during a run (an infraction or a route event).

    Attributes:
        kind: the `scoring.InfractionKind` value (e.g. "collisions_vehicle", "red_light"), or
            `scoring.ROUTE_COMPLETION` (the completion a judging backend reports when a route ends).
        time: simulation time [s] since reset.
        location: world (x, y) of the ego when it happened [m].
        other_ids: track ids of the other actors involved (empty if none).
        details: extra facts (e.g. "percentage" for percentage criteria, "other_class",
            "ego_speed", "light_xy").
        world: index of the world (branch) it happened in.
    """

    kind: str
    time: float
    location: tuple[float, float]
    other_ids: tuple[int, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    world: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "time": round(self.time, 3),
            "location": [round(float(v), 3) for v in self.location],
            "other_ids": [int(i) for i in self.other_ids],
            "details": self.details,
            "world": self.world,
        }


@dataclass
class SimState:
    """A full, opaque snapshot of a simulator: restoring it reproduces identical futures.

    Attributes:
        tensors: every state tensor (cloned), keyed by name.
        meta: plain-Python state (time, step counter, RNG state, per-run bookkeeping).
    """

    tensors: dict[str, Tensor]
    meta: dict[str, Any]

    def clone(self) -> SimState:
        return SimState({k: v.clone() for k, v in self.tensors.items()}, copy.deepcopy(self.meta))

    def equals(self, other: SimState) -> bool:
        """Bitwise equality of every tensor and the metadata."""
        if self.tensors.keys() != other.tensors.keys():
            return False
        return all(torch.equal(self.tensors[k], other.tensors[k]) for k in self.tensors) and _meta_eq(
            self.meta, other.meta
        )


def _meta_eq(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_meta_eq(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_meta_eq(x, y) for x, y in zip(a, b))
    return a == b


@runtime_checkable
class Backend(Protocol):
    """A simulator an agent can drive (the lite simulator, or a live CARLA server): everything the
    closed-loop runner calls.

    - `reset(route, seed)` populates the world for a route and returns the first observation;
    - `step(control, render)` advances one step (0.05 s); `render` says whether the observation must
      carry fresh camera images (a backend that always renders ignores it);
    - `done` is True once the backend itself ended the route (completed, blocked, deviated, timed out);
    - `rules` is the rule set the backend judges the route by (None: it does not judge; the runner's
      own trackers measure completion and the route timeout);
    - `finish()` ends the route and returns the criteria's final events (the last min-speed
      checkpoint, the distance outside the route lanes, the `route_completion` event); [] for a
      backend that does not judge;
    - `privileged()` is the ground truth for privileged agents (autopilot, oracle, `-gt`);
    - `snapshot()` / `restore(state)` branch the state (lite only; others raise `RuntimeError`);
    - `close()` releases everything (safe to call twice).
    """

    def reset(self, route: Any, seed: int) -> Observation: ...

    def step(self, control: Control, render: bool = True) -> tuple[Observation, list[Event]]: ...

    @property
    def done(self) -> bool: ...

    @property
    def rules(self) -> RuleSet | None: ...

    def finish(self) -> list[Event]: ...

    def privileged(self) -> PrivilegedState: ...

    def snapshot(self) -> SimState: ...

    def restore(self, state: SimState) -> None: ...

    def close(self) -> None: ...
