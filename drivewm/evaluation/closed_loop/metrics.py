"""Closed-loop aggregation: one agent's route records → driving score, route completion and
infraction penalty as means over routes × seeds with 95 % Student-t intervals (undefined, `None`, for
a single run), infractions per km (totals over the km driven, floored at 1 m like the leaderboard),
failures, planner latency and rejections."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from carla_bridge.scoring import InfractionKind
from drivewm.evaluation.common.stats import mean_ci

PENALIZED_KINDS = [
    InfractionKind.COLLISION_PEDESTRIAN,
    InfractionKind.COLLISION_VEHICLE,
    InfractionKind.COLLISION_STATIC,
    InfractionKind.RED_LIGHT,
    InfractionKind.STOP_SIGN,
    InfractionKind.OUTSIDE_ROUTE_LANES,
    InfractionKind.MIN_SPEED,
    InfractionKind.ROUTE_DEVIATION,
    InfractionKind.AGENT_BLOCKED,
    InfractionKind.ROUTE_TIMEOUT,
]


def _round(v: float) -> float | None:
    """3 decimals; None for an undefined value (JSON has no NaN)."""
    return round(v, 3) if math.isfinite(v) else None


def aggregate_agent(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate of one agent's route records."""
    out: dict[str, Any] = {"runs": len(records)}
    for key in ("driving_score", "route_completion", "infraction_penalty"):
        ci = mean_ci([float(r[key]) for r in records])
        out[key] = {"mean": _round(ci["mean"]), "ci95": _round(ci["half"])}
    km = max(sum(float(r.get("km_driven", 0.0)) for r in records), 0.001)
    out["km_driven"] = round(km, 4)
    out["infractions_per_km"] = {
        k.value: round(sum(int(r.get("counts", {}).get(k.value, 0)) for r in records) / km, 3) for k in PENALIZED_KINDS
    }
    out["failures"] = sum(1 for r in records if r.get("failure"))
    out["failure_statuses"] = sorted({r["failure"]["status"] for r in records if r.get("failure")})
    wps = [r["timing"]["wall_per_sim_second"] for r in records if (r.get("timing") or {}).get("wall_per_sim_second")]
    out["wall_per_sim_second"] = round(float(np.mean(wps)), 4) if wps else None
    lat = [r["planner"]["latency_ms"] for r in records if (r.get("planner") or {}).get("latency_ms")]
    out["planner_latency_ms"] = (
        {k: round(float(np.mean([x[k] for x in lat])), 2) for k in ("p50", "p90", "p99", "max")} if lat else None
    )
    out["rejections"] = sum(int((r.get("planner") or {}).get("rejections", 0)) for r in records)
    out["fallbacks"] = sum(int((r.get("planner") or {}).get("fallbacks", 0)) for r in records)
    out["replans"] = sum(int((r.get("planner") or {}).get("replans", 0)) for r in records)
    return out


__all__ = ["PENALIZED_KINDS", "aggregate_agent"]
