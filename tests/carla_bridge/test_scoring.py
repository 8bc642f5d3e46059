"""Route scores as leaderboard/utils/statistics_manager.py `compute_route_statistics` computes them, under
both rule sets, on hand-computed cases."""

from __future__ import annotations

import pytest

from carla_bridge.backend import Event
from carla_bridge.rules import load_rules
from carla_bridge.scoring import ROUTE_COMPLETION, InfractionKind, event_factor, infraction_penalty, score_route

LB, B2D = load_rules("leaderboard-2.0"), load_rules("bench2drive")


def ev(kind, **details):
    return Event(kind if isinstance(kind, str) else kind.value, 1.0, (0.0, 0.0), (), details)


def test_penalty_factors():
    """PENALTY_VALUE_DICT factors; PENALTY_PERC_DICT: 'increases' 1 − (1 − p)·x/100 (outside lanes, p = 0),
    'decreases' 1 − (1 − p)·(1 − x/100) (min speed, p = 0.7), Bench2Drive's 'unused' min speed 1."""
    assert event_factor(ev(InfractionKind.COLLISION_PEDESTRIAN), LB) == 0.5
    assert event_factor(ev(InfractionKind.COLLISION_STATIC), LB) == 0.65
    assert event_factor(ev(InfractionKind.YIELD_EMERGENCY), LB) == 0.7
    assert event_factor(ev(InfractionKind.ROUTE_DEVIATION), LB) == 1.0
    assert event_factor(ev(InfractionKind.OUTSIDE_ROUTE_LANES, percentage=12.0), LB) == pytest.approx(0.88)
    assert event_factor(ev(InfractionKind.MIN_SPEED, percentage=60.0), LB) == pytest.approx(0.88)
    assert event_factor(ev(InfractionKind.MIN_SPEED, percentage=60.0), B2D) == 1.0
    with pytest.raises(ValueError, match="percentage"):
        event_factor(ev(InfractionKind.MIN_SPEED), LB)
    events = [
        ev(InfractionKind.COLLISION_VEHICLE),
        ev(InfractionKind.RED_LIGHT),
        ev(InfractionKind.OUTSIDE_ROUTE_LANES, percentage=10.0, distance=12.0),
        ev(InfractionKind.MIN_SPEED, percentage=60.0),
        ev(ROUTE_COMPLETION, percentage=100.0),
    ]
    assert infraction_penalty(events, LB) == pytest.approx(0.6 * 0.7 * 0.9 * 0.88)
    assert infraction_penalty(events, B2D) == pytest.approx(0.6 * 0.7 * 0.9)
    s = score_route(events, 100.0, 250.0, LB)
    assert s.driving_score == pytest.approx(100 * 0.33264) and s.status == "Completed"
    assert s.counts["collisions_vehicle"] == 1 and s.counts["min_speed_infractions"] == 1
    assert s.outside_lanes_m == 12.0 and s.km_driven == pytest.approx(0.25)
    assert next(iter(s.infractions)) == "collisions_layout" and list(s.infractions)[-1] == "route_timeout"


def test_status_and_failure_messages():
    """'Perfect' without infraction lists, else 'Completed' when the route is done; otherwise 'Failed'
    with the last message of: the external failure, timeout, deviation, blocked (in that order)."""
    assert score_route([], 100.0, 100.0, LB).status == "Perfect"
    assert score_route([ev(InfractionKind.MIN_SPEED, percentage=99.0)], 100.0, 100.0, LB).status == "Completed"
    assert score_route([], 40.0, 100.0, LB).status == "Failed"
    blocked = score_route([ev(InfractionKind.AGENT_BLOCKED)], 40.0, 250.0, LB)
    assert blocked.status == "Failed - Agent got blocked" and blocked.driving_score == pytest.approx(40.0)
    both = [ev(InfractionKind.ROUTE_TIMEOUT), ev(InfractionKind.ROUTE_DEVIATION)]
    assert score_route(both, 10.0, 100.0, LB).status == "Failed - Agent deviated from the route"
    assert score_route([ev(InfractionKind.ROUTE_TIMEOUT)], 10.0, 100.0, LB).status == "Failed - Agent timed out"
    assert score_route([], 10.0, 100.0, LB, failure_message="Agent crashed").status == "Failed - Agent crashed"
    crashed_late = score_route([ev(InfractionKind.ROUTE_TIMEOUT)], 10.0, 100.0, LB, failure_message="Agent crashed")
    assert crashed_late.status == "Failed - Agent timed out"
    assert score_route([], 0.0, 0.0, LB).km_driven == 0.0  # a route whose map was missing
    for bad in (120.0, float("nan"), -1.0):
        with pytest.raises(ValueError, match="route_completion"):
            score_route([], bad, 100.0, LB)
    with pytest.raises(ValueError, match="route_length"):
        score_route([], 10.0, float("inf"), LB)


def test_bench2drive_success_and_efficiency():
    """merge_route_json.py: success = status Completed/Perfect with no infraction list but min speed
    non-empty; efficiency_smoothness_benchmark.py: mean min-speed value of a route, values > 1000 left out."""
    ms = [ev(InfractionKind.MIN_SPEED, percentage=p) for p in (50.0, 100.0, 1500.0)]
    s = score_route(ms, 100.0, 100.0, B2D)
    assert s.status == "Completed" and s.success is True and s.efficiency == pytest.approx(75.0)
    assert s.driving_score == 100.0  # min speed never lowers the score
    assert score_route([*ms, ev(InfractionKind.COLLISION_STATIC)], 100.0, 100.0, B2D).success is False
    assert score_route(ms, 99.0, 100.0, B2D).success is False
    assert score_route([], 100.0, 100.0, B2D).efficiency is None
    lb = score_route(ms, 100.0, 100.0, LB)
    assert lb.success is None and lb.efficiency is None
