"""The closed-loop report from results that carry what the scenario benchmark adds — per-route scenario
types, Bench2Drive success and abilities, infractions with their time and place — and from results
that do not (the leaderboard-2.0 devtest runs): narrow tables, plots, headline verdicts.

Ability names and the success rule follow Bench2Drive (Thinklab-SJTU/Bench2Drive,
`tools/ability_benchmark.py`: a route is a success when its status is Completed or Perfect and it has
no infraction but min speed; it counts for the abilities of its scenario type)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from carla_bridge.scoring import InfractionKind
from drivewm.evaluation.closed_loop.render import (
    headlines,
    infraction_events,
    render_report,
    report_tables,
    route_success,
)
from drivewm.evaluation.common.targets import Verdict

ABILITY_OF = {
    "Accident": "Overtaking",
    "ParkedObstacle": "Overtaking",
    "HighwayCutIn": "Merging",
    "PedestrianCrossing": "Emergency_Brake",
    "YieldToEmergencyVehicle": "Give_Way",
    "SignalizedJunctionLeftTurn": "Merging",
}


def _record(agent, route, seed, ds, rc=100.0, counts=None, scenario=None, success=None, events=()):
    c = {k.value: 0 for k in InfractionKind}
    c.update(counts or {})
    status = "Perfect" if ds == 100 else ("Completed" if rc == 100 else "Failed - Agent got blocked")
    rec = {
        "agent": agent,
        "route_id": str(route),
        "town": "Town05",
        "seed": seed,
        "status": status,
        "failure": None,
        "route_completion": rc,
        "infraction_penalty": ds / rc if rc else 1.0,
        "driving_score": ds,
        "km_driven": 0.2 * rc / 100,
        "counts": c,
        "events": list(events),
    }
    if scenario is not None:
        rec["scenario_type"] = scenario
        rec["success"] = success
        rec["infractions"] = {k: [e for e in events if e["kind"] == k] for k in c}
    return rec


def _scenario_results() -> dict:
    """Expert and drivewm on 6 scenario routes × 2 seeds under Bench2Drive rules."""
    types = list(ABILITY_OF)
    records = []
    rng = np.random.default_rng(0)
    for i, t in enumerate(types):
        for seed in (0, 1):
            records.append(_record("expert", i, seed, 95.0 + seed, scenario=t, success=True))
            ds = float(rng.uniform(20, 70))
            crash = {"kind": "collisions_vehicle", "time": 12.5, "location": [101.2, -3.4], "details": {"other_id": 7}}
            records.append(
                _record(
                    "drivewm", i, seed, ds, counts={"collisions_vehicle": 1}, scenario=t, success=False, events=[crash]
                )
            )
    agg = {}
    for a in ("expert", "drivewm"):
        abilities: dict[str, dict] = {}
        for r in (r for r in records if r["agent"] == a):
            e = abilities.setdefault(ABILITY_OF[r["scenario_type"]], {"success": 0, "total": 0})
            e["total"] += 1
            e["success"] += int(r["success"])
        for e in abilities.values():
            e["rate"] = e["success"] / e["total"]
        agg[a] = {"bench2drive": {"abilities": abilities}}
    return {
        "generated": "2025-01-01T00:00:00Z",
        "git_commit": "abc1234",
        "config": {},
        "seeds": [0, 1],
        "identical_routes_and_seeds": True,
        "aggregate": agg,
        "records": records,
    }


def test_success_follows_the_record_or_bench2drive():
    assert route_success({"success": False, "status": "Perfect"}) is False
    assert route_success({"status": "Completed", "counts": {"min_speed_infractions": 3, "red_light": 0}})
    assert not route_success({"status": "Completed", "counts": {"red_light": 1}})
    assert not route_success({"status": "Failed - Agent got blocked", "counts": {}})


def test_infraction_events_with_time_and_place():
    crash = {"kind": "collisions_vehicle", "time": 3.0, "location": [1.0, 2.0]}
    done = {"kind": "route_completion", "time": 9.0, "location": [5.0, 5.0]}
    assert infraction_events({"events": [crash, done]}) == [crash]  # route events are not infractions
    rec = {"infractions": {"red_light": [{"time": 4.0, "location": [0.0, 1.0]}]}, "events": [crash]}
    assert infraction_events(rec) == [{"kind": "red_light", "time": 4.0, "location": [0.0, 1.0]}]


def test_headlines_paired_by_route_and_seed():
    recs = [_record("cv-gt", r, s, 50.0 + 10 * r) for r in range(3) for s in (0, 1)]
    recs += [_record("drivewm", r, s, 60.0 + 10 * r + 5 * s) for r in range(3) for s in (0, 1)]
    recs += [_record("autopilot", r, s, 90.0 + r) for r in range(3) for s in (0, 1)]
    heads = {(h.figure, h.subject): h for h in headlines({"records": recs})}
    d = heads[("driving score", "drivewm")]
    diffs = np.array([10.0, 15.0] * 3)  # drivewm − cv-gt on each (route, seed)
    half = stats.t.ppf(0.975, 5) * diffs.std(ddof=1) / math.sqrt(6)
    assert d.delta.mean == pytest.approx(12.5) and d.delta.lo == pytest.approx(12.5 - half)
    assert d.verdict is Verdict.MET and d.baseline == "cv-gt"
    ap = heads[("driving score", "autopilot")]
    assert ap.target == "closed_loop_expert_ds" and ap.verdict is Verdict.MET  # 91 ± 1.1 ≥ 85
    assert heads[("driving score", "cv-gt")].target is None  # a reference, not under test
    # success: every run completed without infraction → 100 %, Wilson interval [61, 100] for 6 runs
    s = heads[("success rate [%]", "drivewm")]
    assert s.value.mean == 100.0 and s.value.lo == pytest.approx(100 * 6 / (6 + 1.959964**2), abs=0.01)
    res = heads[("DS interval half width (widest)", "drivewm")]
    widest = stats.t.ppf(0.975, 5) * np.std([60, 65, 70, 75, 80, 85], ddof=1) / math.sqrt(6)
    assert res.value.mean == pytest.approx(widest)
    assert res.verdict is Verdict.NOT_MET  # ± 9.8 cannot show a 10-point difference


def test_scenario_report_tables_plots_and_events(tmp_path):
    res = _scenario_results()
    tables = {anchor: (head, rows) for anchor, _, head, rows, _ in report_tables(res)}
    assert set(tables) == {"scores", "infractions", "planner", "scenario-types", "abilities", "routes"}
    assert all(len(head) <= 10 for anchor, (head, _) in tables.items() if anchor != "infractions")
    head, rows = tables["abilities"]
    by = {r[0]: dict(zip(head[1:], r[1:])) for r in rows}
    assert by["Overtaking"] == {"drivewm": "0 % (0/4)", "expert": "100 % (4/4)"}
    assert by["Give_Way"]["expert"] == "100 % (2/2)"
    head, rows = tables["scenario-types"]
    assert [r[0] for r in rows] == sorted(ABILITY_OF) and rows[0][head.index("expert")].startswith("2/2 · DS 95.5")
    md, page = render_report(tmp_path, res, {})
    for name in ("scores", "infractions", "scenario_types", "abilities"):
        assert f"src='figures/{name}.png'" in page
        with Image.open(tmp_path / "figures" / f"{name}.png") as img:
            assert img.size[0] <= 1240
    assert (
        "Infractions with time and place (12)" in md
        and "| drivewm | 0 | 0 | collisions vehicle | 12.5 | 101.2 | -3.4 |" in md
    )
    assert "success (the rule set's own)" in md
