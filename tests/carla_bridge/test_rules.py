"""Rule sets: frozen, versioned, every parameter from the files; bad files give errors naming the field."""

from __future__ import annotations

import json

import pytest

from carla_bridge.rules import available_rules, load_rules, rules_from_dict


def test_shipped_rule_sets_differ_where_the_references_do():
    """leaderboard route_scenario._create_test_criteria vs Bench2Drive's: MinimumSpeedRouteTest(checkpoints=4)
    vs 20 with its penalty 'unused' (statistics_manager PENALTY_PERC_DICT) and an event at every
    checkpoint; ActorBlockedTest(max_time=180) vs 60; everything else equal."""
    assert {"leaderboard-2.0", "bench2drive"} <= set(available_rules())
    lb, b2d = load_rules("leaderboard-2.0"), load_rules("bench2drive")
    assert load_rules() is lb  # the default, cached
    assert lb.penalties == {
        "collisions_pedestrian": 0.5,
        "collisions_vehicle": 0.6,
        "collisions_layout": 0.65,
        "red_light": 0.7,
        "stop_infraction": 0.8,
        "scenario_timeouts": 0.7,
        "yield_emergency_vehicle_infractions": 0.7,
    }
    assert (lb.min_speed.checkpoints, b2d.min_speed.checkpoints) == (4, 20)
    assert (
        lb.percentage_penalties["min_speed_infractions"].type,
        b2d.percentage_penalties["min_speed_infractions"].type,
    ) == ("decreases", "unused")
    assert (lb.blocked.max_time, b2d.blocked.max_time) == (180.0, 60.0)
    assert (lb.collision.min_ego_speed, lb.collision.radius, lb.collision.max_id_time) == (0.1, 5.0, 5.0)
    assert (lb.route_deviation.offroad_max, lb.route_deviation.max_route_percentage) == (30.0, 30.0)
    assert (lb.route_timeout.min_timeout, lb.route_timeout.speed_percentage) == (300.0, 10.0)
    assert lb.red_light == b2d.red_light and lb.stop_sign == b2d.stop_sign and lb.outside_lanes == b2d.outside_lanes
    assert lb.benchmark is None and b2d.benchmark is not None
    assert lb.digest != b2d.digest and lb.label == "leaderboard-2.0@v1"
    assert rules_from_dict(lb.to_dict()) == lb and rules_from_dict(b2d.to_dict()) == b2d


def test_bench2drive_abilities_table():
    """tools/ability_benchmark.py `Ability`: a scenario type counts for every ability listing it."""
    b = load_rules("bench2drive").benchmark
    assert b.abilities_of("Accident") == ["Overtaking"]
    assert b.abilities_of("BlockedIntersection") == ["Emergency_Brake", "Traffic_Signs"]
    assert b.abilities_of("SignalizedJunctionLeftTurn") == ["Merging", "Traffic_Signs"]
    assert b.abilities_of("YieldToEmergencyVehicle") == ["Give_Way"]
    assert b.abilities_of("VanillaSignalizedTurnEncounterRedLight") == ["Traffic_Signs"]
    assert b.abilities_of(None) == [] and b.abilities_of("NoSuchScenario") == []
    assert b.success_ignores == ("min_speed_infractions",) and b.traffic_signs_junction_waypoints == 8


def test_bad_rule_files_name_the_field(tmp_path):
    raw = load_rules("leaderboard-2.0").to_dict()
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(dict(raw, name="mine")))
    assert load_rules(path).name == "mine"
    for mutate, match in (
        (lambda d: d["completion"].update(windw=2), r"completion: unknown fields \['windw'\]"),
        (lambda d: d["blocked"].pop("max_time"), r"blocked: unknown fields \[\], missing fields \['max_time'\]"),
        (lambda d: d["collision"].update(radius="five"), r"collision.radius: must be a finite number"),
        (lambda d: d["min_speed"].update(checkpoints=0), r"min_speed.checkpoints: must be positive"),
        (lambda d: d["percentage_penalties"]["min_speed_infractions"].update(type="sometimes"), "type must be one of"),
        (lambda d: d.update(version=0), r"version: must be an integer"),
        (lambda d: d.update(extra=1), r"unknown fields \['extra'\]"),
    ):
        d = json.loads(json.dumps(raw))
        mutate(d)
        with pytest.raises(ValueError, match=match):
            rules_from_dict(d)
    with pytest.raises(ValueError, match="unknown rule set 'leaderboard-3'"):
        load_rules("leaderboard-3")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_rules(bad)


def test_sim_run_cli_takes_the_rule_set(tmp_path, capsys):
    """`drivewm sim run --rules bench2drive` judges and scores by that rule set and records it."""
    from drivewm.cli import main

    out = tmp_path / "out"
    args = ["sim", "run", "--routes", "routes_devtest", "--route-ids", "0", "--max-length", "30", "--vehicles", "2"]
    assert main([*args, "--pedestrians", "0", "--animation", "none", "--rules", "bench2drive", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    rec = res["routes"][0]
    assert res["rules"]["name"] == "bench2drive" and rec["rules"]["name"] == "bench2drive"
    assert rec["status"] == "Completed" and rec["success"] is True and rec["driving_score"] == 100.0
    assert res["statistics"]["bench2drive"]["success_rate"]["mean"] == 1.0
    assert main([*args, "--rules", "leaderboard-3", "--out", str(tmp_path / "o2")]) == 2
    assert "unknown rule set 'leaderboard-3'" in capsys.readouterr().err
