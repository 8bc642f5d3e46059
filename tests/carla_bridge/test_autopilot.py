"""The privileged autopilot completes a Town01 route without collisions; the blind agent crashes."""

import pytest
import torch

from carla_bridge.autopilot import Autopilot, AutopilotParams
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.random_route import random_route
from planner import HORIZON_STEPS
from tests.carla_bridge.sim_testkit import make_world

pytestmark = pytest.mark.usefixtures("single_thread")


def _drive(world, agent, seconds):
    """Drive until every world is done (or `seconds`); returns the events."""
    events = []
    for _ in range(round(seconds / world.cfg.dt)):
        events += world.step(agent.controls(world))
        if bool(world.state.route.done.all()):
            break
    return events


def test_autopilot_completes_short_route_without_collisions(town01, town01_map_data):
    route = random_route(town01, 11, 120.0)
    cfg = LiteConfig(num_vehicles=20, num_pedestrians=12, spawn_radius=60.0)
    w = make_world(town01, town01_map_data, cfg, seed=11, route=route)
    events = _drive(w, Autopilot(), 60.0)
    kinds = [e.kind for e in events]
    assert float(w.route_completion()[0]) == 100.0, kinds
    assert not [k for k in kinds if k.startswith("collisions") or k in ("red_light", "stop_infraction")], kinds


def test_blind_agent_crashes_more_in_dense_traffic(town01, town01_map_data):
    """World copy 0 is driven by the autopilot, copy 1 by the blind agent (one batched world)."""
    cfg = LiteConfig(num_vehicles=60, num_pedestrians=30, spawn_radius=60.0)
    pilot = Autopilot()
    blind = torch.tensor([False, True])
    crashes = torch.zeros(2, dtype=torch.long)
    for seed in (21, 22):
        w = make_world(town01, town01_map_data, cfg, seed=seed, route=random_route(town01, seed, 200.0)).branch(2)
        for _ in range(round(30.0 / w.cfg.dt)):
            for e in w.step(pilot.controls(w, blind)):
                if e.kind.startswith("collisions") and not e.details["hit_from_behind"]:
                    crashes[e.world] += 1
    assert crashes[0] == 0, crashes
    assert crashes[1] >= 2, crashes


def test_autopilot_plan_shape_and_batching(town01, town01_map_data):
    cfg = LiteConfig(num_vehicles=20, num_pedestrians=10)
    w = make_world(town01, town01_map_data, cfg, seed=3)
    b = w.branch(4)
    ap = Autopilot()
    plans = ap.plan(b)
    assert plans.shape == (4, HORIZON_STEPS, 3)
    assert torch.isfinite(plans).all()
    assert torch.allclose(plans[0], plans[3])  # identical copies plan identically
    # standing start: the plan moves forward along +x of the ego frame
    assert float(plans[0, -1, 0]) > 1.0
    # the blind flag per world gives the blind plan in that world only
    mixed = ap.plan(b, torch.tensor([False, True, False, True]))
    alone = Autopilot(AutopilotParams(blind=True)).plan(b)
    assert torch.allclose(mixed[1], alone[1]) and torch.allclose(mixed[0], plans[0])
    with pytest.raises(ValueError):
        b.step(torch.zeros(3, 3))
