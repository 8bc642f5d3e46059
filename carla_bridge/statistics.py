"""Aggregate route records over routes × seeds (pure functions; the evaluation reports call them).

`global_statistics(records, rules)` computes what `statistics_manager.compute_global_statistics`
computes — the means of driving score, route completion and infraction penalty over the runs, their
standard deviations (n − 1), the global status, the failed runs, the km driven (route length ×
completion), and per infraction key the events per km driven (floored at 1 m), except
`outside_route_lanes`, which the reference reports as the total km driven outside the route lanes —
and adds the 95 % confidence interval of each mean (Student t over runs) and the per-seed means.
Under Bench2Drive rules it also gives `bench2drive_statistics`: driving score, success rate,
efficiency (mean over runs with min-speed checkpoints of their mean checkpoint value), smoothness
(mean route comfort) and success per ability (`tools/ability_benchmark.py`, including its rule that a
failed traffic-sign route still succeeds for the Traffic_Signs ability once it got past its first
junction without a red light or stop infraction).

A record is a dict with at least `driving_score`, `route_completion`, `infraction_penalty`,
`route_length_m`, `status`, `infractions` (key → list of events), `seed`, `route_id`; under
Bench2Drive also `success`, `efficiency`, `comfort`, `scenario_type`, `junction_completion`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from carla_bridge.rules import RuleSet, load_rules
from carla_bridge.scoring import RECORD_ORDER, InfractionKind

SCORE_KEYS = ("driving_score", "route_completion", "infraction_penalty")


def mean_ci(values: Sequence[float | None], confidence: float = 0.95) -> tuple[float, float, int]:
    """(mean, half width of the `confidence` interval (Student t), n) of the finite values; the half width
    is NaN with fewer than two (an interval needs two runs), the mean NaN with none."""
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(a)
    if n == 0:
        return float("nan"), float("nan"), 0
    if n == 1:
        return float(a[0]), float("nan"), 1
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2.0, n - 1) * a.std(ddof=1) / math.sqrt(n))
    return float(a.mean()), half, n


def _round(v: float, digits: int = 6) -> float | None:
    """Rounded; None for an undefined value (JSON has no NaN)."""
    return round(v, digits) if math.isfinite(v) else None


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """{mean, std (n − 1; 0 for one run, as the leaderboard), ci95 (None for one run), n}."""
    m, h, n = mean_ci(values)
    a = np.asarray(values, dtype=np.float64)
    std = float(a.std(ddof=1)) if n > 1 else 0.0
    return {"mean": _round(m), "std": round(std, 3), "ci95": _round(h), "n": n}


def km_driven(record: dict[str, Any]) -> float:
    """Route length × completion of one record [km]."""
    return float(record.get("route_length_m") or 0.0) / 1000.0 * float(record["route_completion"]) / 100.0


def infraction_values(record: dict[str, Any]) -> dict[str, float]:
    """Per infraction key what a record adds to the global tally (`get_infractions_value`): the number
    of events, but the km driven outside the route lanes for `outside_route_lanes`."""
    out = {}
    for kind in RECORD_ORDER:
        events = record.get("infractions", {}).get(kind.value, [])
        if kind is InfractionKind.OUTSIDE_ROUTE_LANES:
            out[kind.value] = float(events[0]["details"].get("distance", 0.0)) / 1000.0 if events else 0.0
        else:
            out[kind.value] = float(len(events))
    return out


def global_statistics(records: Sequence[dict[str, Any]], rules: RuleSet | None = None) -> dict[str, Any]:
    """The global record of a set of runs (see the module docstring).

    Returns:
        {rules, runs, scores {key: {mean, std, ci95, n}}, by_seed {seed: {key: mean}}, by_route and
        by_scenario_type {key: {runs, driving_score, route_completion (mean, ci95)[, success_rate]}}, status, exceptions
        [(route_id, seed, status)], total_length_m, km_driven, infractions {key: per km (outside lanes: km)},
        infraction_totals {key: count (outside lanes: km)}, and `bench2drive` under rules with a benchmark}.
    """
    rules = rules or load_rules()
    if not records:
        raise ValueError("global_statistics needs at least one route record")
    status = "Perfect"
    exceptions = []
    for r in records:
        s = "Failed" if "Failed" in r["status"] else r["status"]
        if s == "Failed":
            exceptions.append((str(r.get("route_id")), r.get("seed"), r["status"]))
            status = "Failed"
        elif status == "Perfect" and s != "Perfect":
            status = s
    km = max(sum(km_driven(r) for r in records), 0.001)
    totals = {k.value: 0.0 for k in RECORD_ORDER}
    for r in records:
        for k, v in infraction_values(r).items():
            totals[k] += v
    per_km = {k: round(v if k == InfractionKind.OUTSIDE_ROUTE_LANES.value else v / km, 3) for k, v in totals.items()}
    seeds = _group(records, "seed")
    out: dict[str, Any] = {
        "rules": {"name": rules.name, "version": rules.version, "digest": rules.digest},
        "runs": len(records),
        "scores": {k: _summary([float(r[k]) for r in records]) for k in SCORE_KEYS},
        "by_seed": {
            str(seed): {k: round(float(np.mean([float(r[k]) for r in rs])), 6) for k in SCORE_KEYS}
            for seed, rs in sorted(seeds.items(), key=lambda kv: str(kv[0]))
        },
        "by_route": {str(k): _group_summary(rs) for k, rs in sorted(_group(records, "route_id").items(), key=_order)},
        "by_scenario_type": {
            str(k): _group_summary(rs) for k, rs in sorted(_group(records, "scenario_type").items(), key=_order) if k
        },
        "status": status,
        "exceptions": exceptions,
        "total_length_m": round(sum(float(r.get("route_length_m") or 0.0) for r in records), 3),
        "km_driven": round(km, 6),
        "infractions": per_km,
        "infraction_totals": {k: round(v, 6) for k, v in totals.items()},
    }
    if rules.benchmark is not None:
        out["bench2drive"] = bench2drive_statistics(records, rules)
    return out


def _group(records: Sequence[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r.get(key), []).append(r)
    return out


def _order(item: tuple[Any, Any]) -> tuple[int, str]:
    k = str(item[0])
    return (int(k), "") if k.isdigit() else (1 << 30, k)


def _group_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs, driving score and route completion (mean ± ci95), and the success rate where known."""
    ds, rc = (
        mean_ci([float(r["driving_score"]) for r in records]),
        mean_ci([float(r["route_completion"]) for r in records]),
    )
    out = {
        "runs": len(records),
        "driving_score": {"mean": _round(ds[0]), "ci95": _round(ds[1])},
        "route_completion": {"mean": _round(rc[0]), "ci95": _round(rc[1])},
    }
    known = [bool(r["success"]) for r in records if r.get("success") is not None]
    if known:
        out["success_rate"] = sum(known) / len(known)
    return out


