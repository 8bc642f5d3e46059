"""Leaderboard-2.0 scoring: one penalty table, route completion, driving score, infractions per km.

Driving score of a route = route completion [%] × infraction penalty, where the penalty is the
product over events of a fixed factor (`PENALTY_VALUE`) or, for percentage criteria
(`PENALTY_PERCENT`), `1 − (1 − p)·x/100` ("increases": x is the bad share) or
`1 − (1 − p)·(1 − x/100)` ("decreases": x is the achieved share, 100 is ideal). Route deviation,
agent blocked and route timeout end the route without a penalty of their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from carla_bridge.backend import Event


class InfractionKind(str, Enum):
    """Event kinds (values are the leaderboard's result keys)."""

    COLLISION_PEDESTRIAN = "collisions_pedestrian"
    COLLISION_VEHICLE = "collisions_vehicle"
    COLLISION_STATIC = "collisions_layout"
    RED_LIGHT = "red_light"
    STOP_SIGN = "stop_infraction"
    OUTSIDE_ROUTE_LANES = "outside_route_lanes"
    MIN_SPEED = "min_speed_infractions"
    YIELD_EMERGENCY = "yield_emergency_vehicle_infractions"
    SCENARIO_TIMEOUT = "scenario_timeouts"
    ROUTE_DEVIATION = "route_dev"
    AGENT_BLOCKED = "vehicle_blocked"
    ROUTE_TIMEOUT = "route_timeout"


PENALTY_VALUE: dict[InfractionKind, float] = {
    InfractionKind.COLLISION_PEDESTRIAN: 0.5,
    InfractionKind.COLLISION_VEHICLE: 0.6,
    InfractionKind.COLLISION_STATIC: 0.65,
    InfractionKind.RED_LIGHT: 0.7,
    InfractionKind.STOP_SIGN: 0.8,
    InfractionKind.SCENARIO_TIMEOUT: 0.7,
    InfractionKind.YIELD_EMERGENCY: 0.7,
}
"""Multiplicative penalty per event."""

PENALTY_PERCENT: dict[InfractionKind, tuple[float, str]] = {
    InfractionKind.OUTSIDE_ROUTE_LANES: (0.0, "increases"),
    InfractionKind.MIN_SPEED: (0.7, "decreases"),
}
"""(per-unit penalty, direction) of the percentage criteria; events carry details["percentage"]."""

TERMINAL: frozenset[InfractionKind] = frozenset(
    {InfractionKind.ROUTE_DEVIATION, InfractionKind.AGENT_BLOCKED, InfractionKind.ROUTE_TIMEOUT}
)
"""Events that end the route (no penalty of their own; completion stops where the ego was)."""


def event_factor(event: Event) -> float:
    """The multiplicative penalty of one event (1.0 for non-penalized kinds)."""
    kind = InfractionKind(event.kind)
    if kind in PENALTY_VALUE:
        return PENALTY_VALUE[kind]
    if kind in PENALTY_PERCENT:
        if "percentage" not in event.details:
            raise ValueError(f"event {kind.value!r} needs details['percentage']")
        x = float(event.details["percentage"])
        p, direction = PENALTY_PERCENT[kind]
        if direction == "increases":
            return 1.0 - (1.0 - p) * x / 100.0
        return 1.0 - (1.0 - p) * (1.0 - x / 100.0)
    return 1.0


def infraction_penalty(events: Iterable[Event]) -> float:
    """Product of `event_factor` over the events."""
    out = 1.0
    for e in events:
        out *= event_factor(e)
    return out


@dataclass
class RouteScore:
    """Scores of one route.

    Attributes:
        route_completion: [%] of the route length driven (0..100).
        infraction_penalty: product of the penalties (0..1].
        driving_score: route_completion × infraction_penalty [%].
        route_length: [m].
        km_driven: route_length · completion [km].
        counts: events per kind value.
        status: "Perfect", "Completed" or "Failed - <reason>".
    """

    route_completion: float
    infraction_penalty: float
    driving_score: float
    route_length: float
    km_driven: float
    counts: dict[str, int] = field(default_factory=dict)
    status: str = "Failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "route_completion": round(self.route_completion, 3),
            "infraction_penalty": round(self.infraction_penalty, 4),
            "driving_score": round(self.driving_score, 3),
            "route_length_m": round(self.route_length, 2),
            "km_driven": round(self.km_driven, 4),
            "counts": dict(self.counts),
            "status": self.status,
        }


def score_route(events: Sequence[Event], route_completion: float, route_length: float) -> RouteScore:
    """Leaderboard-2.0 scores of one route.

    Args:
        events: every event of the run.
        route_completion: [%] in [0, 100].
        route_length: [m] > 0.
    """
    if not (math.isfinite(route_completion) and 0.0 <= route_completion <= 100.0 + 1e-6):
        raise ValueError(f"route_completion must lie in [0, 100], got {route_completion}")
    if not (math.isfinite(route_length) and route_length > 0):
        raise ValueError(f"route_length must be positive, got {route_length}")
    rc = min(route_completion, 100.0)
    penalty = infraction_penalty(events)
    counts = {k.value: 0 for k in InfractionKind}
    for e in events:
        counts[InfractionKind(e.kind).value] += 1
    terminal = [InfractionKind(e.kind) for e in events if InfractionKind(e.kind) in TERMINAL]
    if rc >= 100.0 - 1e-6:
        n_penal = sum(v for k, v in counts.items() if k not in {t.value for t in TERMINAL})
        status = "Perfect" if n_penal == 0 else "Completed"
    else:
        status = "Failed" + (f" - {terminal[0].value}" if terminal else "")
    return RouteScore(
        route_completion=rc,
        infraction_penalty=penalty,
        driving_score=rc * penalty,
        route_length=route_length,
        km_driven=route_length / 1000.0 * rc / 100.0,
        counts=counts,
        status=status,
    )


def infractions_per_km(scores: Sequence[RouteScore]) -> dict[str, float]:
    """Event counts per km driven over several routes (percentage criteria summed as counts),
    with km driven floored at 1 m like the leaderboard."""
    km = max(sum(s.km_driven for s in scores), 0.001)
    totals: dict[str, float] = {k.value: 0.0 for k in InfractionKind}
    for s in scores:
        for k, v in s.counts.items():
            totals[k] += v
    return {k: v / km for k, v in totals.items()}


def aggregate(scores: Sequence[RouteScore]) -> dict[str, float]:
    """Mean route completion, penalty and driving score over routes."""
    if not scores:
        raise ValueError("aggregate needs at least one route score")
    n = len(scores)
    return {
        "route_completion": sum(s.route_completion for s in scores) / n,
        "infraction_penalty": sum(s.infraction_penalty for s in scores) / n,
        "driving_score": sum(s.driving_score for s in scores) / n,
        "km_driven": sum(s.km_driven for s in scores),
    }
