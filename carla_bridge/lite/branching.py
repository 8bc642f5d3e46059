"""Counterfactual branches: run N ego plans from one world state with reactive traffic.

`run_plans` copies one world of a `LiteWorld` into (at most `max_worlds` at a time) parallel worlds,
drives each copy's ego along its own plan with a `planner.controller.PlanFollower`, and returns what
happened: the executed ego trajectories, every agent's future, the events. The oracle world model
and the dataset recorder's branches both go through it. The driven world is never touched, and
each plan's outcome is bit-identical whatever `max_worlds` is (the step is per-world exact).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from agents import AgentStates
from carla_bridge.backend import Event
from carla_bridge.lite.world import LiteWorld
from planner import STEP_SECONDS
from planner.controller import ControllerParams, PlanFollower


@dataclass(frozen=True)
class PlanRollout:
    """What N plans executed from one world state gave.

    Attributes:
        ego: `[N, S, 4]` float64 executed rear-axle (x, y, yaw, speed), world frame, at t = dt·(1..S).
        agents: `AgentStates` `[N, R, A]` (world frame, float32) at t = dt·every·(1..R).
        events: every event of every branch (`Event.world` = plan index; `Event.time` the simulation time).
        start_time: simulation time of the branching state [s].
        dt: step [s]; every: steps between agent records.
    """

    ego: Tensor
    agents: AgentStates
    events: list[Event]
    start_time: float
    dt: float
    every: int

    def first_event_time(self, kinds: Iterable[str]) -> Tensor:
        """`[N]` float64 time since the branching state [s] of each plan's first event of `kinds`
        (inf if none)."""
        kinds = frozenset(kinds)
        out = torch.full((self.ego.shape[0],), math.inf, dtype=torch.float64)
        for ev in self.events:
            if ev.kind in kinds:
                out[ev.world] = min(float(out[ev.world]), round(ev.time - self.start_time, 9))
        return out


def run_plans(
    world: LiteWorld,
    plans: Tensor,
    steps: int,
    plan_dt: float = STEP_SECONDS,
    dt: float | None = None,
    every: int | None = None,
    source: int = 0,
    max_worlds: int = 32,
    controller: ControllerParams | None = None,
) -> PlanRollout:
    """Follow each of N plans in its own copy of world `source` for `steps` steps.

    Args:
        world: the simulator (its state is the branching point; it is not changed).
        plans: `[N, D, 3]` rear-axle (x, y, yaw) at t = plan_dt·(1..D) in the current ego frame of `source`.
        steps: simulation steps S.
        plan_dt: the plans' step [s].
        dt: simulation step of the branches [s] (None: the world's own).
        every: steps between agent records (None: one record per `STEP_SECONDS`).
        max_worlds: copies stepped together.
        controller: plan-tracking gains.

    Returns:
        A `PlanRollout`.
    """
    if plans.dim() != 3 or plans.shape[-1] != 3 or plans.shape[0] < 1:
        raise ValueError(f"plans must have shape [N>=1, D, 3], got {list(plans.shape)}")
    if not bool(torch.isfinite(plans).all()):
        raise ValueError("plans contain NaN or inf")
    if steps < 1 or max_worlds < 1:
        raise ValueError(f"steps and max_worlds must be ≥ 1, got {steps} and {max_worlds}")
    cfg = world.cfg if dt is None else dataclasses.replace(world.cfg, dt=float(dt))
    every = max(1, round(STEP_SECONDS / cfg.dt)) if every is None else int(every)
    start = float(world.state.time[source])
    egos, agents, events = [], [], []
    for lo in range(0, plans.shape[0], max_worlds):
        chunk = plans[lo : lo + max_worlds]
        k = chunk.shape[0]
        branch = world.branch(k, source, cfg)
        follower = PlanFollower(controller, cfg.dt)
        follower.set_plans(branch.state.ego.pose, chunk, start, plan_dt)
        ego, rec = [], []
        for i in range(1, steps + 1):
            st = branch.state
            controls = follower.controls(st.ego.pose, st.ego.speed, float(st.time[0]))
            for ev in branch.step(controls):
                events.append(dataclasses.replace(ev, world=ev.world + lo))
            st = branch.state
            ego.append(torch.cat([st.ego.pose, st.ego.speed[:, None]], -1))
            if i % every == 0:
                rec.append(branch.agents_world())
        egos.append(torch.stack(ego, 1))
        agents.append(_stack(rec, 1) if rec else None)
    events.sort(key=lambda e: (e.world, e.time))
    return PlanRollout(
        ego=torch.cat(egos),
        agents=_cat([a for a in agents if a is not None], 0)
        if agents[0] is not None
        else AgentStates.empty((plans.shape[0], 0)),
        events=events,
        start_time=start,
        dt=cfg.dt,
        every=every,
    )


def _stack(items: list[AgentStates], dim: int) -> AgentStates:
    return AgentStates(
        **{f: torch.stack([getattr(a, f) for a in items], dim) for f in AgentStates.__dataclass_fields__}
    )


def _cat(items: list[AgentStates], dim: int) -> AgentStates:
    return AgentStates(**{f: torch.cat([getattr(a, f) for a in items], dim) for f in AgentStates.__dataclass_fields__})
