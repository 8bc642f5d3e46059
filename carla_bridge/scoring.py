"""Scores of one route under a rule set, as `statistics_manager.compute_route_statistics` computes them.

Driving score = route completion [%] × infraction penalty, the penalty being the product over events
of the rule set's fixed factor (`RuleSet.penalties`) or, for percentage criteria
(`RuleSet.percentage_penalties`), `1 − (1 − p)·x/100` ('increases'), `1 − (1 − p)·(1 − x/100)`
('decreases') or 1 ('unused', Bench2Drive's min speed). Route deviation, agent blocked and route
timeout end the route without a penalty of their own. The status is 'Perfect' (completed, no
infraction), 'Completed' (completed with infractions, min-speed events included) or
'Failed[ - reason]'. Under Bench2Drive rules a route is a success when its status is one of the
success statuses and it has no infraction but min speed; its efficiency is the mean of its min-speed
checkpoint values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from carla_bridge.backend import Event
from carla_bridge.rules import RuleSet, load_rules


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


ROUTE_COMPLETION = "route_completion"
"""Kind of the (non-infraction) event a judging backend reports when a route ends; details
`percentage` is the route completion [%] (the leaderboard's ROUTE_COMPLETION event)."""

RECORD_ORDER: tuple[InfractionKind, ...] = (
    InfractionKind.COLLISION_STATIC,
    InfractionKind.COLLISION_PEDESTRIAN,
    InfractionKind.COLLISION_VEHICLE,
    InfractionKind.RED_LIGHT,
    InfractionKind.STOP_SIGN,
    InfractionKind.OUTSIDE_ROUTE_LANES,
    InfractionKind.MIN_SPEED,
    InfractionKind.YIELD_EMERGENCY,
    InfractionKind.SCENARIO_TIMEOUT,
    InfractionKind.ROUTE_DEVIATION,
    InfractionKind.AGENT_BLOCKED,
    InfractionKind.ROUTE_TIMEOUT,
)
"""The infraction keys of a route record, in `statistics_manager.RouteRecord` order."""

TERMINAL: frozenset[InfractionKind] = frozenset(
    {InfractionKind.ROUTE_DEVIATION, InfractionKind.AGENT_BLOCKED, InfractionKind.ROUTE_TIMEOUT}
)
"""Events that end the route (no penalty of their own; completion stops where the ego was)."""

FAILURE_REASONS: dict[InfractionKind, str] = {
    InfractionKind.ROUTE_TIMEOUT: "Agent timed out",
    InfractionKind.ROUTE_DEVIATION: "Agent deviated from the route",
    InfractionKind.AGENT_BLOCKED: "Agent got blocked",
}
"""The leaderboard's failure message per terminal event; later entries override earlier ones as in
`compute_route_statistics` (timeout first, then the criteria in tree order)."""


def event_factor(event: Event, rules: RuleSet | None = None) -> float:
    """The multiplicative penalty of one event under `rules` (default leaderboard-2.0; 1 for others)."""
    rules = rules or load_rules()
    kind = InfractionKind(event.kind).value
    if kind in rules.penalties:
        return rules.penalties[kind]
    if kind in rules.percentage_penalties:
        if "percentage" not in event.details:
            raise ValueError(f"event {kind!r} needs details['percentage']")
        x = float(event.details["percentage"])
        p = rules.percentage_penalties[kind]
        if p.type == "increases":
            return 1.0 - (1.0 - p.value) * x / 100.0
        if p.type == "decreases":
            return 1.0 - (1.0 - p.value) * (1.0 - x / 100.0)
        return 1.0
    return 1.0


def infraction_penalty(events: Iterable[Event], rules: RuleSet | None = None) -> float:
    """Product of `event_factor` over the (infraction) events."""
    rules = rules or load_rules()
    out = 1.0
    for e in events:
        if e.kind != ROUTE_COMPLETION:
            out *= event_factor(e, rules)
    return out


@dataclass
class RouteScore:
    """Scores of one route.

    Attributes:
        route_completion: [%] (0..100).
        infraction_penalty: product of the penalties (0..1].
        driving_score: max(route_completion × infraction_penalty, 0) [%].
        route_length: [m].
        km_driven: route_length · completion [km].
        counts: events per infraction key.
        infractions: infraction key → the events (as dicts), in `RECORD_ORDER`.
        status: "Perfect", "Completed" or "Failed[ - reason]".
        success: Bench2Drive success (None under rules without a benchmark).
        efficiency: mean min-speed checkpoint value [%] (Bench2Drive; None without checkpoints).
        outside_lanes_m: distance driven outside the route lanes [m].
    """

    route_completion: float
    infraction_penalty: float
    driving_score: float
    route_length: float
    km_driven: float
    counts: dict[str, int] = field(default_factory=dict)
    infractions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    status: str = "Failed"
    success: bool | None = None
    efficiency: float | None = None
    outside_lanes_m: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "route_completion": round(self.route_completion, 6),
            "infraction_penalty": round(self.infraction_penalty, 6),
            "driving_score": round(self.driving_score, 6),
            "route_length_m": round(self.route_length, 3),
            "km_driven": round(self.km_driven, 6),
            "counts": dict(self.counts),
            "infractions": {k: list(v) for k, v in self.infractions.items()},
            "status": self.status,
            "success": self.success,
            "efficiency": None if self.efficiency is None else round(self.efficiency, 3),
            "outside_lanes_m": round(self.outside_lanes_m, 3),
        }