def traffic_sign_success(record: dict[str, Any]) -> bool:
    """A failed traffic-sign route that still counts for the Traffic_Signs ability: it got beyond the
    first junction (completion above `junction_completion`) without a red-light or stop infraction."""
    jc = record.get("junction_completion")
    if jc is None:
        return False
    inf = record.get("infractions", {})
    ran = inf.get(InfractionKind.RED_LIGHT.value) or inf.get(InfractionKind.STOP_SIGN.value)
    return float(record["route_completion"]) / 100.0 > float(jc) and not ran


def bench2drive_statistics(records: Sequence[dict[str, Any]], rules: RuleSet) -> dict[str, Any]:
    """Bench2Drive's benchmark numbers of a set of runs (see the module docstring).

    Returns:
        {driving_score, success_rate [0, 1] (mean ± ci95), efficiency [%], smoothness [0, 1],
        abilities {ability: {success, total, rate}}, ability_mean, per_type {type: {success, total}}}.
    """
    bench = rules.benchmark
    if bench is None:
        raise ValueError(f"rule set {rules.name!r} has no benchmark metrics")
    success = [1.0 if r.get("success") else 0.0 for r in records]
    eff = [float(r["efficiency"]) for r in records if r.get("efficiency") is not None]
    comfort = [float(r["comfort"]) for r in records if r.get("comfort") is not None]
    abilities = {a: [0, 0] for a in bench.abilities}
    per_type: dict[str, list[int]] = {}
    for r in records:
        t = r.get("scenario_type")
        ok = bool(r.get("success"))
        for a in bench.abilities_of(t):
            abilities[a][1] += 1
            abilities[a][0] += int(ok)
        if t is not None:
            per_type.setdefault(t, [0, 0])
            per_type[t][1] += 1
            per_type[t][0] += int(ok)
        if not ok and t in bench.abilities[bench.traffic_signs_ability] and traffic_sign_success(r):
            abilities[bench.traffic_signs_ability][0] += 1
    rates = {a: (s / n if n else None) for a, (s, n) in abilities.items()}
    present = [v for v in rates.values() if v is not None]
    return {
        "driving_score": _summary([float(r["driving_score"]) for r in records]),
        "success_rate": _summary(success),
        "efficiency": _summary(eff) if eff else None,
        "smoothness": _summary(comfort) if comfort else None,
        "abilities": {a: {"success": s, "total": n, "rate": rates[a]} for a, (s, n) in abilities.items()},
        "ability_mean": float(np.mean(present)) if present else None,
        "per_type": {t: {"success": s, "total": n} for t, (s, n) in sorted(per_type.items())},
    }
