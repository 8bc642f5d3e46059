"""Leaderboard-2.0 scoring on hand-computed cases."""

import pytest

from carla_bridge.backend import Event
from carla_bridge.scoring import (
    InfractionKind,
    aggregate,
    event_factor,
    infractions_per_km,
    score_route,
)


def ev(kind, **details):
    return Event(kind=kind.value, time=1.0, location=(0.0, 0.0), details=details)


def test_penalty_table():
    assert event_factor(ev(InfractionKind.COLLISION_PEDESTRIAN)) == 0.5
    assert event_factor(ev(InfractionKind.COLLISION_VEHICLE)) == 0.6
    assert event_factor(ev(InfractionKind.COLLISION_STATIC)) == 0.65
    assert event_factor(ev(InfractionKind.RED_LIGHT)) == 0.7
    assert event_factor(ev(InfractionKind.STOP_SIGN)) == 0.8
    assert event_factor(ev(InfractionKind.SCENARIO_TIMEOUT)) == 0.7
    assert event_factor(ev(InfractionKind.YIELD_EMERGENCY)) == 0.7
    assert event_factor(ev(InfractionKind.ROUTE_DEVIATION)) == 1.0
    # outside lanes "increases": 1 - 1 * 12/100
    assert event_factor(ev(InfractionKind.OUTSIDE_ROUTE_LANES, percentage=12.0)) == pytest.approx(0.88)
    # min speed "decreases": 1 - 0.3 * (1 - 60/100)
    assert event_factor(ev(InfractionKind.MIN_SPEED, percentage=60.0)) == pytest.approx(0.88)
    with pytest.raises(ValueError, match="percentage"):
        event_factor(ev(InfractionKind.MIN_SPEED))


def test_driving_score_hand_computed():
    events = [
        ev(InfractionKind.COLLISION_VEHICLE),
        ev(InfractionKind.RED_LIGHT),
        ev(InfractionKind.OUTSIDE_ROUTE_LANES, percentage=10.0),
    ]
    s = score_route(events, route_completion=80.0, route_length=500.0)
    penalty = 0.6 * 0.7 * 0.9
    assert s.infraction_penalty == pytest.approx(penalty)
    assert s.driving_score == pytest.approx(80.0 * penalty)  # 30.24
    assert s.km_driven == pytest.approx(0.4)
    assert s.counts["collisions_vehicle"] == 1 and s.status == "Failed"
    perfect = score_route([], 100.0, 250.0)
    assert perfect.driving_score == 100.0 and perfect.status == "Perfect"
    two_peds = score_route([ev(InfractionKind.COLLISION_PEDESTRIAN)] * 2, 100.0, 250.0)
    assert two_peds.driving_score == pytest.approx(25.0) and two_peds.status == "Completed"
    blocked = score_route([ev(InfractionKind.AGENT_BLOCKED)], 40.0, 250.0)
    assert blocked.driving_score == pytest.approx(40.0) and blocked.status == "Failed - vehicle_blocked"


def test_per_km_and_aggregate():
    a = score_route([ev(InfractionKind.COLLISION_VEHICLE)], 100.0, 1000.0)
    b = score_route([ev(InfractionKind.COLLISION_VEHICLE), ev(InfractionKind.STOP_SIGN)], 50.0, 2000.0)
    rates = infractions_per_km([a, b])
    assert rates["collisions_vehicle"] == pytest.approx(2 / 2.0)
    assert rates["stop_infraction"] == pytest.approx(1 / 2.0)
    agg = aggregate([a, b])
    assert agg["driving_score"] == pytest.approx((60.0 + 50.0 * 0.6 * 0.8) / 2)


def test_bad_inputs():
    with pytest.raises(ValueError, match="route_completion"):
        score_route([], 120.0, 100.0)
    with pytest.raises(ValueError, match="route_length"):
        score_route([], 50.0, 0.0)
    with pytest.raises(ValueError):
        score_route([Event("no_such_kind", 0.0, (0.0, 0.0))], 50.0, 10.0)
