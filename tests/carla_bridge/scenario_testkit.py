"""Shared pieces of the scenario tests: worlds on real towns with one scenario, configs at a route point,
an ego that drives the route blind (ignoring everyone: the scenario's own behaviour is what is tested)."""

from __future__ import annotations

import math

import numpy as np
import torch

from agents import EGO
from carla_bridge.autopilot import Autopilot, AutopilotParams
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.world import LiteWorld
from carla_bridge.route_planner import plan_route
from carla_bridge.routes import ScenarioConfig
from carla_bridge.scenarios.generate import generate_routes

EMPTY = LiteConfig(num_vehicles=0, num_pedestrians=0, num_parked=0, num_props=0)


def config_at(plan, s: float, typ: str, **params) -> ScenarioConfig:
    """A `ScenarioConfig` of `typ` triggered at route arc length `s` (parameters as `name=value` strings or
    attribute dicts)."""
    i = int(np.searchsorted(plan.s, s))
    xy = plan.polyline[i]
    p = {k: (v if isinstance(v, dict) else {"value": str(v)}) for k, v in params.items()}
    return ScenarioConfig(f"{typ}_1", typ, np.array([xy[0], xy[1], 0.0]), float(plan.yaw[i]), p)


def world_with(town, md, plan, configs, cfg: LiteConfig = EMPTY, seed: int = 0, num_worlds: int = 1) -> LiteWorld:
    w = LiteWorld(town, cfg, map_data=md)
    w.reset(plan, seed, num_worlds=num_worlds, scenarios=configs)
    return w


def generated(town, md, typ: str, seed: int = 0):
    """(route plan, the scenario config) of a generated route of `typ` on `town`."""
    routes, report = generate_routes(town, [typ], 1, seed, map_data=md)
    assert report.found[typ] == 1, f"{town.name} offers no place for {typ}"
    (route,) = routes
    return plan_route(town, route.waypoints_world), route.scenarios[0]


class BlindDriver:
    """The blind route follower (speed limit, ignores agents and lights) for every world."""

    def __init__(self) -> None:
        self.ap = Autopilot(AutopilotParams(blind=True))

    def __call__(self, world: LiteWorld) -> torch.Tensor:
        return self.ap.controls(world)


def hold(world: LiteWorld) -> torch.Tensor:
    """Full brake in every world."""
    return torch.tensor([[0.0, 0.0, 1.0]]).expand(world.num_worlds, 3)


def ego_centre(world: LiteWorld, w: int = 0) -> np.ndarray:
    x, y, yaw = (float(v) for v in world.state.ego.pose[w])
    return np.array([x + EGO.rear_axle_to_center * math.cos(yaw), y + EGO.rear_axle_to_center * math.sin(yaw)])


def place_ego(world: LiteWorld, plan, s: float, speed: float = 0.0, lateral: float = 0.0) -> None:
    """Put the ego's rear axle at route arc length `s` (`lateral` metres to the left), heading along the route."""
    i = int(np.searchsorted(plan.s, s))
    x, y = plan.polyline[i]
    yaw = float(plan.yaw[i])
    world.set_ego(x - math.sin(yaw) * lateral, y + math.cos(yaw) * lateral, yaw, speed)


def actors(world: LiteWorld, role: str | None = None, w: int = 0):
    return [a for a in world.scenario_actors(w) if role is None or a.role == role]


def phase(world: LiteWorld, w: int = 0) -> str:
    return world.scenario_views(w)[0].phase
