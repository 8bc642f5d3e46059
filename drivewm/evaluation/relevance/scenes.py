"""The planning moments of a relevance run: a lite world populated around a random route, driven by
the privileged autopilot through the `Backend` API until something is worth planning around (a road
user a plan can reach, or a red light, close ahead)."""

from __future__ import annotations

from typing import Any

import numpy as np

from drivewm.evaluation.relevance.candidates import intercept
from drivewm.evaluation.relevance.config import RelevanceConfig
from planner import LightState, PrivilegedState

MIN_ROUTE_AHEAD = 70.0
"""Route completion [%] after which the moment is taken anyway (≥ 90 m of route stay ahead for the plans)."""


def interesting(privileged: PrivilegedState, speed: float, distance: float) -> bool:
    """A road user within `distance` [m] ahead that a plan could hit within the horizon (`intercept`),
    or a red light within `distance`."""
    a = privileged.agents
    near = a.valid[0] & (a.xy[0, :, 0] > 2.0) & (a.xy[0, :, 0] < distance) & (a.xy[0, :, 1].abs() < 8.0)
    for j in near.nonzero()[:, 0].tolist():
        if intercept(a.xy[0, j], a.velocity[0, j], speed) is not None:
            return True
    return int(privileged.light_state[0]) == LightState.RED and float(privileged.light_distance[0]) < distance


def prepare_scene(backend: Any, town: Any, cfg: RelevanceConfig, index: int) -> dict:
    """Reset the lite `backend` on scene `index`'s random route and let the autopilot drive it (one
    `backend.step` per 0.05 s, no rendering) to the planning moment: the first interesting time after a
    random start in the first half of `cfg.warmup`, else the end of the warm-up (or a route nearly
    done). Returns the scene's info (town, route seed, time, why the moment was chosen)."""
    from carla_bridge.autopilot import Autopilot
    from carla_bridge.lite.random_route import random_route

    rng = np.random.default_rng([cfg.seed, index])
    route = random_route(town, rng, min_length=300.0)
    scene_seed = int(rng.integers(2**31))
    backend.reset(route, scene_seed)
    world = backend.world  # the autopilot reads the lite simulator's state (it is privileged)
    pilot = Autopilot()
    dt = float(world.cfg.dt)
    lo, hi = cfg.warmup
    start = float(rng.uniform(lo, max(lo, 0.5 * (lo + hi))))
    reason = "max_warmup"
    t = 0.0
    while t < hi - 1e-9 and not backend.done:
        backend.step(pilot.control(world), render=False)
        t += dt
        if t >= start and interesting(backend.privileged(), float(world.ego_speed()[0]), cfg.interest_distance):
            reason = "agent_or_light_ahead"
            break
        if float(world.route_completion()[0]) > MIN_ROUTE_AHEAD:
            reason = "route_end"
            break
    return {"index": index, "town": town.name, "seed": scene_seed, "time": world.time, "moment": reason}


__all__ = ["interesting", "prepare_scene"]
