"""Global statistics as leaderboard/utils/statistics_manager.py `compute_global_statistics` and Bench2Drive's
tools/merge_route_json.py and tools/ability_benchmark.py compute them, on hand-computed records."""

from __future__ import annotations

import math

import pytest

from carla_bridge.rules import load_rules
from carla_bridge.statistics import bench2drive_statistics, global_statistics, mean_ci

LB, B2D = load_rules("leaderboard-2.0"), load_rules("bench2drive")


def rec(route_id, ds, rc, penalty, length, status, seed=0, **infractions):
    inf = {k: [{"kind": k, "details": d} for d in v] for k, v in infractions.items()}
    return {
        "route_id": route_id,
        "seed": seed,
        "driving_score": ds,
        "route_completion": rc,
        "infraction_penalty": penalty,
        "route_length_m": length,
        "status": status,
        "infractions": inf,
    }


def test_global_record_means_std_km_and_rates():
    """Means over runs, standard deviation with n − 1, km = Σ length·RC, infractions per km except
    outside_route_lanes (the km driven outside); the global status downgrades Perfect → Completed → Failed."""
    records = [
        rec(
            "1",
            80.0,
            100.0,
            0.8,
            1000.0,
            "Completed",
            collisions_vehicle=[{}],
            outside_route_lanes=[{"distance": 120.0, "percentage": 12.0}],
        ),
        rec("2", 30.0, 50.0, 0.6, 2000.0, "Failed - Agent got blocked", seed=1, vehicle_blocked=[{}], red_light=[{}]),
        rec("3", 100.0, 100.0, 1.0, 500.0, "Perfect", seed=1),
    ]
    g = global_statistics(records, LB)
    ds = g["scores"]["driving_score"]
    assert ds["mean"] == pytest.approx(70.0) and ds["n"] == 3
    assert ds["std"] == pytest.approx(math.sqrt((10**2 + 40**2 + 30**2) / 2), abs=1e-3)
    assert ds["ci95"] == pytest.approx(4.302653 * math.sqrt(1300.0) / math.sqrt(3), rel=1e-5)
    assert g["scores"]["route_completion"]["mean"] == pytest.approx(250.0 / 3, abs=1e-5)
    assert g["km_driven"] == pytest.approx(2.5) and g["total_length_m"] == 3500.0
    assert g["infractions"]["collisions_vehicle"] == pytest.approx(0.4)
    assert g["infractions"]["red_light"] == pytest.approx(0.4) and g["infractions"]["vehicle_blocked"] == pytest.approx(
        0.4
    )
    assert g["infractions"]["outside_route_lanes"] == pytest.approx(0.12)  # km outside, not per km
    assert g["infractions"]["collisions_pedestrian"] == 0.0
    assert g["status"] == "Failed" and g["exceptions"] == [("2", 1, "Failed - Agent got blocked")]
    assert g["by_seed"] == {
        "0": {"driving_score": 80.0, "route_completion": 100.0, "infraction_penalty": 0.8},
        "1": {"driving_score": 65.0, "route_completion": 75.0, "infraction_penalty": 0.8},
    }
    assert g["by_route"]["2"] == {
        "runs": 1,
        "driving_score": {"mean": 30.0, "ci95": None},  # one run: no interval
        "route_completion": {"mean": 50.0, "ci95": None},
    }
    assert list(g["by_route"]) == ["1", "2", "3"] and g["by_scenario_type"] == {}
    assert global_statistics(records[:1], LB)["status"] == "Completed"
    assert global_statistics(records[2:], LB)["scores"]["driving_score"]["ci95"] is None
    assert global_statistics(records[2:], LB)["scores"]["driving_score"]["std"] == 0.0
    assert "bench2drive" not in g
    with pytest.raises(ValueError, match="at least one"):
        global_statistics([], LB)
    assert mean_ci([1.0, float("nan"), 3.0])[::2] == (2.0, 2)


def test_bench2drive_success_rate_abilities_efficiency_smoothness():
    """ability_benchmark.py: a route counts for every ability listing its (first) scenario type; a failed
    Traffic_Signs route still succeeds for Traffic_Signs when it got past its first junction
    (RC/100 > junction completion) without a red light or stop infraction; the mean over abilities."""

    def b2d(route_id, t, ok, rc=100.0, jc=None, eff=None, comfort=None, **inf):
        r = rec(route_id, rc, rc, 1.0, 100.0, "Completed" if ok else "Failed", **inf)
        r.update(scenario_type=t, success=ok, junction_completion=jc, efficiency=eff, comfort=comfort)
        return r

    records = [
        b2d("a", "Accident", True, eff=80.0, comfort=1.0),
        b2d("b", "BlockedIntersection", False, rc=60.0, jc=0.5, eff=40.0, comfort=0.5),
        b2d("c", "SignalizedJunctionLeftTurn", False, rc=40.0, jc=0.5),
        b2d("d", "SignalizedJunctionRightTurn", False, rc=90.0, jc=0.5, red_light=[{}]),
        b2d("e", "YieldToEmergencyVehicle", True),
    ]
    s = bench2drive_statistics(records, B2D)
    assert s["success_rate"]["mean"] == pytest.approx(0.4)
    ab = s["abilities"]
    assert (ab["Overtaking"]["success"], ab["Overtaking"]["total"]) == (1, 1)
    assert (ab["Merging"]["success"], ab["Merging"]["total"]) == (0, 2)
    assert (ab["Emergency_Brake"]["success"], ab["Emergency_Brake"]["total"]) == (0, 1)
    assert (ab["Give_Way"]["success"], ab["Give_Way"]["total"]) == (1, 1)
    assert (ab["Traffic_Signs"]["success"], ab["Traffic_Signs"]["total"]) == (
        1,
        3,
    )  # only "b" got past its junction cleanly
    assert s["ability_mean"] == pytest.approx((1 + 0 + 0 + 1 + 1 / 3) / 5)
    assert s["efficiency"]["mean"] == pytest.approx(60.0) and s["efficiency"]["n"] == 2
    assert s["smoothness"]["mean"] == pytest.approx(0.75)
    assert s["per_type"]["Accident"] == {"success": 1, "total": 1}
    g = global_statistics(records, B2D)
    assert g["bench2drive"]["success_rate"]["mean"] == pytest.approx(0.4)
    assert g["by_scenario_type"]["Accident"]["success_rate"] == 1.0
    assert g["by_scenario_type"]["BlockedIntersection"]["driving_score"]["mean"] == 60.0
    with pytest.raises(ValueError, match="no benchmark"):
        bench2drive_statistics(records, LB)
