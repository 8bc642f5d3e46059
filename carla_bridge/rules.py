"""Closed-loop rule sets: every parameter of every criterion and of the scoring, frozen and versioned.

A rule set is a JSON file (`carla_bridge/data/rules/<name>.json`, like the nuScenes devkit's
`configs/*.json`) read into frozen dataclasses; a change of protocol gets a new version and old
numbers stay reproducible. Two ship:

- `leaderboard-2.0` (default): the CARLA Leaderboard 2.0 criteria as `route_scenario._create_test_criteria`
  builds them, penalties and records of `statistics_manager.py` (carla-simulator/leaderboard and
  scenario_runner, branch `leaderboard-2.0`);
- `bench2drive`: Bench2Drive's fork (Thinklab-SJTU/Bench2Drive): min speed over 20 checkpoints,
  logged at every checkpoint and never penalized, blocked after 60 s, plus its benchmark metrics
  (success, per-ability success, efficiency, smoothness).

`load_rules(name_or_path)` returns a `RuleSet`; an unknown key or a bad value is a `ValueError`
naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

RULES_DIR = Path(__file__).resolve().parent / "data" / "rules"
DEFAULT_RULES = "leaderboard-2.0"
PENALTY_TYPES = ("increases", "decreases", "unused")
"""How a percentage criterion lowers the score (statistics_manager `PENALTY_PERC_DICT`; 'unused' is
Bench2Drive's: logged, never applied)."""


@dataclass(frozen=True)
class PercentagePenalty:
    """Penalty of a percentage criterion: factor `1 − (1 − value)·x/100` ('increases': x is the bad
    share), `1 − (1 − value)·(1 − x/100)` ('decreases': 100 is ideal), or none ('unused')."""

    value: float
    type: str


@dataclass(frozen=True)
class CompletionRule:
    """RouteCompletionTest: route waypoints passed (window of `window` + 1 ahead); complete when above
    `percentage_threshold` [%] and within `distance_threshold` [m] of the last waypoint."""

    window: int
    distance_threshold: float
    percentage_threshold: float


@dataclass(frozen=True)
class CollisionRule:
    """CollisionTest: a contact counts only while the ego moves at ≥ `min_ego_speed` [m/s]; contacts
    within `radius` [m] of the last counted one, or with its actor within `max_id_time` [s], are the
    same collision."""

    radius: float
    max_id_time: float
    min_ego_speed: float


@dataclass(frozen=True)
class RedLightRule:
    """RunningRedLightTest: the segment from `tail_close`·half-length behind the ego's centre to
    `tail_far_margin` [m] behind its rear crosses a red light's stop line (± `stop_line_half_width`
    lane widths) within `distance_light` [m] of the light; stop lines lie on the approach lanes'
    last `waypoint_step` [m] before the junction."""

    distance_light: float
    tail_close: float
    tail_far_margin: float
    stop_line_half_width: float
    waypoint_step: float


@dataclass(frozen=True)
class StopSignRule:
    """RunningStopTest: a sign affects the ego while its lane waypoint is within `proximity` [m] of the
    sign's trigger box and one of its waypoints `waypoint_step` apart up to `proximity` ahead lies in
    the box grown by `box_multiplier` (box half size `box_lane_fraction` × half the lane width); the
    ego must drop below `speed` [m/s] before it leaves; scans stop below `reverse_cos`."""

    proximity: float
    speed: float
    waypoint_step: float
    box_multiplier: float
    box_lane_fraction: float
    reverse_cos: float


@dataclass(frozen=True)
class OutsideLanesRule:
    """OutsideRouteLanesTest: outside when farther than half a lane width + `allowed_out_distance` [m]
    from every driving/parking lane centre, or in the wrong direction (lane-direction changes above
    `max_waypoint_angle` [deg], or leaving a junction more than `max_vehicle_angle` [deg] off the lane);
    distance measured over route waypoints passed (window `window`)."""

    allowed_out_distance: float
    max_vehicle_angle: float
    max_waypoint_angle: float
    window: int


@dataclass(frozen=True)
class RouteDeviationRule:
    """InRouteTest: deviated when the nearest route waypoint (window `window`) is ≥ `offroad_max` [m]
    away, or when the route driven beyond `offroad_min` [m] exceeds `max_route_percentage` [%]."""

    offroad_max: float
    offroad_min: float
    max_route_percentage: float
    window: int


@dataclass(frozen=True)
class MinSpeedRule:
    """MinimumSpeedRouteTest: at each of `checkpoints` equal route parts, the ego's mean speed over the
    mean speed of all background vehicles (per frame, stopped ones at 0) ×`ratio`, in %; the last
    part is judged when the route ends beyond `final_fraction`; an event below 100 % (or at every
    checkpoint with `event_every_checkpoint`, Bench2Drive)."""

    checkpoints: int
    window: int
    ratio: float
    final_fraction: float
    event_every_checkpoint: bool


@dataclass(frozen=True)
class BlockedRule:
    """ActorBlockedTest: below `min_speed` [m/s] for more than `max_time` [s] ends the route."""

    min_speed: float
    max_time: float


@dataclass(frozen=True)
class RouteTimeoutRule:
    """RouteTimeoutBehavior: the budget starts at `min_timeout` [s] and grows by each metre of route
    passed (window `window`) over `speed_percentage` % of the speed limit there."""

    min_timeout: float
    speed_percentage: float
    window: int


@dataclass(frozen=True)
class ComfortRule:
    """Bench2Drive smoothness (tools/efficiency_smoothness_benchmark.py): Savitzky–Golay filtered
    (`window_size`, `poly_order`, derivative step `time_interval` [s]) ego signals within bounds on
    every `segment_steps`-sample segment."""

    window_size: int
    poly_order: int
    time_interval: float
    segment_steps: int
    max_abs_mag_jerk: float
    max_abs_lat_accel: float
    max_lon_accel: float
    min_lon_accel: float
    max_abs_yaw_accel: float
    max_abs_lon_jerk: float
    max_abs_yaw_rate: float


@dataclass(frozen=True)
class BenchmarkRule:
    """Bench2Drive's benchmark metrics.

    Attributes:
        success_statuses: route statuses that can be a success.
        success_ignores: infraction keys that do not spoil a success.
        abilities: ability → scenario types (a route belongs to the abilities of its first scenario's type).
        traffic_signs_ability: the ability whose failed routes still count when they got
            `traffic_signs_junction_waypoints` route waypoints past the first junction without a red
            light or stop infraction.
        traffic_signs_junction_waypoints: see above.
        efficiency_max_percentage: min-speed checkpoint values above this are left out of efficiency [%].
        comfort: the smoothness rule.
    """

    success_statuses: tuple[str, ...]
    success_ignores: tuple[str, ...]
    abilities: dict[str, tuple[str, ...]]
    traffic_signs_ability: str
    traffic_signs_junction_waypoints: int
    efficiency_max_percentage: float
    comfort: ComfortRule

    def abilities_of(self, scenario_type: str | None) -> list[str]:
        """The abilities a route whose first scenario is `scenario_type` counts for (may be several)."""
        if scenario_type is None:
            return []
        return [a for a, types in self.abilities.items() if scenario_type in types]


@dataclass(frozen=True)
class RuleSet:
    """One frozen, versioned rule set (see the module docstring).

    Attributes:
        name, version, description, references: identity and provenance.
        route_spacing: the route's waypoint spacing as the criteria see it (the leaderboard
            interpolates routes at 1 m) [m].
        penalties: infraction key → multiplicative penalty per event.
        percentage_penalties: infraction key → `PercentagePenalty`.
        completion … route_timeout: the criteria's parameters.
        benchmark: Bench2Drive's metrics (None for the leaderboard).
    """

    name: str
    version: int
    description: str
    references: tuple[str, ...]
    route_spacing: float
    penalties: dict[str, float]
    percentage_penalties: dict[str, PercentagePenalty]
    completion: CompletionRule
    collision: CollisionRule
    red_light: RedLightRule
    stop_sign: StopSignRule
    outside_lanes: OutsideLanesRule
    route_deviation: RouteDeviationRule
    min_speed: MinSpeedRule
    blocked: BlockedRule
    route_timeout: RouteTimeoutRule
    benchmark: BenchmarkRule | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the file's content)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def digest(self) -> str:
        """sha256 (first 12 hex digits) of the canonical content: two equal digests, equal rules."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """`name@vversion`."""
        return f"{self.name}@v{self.version}"


_SECTIONS = {
    "completion": CompletionRule,
    "collision": CollisionRule,
    "red_light": RedLightRule,
    "stop_sign": StopSignRule,
    "outside_lanes": OutsideLanesRule,
    "route_deviation": RouteDeviationRule,
    "min_speed": MinSpeedRule,
    "blocked": BlockedRule,
    "route_timeout": RouteTimeoutRule,
}


def available_rules() -> list[str]:
    """Names of the rule sets that ship (`carla_bridge/data/rules/*.json`)."""
    return sorted(p.stem for p in RULES_DIR.glob("*.json"))


def resolve_rules(name_or_path: str | Path) -> Path:
    """The JSON file of a shipped rule set name, or a path to one."""
    p = Path(name_or_path).expanduser()
    if p.suffix == ".json" and p.is_file():
        return p
    cand = RULES_DIR / f"{name_or_path}.json"
    if cand.is_file():
        return cand
    raise ValueError(f"unknown rule set {str(name_or_path)!r}: choose one of {available_rules()} or a .json path")


@lru_cache(maxsize=16)
def _load(path: str, mtime: float) -> RuleSet:
    try:
        raw = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"rule set {path}: not valid JSON ({err})") from None
    return rules_from_dict(raw, where=path)


def load_rules(name_or_path: str | Path | RuleSet = DEFAULT_RULES) -> RuleSet:
    """A `RuleSet` by name (`leaderboard-2.0`, `bench2drive`) or JSON path (cached; a `RuleSet` passes through)."""
    if isinstance(name_or_path, RuleSet):
        return name_or_path
    path = resolve_rules(name_or_path)
    return _load(str(path.resolve()), path.stat().st_mtime)


def _section(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be an object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    missing = sorted(set(fields) - set(raw))
    if unknown or missing:
        raise ValueError(f"{where}: unknown fields {unknown}, missing fields {missing}")
    out = {}
    for name, f in fields.items():
        v = raw[name]
        kind = str(f.type)
        if kind == "bool":
            if not isinstance(v, bool):
                raise ValueError(f"{where}.{name}: must be true or false, got {v!r}")
        elif kind == "int":
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{where}.{name}: must be a non-negative integer, got {v!r}")
        elif kind == "float":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{where}.{name}: must be a finite number, got {v!r}")
            v = float(v)
        out[name] = v
    return cls(**out)


def _positive(where: str, **values: float) -> None:
    for k, v in values.items():
        if not v > 0:
            raise ValueError(f"{where}.{k}: must be positive, got {v}")


def rules_from_dict(raw: dict[str, Any], where: str = "rules") -> RuleSet:
    """Build and validate a `RuleSet` from its JSON content (`ValueError` naming `where` and the field)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a rule set must be a JSON object")
    top = {f.name for f in dataclasses.fields(RuleSet)}
    unknown, missing = sorted(set(raw) - top), sorted(top - set(raw))
    if unknown or missing:
        raise ValueError(f"{where}: unknown fields {unknown}, missing fields {missing}")
    name, version = raw["name"], raw["version"]
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: must be a non-empty string")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{where}.version: must be an integer ≥ 1, got {version!r}")
    penalties = raw["penalties"]
    if not isinstance(penalties, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in penalties.values()
    ):
        raise ValueError(f"{where}.penalties: must map infraction keys to factors in [0, 1]")
    perc = {}
    for key, p in dict(raw["percentage_penalties"]).items():
        pp = _section(PercentagePenalty, p, f"{where}.percentage_penalties.{key}")
        if pp.type not in PENALTY_TYPES or not 0.0 <= pp.value <= 1.0:
            raise ValueError(
                f"{where}.percentage_penalties.{key}: type must be one of {PENALTY_TYPES} and value in [0, 1]"
            )
        perc[key] = pp
    sections = {k: _section(cls, raw[k], f"{where}.{k}") for k, cls in _SECTIONS.items()}
    ms, rt = sections["min_speed"], sections["route_timeout"]
    _positive(f"{where}.min_speed", checkpoints=ms.checkpoints, ratio=ms.ratio)
    _positive(f"{where}.route_timeout", speed_percentage=rt.speed_percentage)
    _positive(where, route_spacing=float(raw["route_spacing"]))
    bench = raw["benchmark"]
    if bench is not None:
        b = dict(bench)
        comfort = _section(ComfortRule, b.pop("comfort", None), f"{where}.benchmark.comfort")
        if comfort.poly_order >= comfort.window_size:
            raise ValueError(f"{where}.benchmark.comfort: poly_order must be below window_size")
        abilities = b.get("abilities")
        if not isinstance(abilities, dict) or not all(isinstance(v, list) for v in abilities.values()):
            raise ValueError(f"{where}.benchmark.abilities: must map ability names to lists of scenario types")
        b["abilities"] = {k: tuple(v) for k, v in abilities.items()}
        for key in ("success_statuses", "success_ignores"):
            b[key] = tuple(b.get(key, ()))
        b["comfort"] = comfort
        try:
            bench = BenchmarkRule(**b)
        except TypeError as err:
            raise ValueError(f"{where}.benchmark: {err}") from None
        if bench.traffic_signs_ability not in bench.abilities:
            raise ValueError(f"{where}.benchmark.traffic_signs_ability: {bench.traffic_signs_ability!r} is no ability")
    return RuleSet(
        name=name,
        version=version,
        description=str(raw["description"]),
        references=tuple(raw["references"]),
        route_spacing=float(raw["route_spacing"]),
        penalties={k: float(v) for k, v in penalties.items()},
        percentage_penalties=perc,
        benchmark=bench,
        **sections,
    )
