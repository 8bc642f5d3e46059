"""Scenarios inside the lite world: batched branches bit-identical to sequential runs with scenarios
active, snapshots, the actor views, and every scenario of a route accounted for (built or why not, as the
leaderboard's `RouteScenario._filter_scenarios` / `build_scenarios` warnings)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.random_route import random_route
from carla_bridge.routes import ScenarioConfig
from carla_bridge.scenarios import SCENARIO_TYPES, build_scenarios
from carla_bridge.scenarios.builders import BUILDERS
from tests.carla_bridge.scenario_testkit import BlindDriver, config_at, place_ego, world_with

ISSUE_13_TYPES = (
    "Accident AccidentTwoWays ConstructionObstacle ConstructionObstacleTwoWays HazardAtSideLane "
    "HazardAtSideLaneTwoWays ParkedObstacle ParkedObstacleTwoWays VehicleOpensDoorTwoWays CrossingBicycleFlow "
    "EnterActorFlow EnterActorFlowV2 HighwayExit HighwayCutIn InterurbanActorFlow InterurbanAdvancedActorFlow "
    "MergerIntoSlowTraffic MergerIntoSlowTrafficV2 NonSignalizedJunctionLeftTurn NonSignalizedJunctionRightTurn "
    "NonSignalizedJunctionLeftTurnEnterFlow ParkingExit SequentialLaneChange SignalizedJunctionLeftTurn "
    "SignalizedJunctionRightTurn SignalizedJunctionLeftTurnEnterFlow BlockedIntersection DynamicObjectCrossing "
    "HardBreakRoute OppositeVehicleTakingPriority OppositeVehicleRunningRedLight ParkingCutIn PedestrianCrossing "
    "ParkingCrossingPedestrian StaticCutIn VehicleTurningRoute VehicleTurningRoutePedestrian ControlLoss "
    "InvadingTurn YieldToEmergencyVehicle T_Junction VanillaNonSignalizedTurn VanillaSignalizedTurnEncounterGreenLight "
    "VanillaSignalizedTurnEncounterRedLight VanillaNonSignalizedTurnEncounterStopsign PriorityAtJunction"
).split()


@pytest.fixture(scope="module")
def route(town01, long_lane):
    return random_route(town01, 0, 300.0, start_lane=long_lane, start_s=5.0)


def test_catalog_names_every_type_and_each_has_a_builder():
    assert set(ISSUE_13_TYPES) == set(SCENARIO_TYPES)
    assert set(BUILDERS) == {n for n, t in SCENARIO_TYPES.items() if t.implemented}


def test_every_scenario_is_accounted_for(town01, town01_map_data, route):
    """Unknown types, triggers off the route (`RouteParser.is_scenario_at_route`: 2 m, 10°) and placement
    failures are reported with their reason, the others built."""
    good = config_at(route, 40.0, "ParkedObstacleTwoWays", distance=40)
    unknown = ScenarioConfig("Mystery_1", "Mystery", good.trigger_world, good.trigger_yaw)
    aside = good.trigger_world + 30.0 * np.array([np.sin(good.trigger_yaw), -np.cos(good.trigger_yaw), 0.0])
    off = ScenarioConfig("Far_1", "HardBreakRoute", aside, good.trigger_yaw)
    wrong_way = ScenarioConfig("Back_1", "HardBreakRoute", good.trigger_world, good.trigger_yaw + np.pi)
    no_junction = config_at(route, 20.0, "PedestrianCrossing")  # Town01's long lane: no junction within reach
    no_junction = ScenarioConfig("Ped_1", "PedestrianCrossing", no_junction.trigger_world, no_junction.trigger_yaw)
    short = random_route(town01, 0, 80.0, start_lane=route.point_lane[0], start_s=5.0)
    specs, recs = build_scenarios(town01, town01_map_data, short, [good, unknown, off, wrong_way, no_junction])
    by = {r.name: r for r in recs}
    assert len(recs) == 5 and [s.name for s in specs] == ["ParkedObstacleTwoWays_1"]
    assert by["ParkedObstacleTwoWays_1"].built and by["ParkedObstacleTwoWays_1"].expert
    assert by["Mystery_1"].reason == "unknown scenario type"
    assert "not on the route" in by["Far_1"].reason and "not on the route" in by["Back_1"].reason
    assert by["Ped_1"].reason.startswith("setup error:") and "junction" in by["Ped_1"].reason


def _running(town01, md, route, steps: int):
    """The scenario world with the ego driven blind `steps` steps from just before both triggers."""
    w = _scenario_world(town01, md, route)
    place_ego(w, route, 23.0, speed=6.0)
    drive = BlindDriver()
    for _ in range(steps):
        w.step(drive(w))
    return w


def _scenario_world(town01, md, route, W=1):
    cfgs = [
        config_at(route, 25.0, "AccidentTwoWays", distance=45, frequency={"from": "20", "to": "30"}),
        config_at(route, 35.0, "DynamicObjectCrossing", distance=80),
    ]
    cfg = LiteConfig(num_vehicles=12, num_pedestrians=6)
    return world_with(town01, md, route, cfgs, cfg, seed=3, num_worlds=W)


def test_batched_branches_with_scenarios_are_bit_identical_to_sequential_runs(town01, town01_map_data, route):
    """Every tensor (scenario bookkeeping included) and every event after 8 s of batched stepping equals
    the same worlds stepped one by one, with the oncoming flow and the crossing pedestrian active."""
    w = _running(town01, town01_map_data, route, 60)
    k = 3
    controls = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.05, 0.4], [0.3, -0.03, 0.0]])
    batched = w.branch(k)
    singles = [w.branch(1) for _ in range(k)]
    ev_b, ev_s = [], [[] for _ in range(k)]
    for _ in range(160):
        ev_b += batched.step(controls)
        for i, s in enumerate(singles):
            ev_s[i] += s.step(controls[i : i + 1])
    assert int(batched.state.scenarios.phase.max()) >= 2  # scenarios ran
    assert bool((batched.state.scenarios.flow_count > 0).all())  # the oncoming flow ran in every world
    for i, s in enumerate(singles):
        assert batched.state.select(torch.tensor([i])).equal(s.state)
        mine = [(e.kind, e.time, e.other_ids) for e in ev_b if e.world == i]
        assert mine == [(e.kind, e.time, e.other_ids) for e in ev_s[i]]


def test_snapshot_restore_reproduces_the_scenario_future(town01, town01_map_data, route):
    w = _running(town01, town01_map_data, route, 80)
    snap = w.snapshot()
    c = torch.tensor([[0.4, 0.0, 0.0]])
    for _ in range(100):
        w.step(c)
    a = w.snapshot()
    w.restore(snap)
    for _ in range(100):
        w.step(c)
    assert w.snapshot().equals(a)


def test_actor_views_match_the_privileged_agents(town01, town01_map_data, route):
    """`LiteWorld.scenario_actors` lists each live scenario actor with a track id found, at the same pose,
    in `privileged()` / `agents_world()` (what the expert sees)."""
    w = _running(town01, town01_map_data, route, 120)
    views = w.scenario_actors()
    assert {"police car", "crashed car", "warning sign", "oncoming", "blocker"} <= {a.role for a in views}
    agents = w.agents_world()
    ids = agents.track_id[0].tolist()
    for a in views:
        j = ids.index(a.track_id)
        assert bool(agents.valid[0, j])
        assert agents.xy[0, j].tolist() == pytest.approx(list(a.xy), abs=1e-4)
    scen = {v.name: v for v in w.scenario_views()}
    assert scen["AccidentTwoWays_1"].phase == "running" and scen["AccidentTwoWays_1"].allow_opposite
    dead = w.scenario_actors(live_only=False)
    assert len(dead) > len(views)  # flow slots not (yet) in use are listed as hidden