def score_route(
    events: Sequence[Event],
    route_completion: float,
    route_length: float,
    rules: RuleSet | None = None,
    failure_message: str = "",
) -> RouteScore:
    """The scores of one route (statistics_manager `compute_route_statistics`).

    Args:
        events: every event of the run (a `ROUTE_COMPLETION` event is ignored here).
        route_completion: [%] in [0, 100] (100 only when the route was completed).
        route_length: [m] ≥ 0 (0: unknown, e.g. the route's map was missing).
        rules: the rule set (default leaderboard-2.0).
        failure_message: an external failure (agent crash, …) — overridden by a route timeout,
            deviation or blocked event, as in the reference.
    """
    rules = rules or load_rules()
    if not (math.isfinite(route_completion) and 0.0 <= route_completion <= 100.0 + 1e-6):
        raise ValueError(f"route_completion must lie in [0, 100], got {route_completion}")
    if not (math.isfinite(route_length) and route_length >= 0):
        raise ValueError(f"route_length must be finite and ≥ 0, got {route_length}")
    rc = min(route_completion, 100.0)
    infra = [e for e in events if e.kind != ROUTE_COMPLETION]
    penalty = infraction_penalty(infra, rules)
    lists: dict[str, list[dict[str, Any]]] = {k.value: [] for k in RECORD_ORDER}
    for e in infra:
        lists[InfractionKind(e.kind).value].append(e.to_dict())
    reason = failure_message
    for kind in (InfractionKind.ROUTE_TIMEOUT, InfractionKind.ROUTE_DEVIATION, InfractionKind.AGENT_BLOCKED):
        if lists[kind.value]:
            reason = FAILURE_REASONS[kind]
    num_infractions = sum(len(v) for v in lists.values())
    if rc >= 100.0:
        status = "Completed" if num_infractions else "Perfect"
    else:
        status = "Failed" + (f" - {reason}" if reason else "")
    success = efficiency = None
    bench = rules.benchmark
    if bench is not None:
        success = status in bench.success_statuses and not any(
            v for k, v in lists.items() if k not in bench.success_ignores
        )
        values = [
            float(e["details"]["percentage"])
            for e in lists[InfractionKind.MIN_SPEED.value]
            if float(e["details"]["percentage"]) <= bench.efficiency_max_percentage
        ]
        efficiency = sum(values) / len(values) if values else None
    outside = lists[InfractionKind.OUTSIDE_ROUTE_LANES.value]
    return RouteScore(
        route_completion=rc,
        infraction_penalty=penalty,
        driving_score=max(rc * penalty, 0.0),
        route_length=route_length,
        km_driven=route_length / 1000.0 * rc / 100.0,
        counts={k: len(v) for k, v in lists.items()},
        infractions=lists,
        status=status,
        success=success,
        efficiency=efficiency,
        outside_lanes_m=float(outside[0]["details"].get("distance", 0.0)) if outside else 0.0,
    )
