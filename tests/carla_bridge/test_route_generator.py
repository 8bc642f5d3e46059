"""`drivewm routes generate` / `carla_bridge.scenarios.generate`: triggers placed where each type makes
sense on the vendored towns (Town01–Town06, real `carla.Map`s), files that re-parse into the same routes
and scenarios, and the command's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carla_bridge.lite.map_data import build_map_data
from carla_bridge.maps import load_town
from carla_bridge.route_planner import plan_route
from carla_bridge.routes import parse_routes, write_routes
from carla_bridge.scenarios import build_scenarios
from carla_bridge.scenarios.generate import generate_routes
from carla_bridge.scenarios.lanes import RouteView, side_lane
from drivewm.cli import main

# (town, types): junction, two-way, multi-lane and merge types where each town has them
CASES = [
    ("Town01", ["SignalizedJunctionLeftTurn", "AccidentTwoWays", "OppositeVehicleRunningRedLight"]),
    ("Town02", ["SignalizedJunctionRightTurn", "VehicleOpensDoorTwoWays", "PedestrianCrossing"]),
    ("Town03", ["NonSignalizedJunctionLeftTurn", "InvadingTurn", "EnterActorFlow"]),
    ("Town04", ["Accident", "YieldToEmergencyVehicle", "HighwayCutIn"]),
    ("Town05", ["ConstructionObstacle", "VehicleTurningRoute", "HighwayExit"]),
    ("Town06", ["StaticCutIn", "SequentialLaneChange", "BlockedIntersection"]),
]


def _trigger_lane(town, route, view):
    cfg = route.scenarios[0]
    s, dist, _ = view.project(cfg.trigger_world[:2])
    assert dist < 0.5
    return s, view.lane_at(s)


def _check_placement(town, md, typ, route, view):
    """Where the type makes sense (the file's trigger point, on the re-planned route)."""
    s, (lane, ls) = _trigger_lane(town, route, view)
    lane_obj = town.lanes[lane]
    if typ in ("SignalizedJunctionLeftTurn", "SignalizedJunctionRightTurn", "NonSignalizedJunctionLeftTurn"):
        jp = view.junction_after(s)
        assert jp.entry_s - s < 60.0  # before a junction
        assert jp.turn == (1 if "Right" in typ else -1)
        assert (int(md.lanes.lane_head[jp.entry_lane]) >= 0) == typ.startswith("Signalized")
    if typ in ("OppositeVehicleRunningRedLight", "PedestrianCrossing", "VehicleTurningRoute", "BlockedIntersection"):
        jp = view.junction_after(s)
        assert jp.entry_s - s < 60.0
        if typ == "OppositeVehicleRunningRedLight":
            assert jp.turn == 0 and int(md.lanes.lane_head[jp.entry_lane]) >= 0
        if typ in ("VehicleTurningRoute", "BlockedIntersection"):
            assert jp.turn != 0
    if typ in ("AccidentTwoWays", "VehicleOpensDoorTwoWays", "InvadingTurn"):
        left = side_lane(town, lane, ls, "left")
        assert left is not None and not left[2]  # the lane to the left is an oncoming lane
    if typ in ("Accident", "ConstructionObstacle", "YieldToEmergencyVehicle", "StaticCutIn", "SequentialLaneChange"):
        same = side_lane(town, lane, ls, "left") or side_lane(town, lane, ls, "right")
        assert same is not None and same[2]  # a same-direction lane beside: a multi-lane road
    if typ in ("EnterActorFlow", "HighwayExit"):
        cfg = route.scenarios[0]
        assert cfg.location("start_actor_flow") is not None and cfg.location("end_actor_flow") is not None
    if typ == "HighwayCutIn":
        assert route.scenarios[0].location("other_actor_location") is not None
    assert not lane_obj.is_junction


@pytest.mark.parametrize(("town_name", "types"), CASES)
def test_generated_routes_place_triggers_where_types_make_sense_and_reparse(tmp_path, town_name, types):
    town = load_town(town_name)
    md = build_map_data(town, seed=town.seed)
    routes, report = generate_routes(town, types, 1, seed=0, map_data=md)
    assert report.found == dict.fromkeys(types, 1) and not report.missing
    path = write_routes(tmp_path / "gen.xml", routes)
    back = parse_routes(path)
    assert [r.id for r in back] == [str(i) for i in range(len(types))]
    for typ, route in zip(types, back):
        (cfg,) = route.scenarios
        assert cfg.type == typ and cfg.name == f"{typ}_0" and len(route.weathers) == 2
        plan = plan_route(town, route.waypoints_world)  # as any run re-plans it (format 2.0: no yaw)
        view = RouteView(town, plan)
        _check_placement(town, md, typ, route, view)
        _, (rec,) = build_scenarios(town, md, plan, route.scenarios)
        assert rec.built, rec.reason
    # same seed, same routes
    again, _ = generate_routes(town, types, 1, seed=0, map_data=md)
    for a, b in zip(routes, again):
        np.testing.assert_allclose(a.waypoints_world, b.waypoints_world)
        assert dict(a.scenarios[0].params) == dict(b.scenarios[0].params)


def test_types_a_town_cannot_host_are_reported(town01, town01_map_data):
    """Town01 has no stop signs and no junction without lights."""
    routes, report = generate_routes(
        town01, ["VanillaNonSignalizedTurnEncounterStopsign", "HardBreakRoute"], 2, seed=1, map_data=town01_map_data,
        max_attempts=20,
    )  # fmt: skip
    assert report.found == {"VanillaNonSignalizedTurnEncounterStopsign": 0, "HardBreakRoute": 2}
    assert report.missing == {"VanillaNonSignalizedTurnEncounterStopsign": 2}
    triggers = [r.scenarios[0].trigger_world[:2] for r in routes]
    assert math.dist(*triggers) >= 30.0  # distinct places


def test_cli_routes_generate(tmp_path, capsys):
    out = tmp_path / "r.xml"
    assert main(["routes", "generate", "--town", "Town02", "--scenarios", "ControlLoss,ParkingCutIn",
                 "--count", "2", "--seed", "4", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    routes = parse_routes(out)
    assert [r.scenarios[0].type for r in routes] == ["ControlLoss", "ControlLoss", "ParkingCutIn", "ParkingCutIn"]
    assert all(r.town == "Town02" for r in routes)
    assert "wrote 4 routes" in capsys.readouterr().out
    assert main(["routes", "generate", "--town", "Town02", "--scenarios", "Nope", "--count", "1",
                 "--out", str(tmp_path / "x.xml")]) == 2  # fmt: skip
    assert "unknown scenario types ['Nope']" in capsys.readouterr().err
    assert not (tmp_path / "x.xml").exists()
    assert main(["routes", "generate", "--town", "Town99", "--scenarios", "all", "--count", "1",
                 "--out", str(tmp_path / "y.xml")]) == 2  # fmt: skip
    assert "Town99" in capsys.readouterr().err
