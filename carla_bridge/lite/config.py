"""Configuration of the lite simulator (frozen dataclass, SI units)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.bicycle import BicycleParams
from agents.idm import IDMParams
from carla_bridge.rules import RuleSet, load_rules


@dataclass(frozen=True)
class LiteConfig:
    """Lite simulator settings.

    Attributes:
        dt: simulation step [s] (20 Hz as the CARLA leaderboard).
        num_vehicles: background vehicles per world.
        num_pedestrians: pedestrians per world.
        num_parked: parked cars at road edges.
        num_props: cones and barriers at road edges.
        spawn_radius: background agents spawn within this distance of the ego's route [m]
            (None: anywhere in the town).
        ego_clearance: no agent spawns within this distance of the ego's start [m].
        lookahead_step: spacing of the path points vehicles check for obstacles [m].
        lookahead_points: number of those points (lookahead = step × points).
        clearance_margin: lateral margin beyond half widths for "on my path" [m].
        obstacle_candidates: obstacles per vehicle tested exactly against its path (nearest to the path).
        yield_distance: vehicles look for junction conflicts within this distance of the entry [m].
        yield_patience: after waiting this long at a junction entry a vehicle stops yielding to
            conflicting traffic (deadlock breaker; obstacles on its path still stop it) [s].
        stuck_respawn: vehicles standing still this long, far from the ego (or 3× as long anywhere),
            are respawned [s].
        lat_accel: comfortable lateral acceleration that limits curve speed [m/s²].
        green / yellow / all_red: light phase durations [s].
        pedestrian_cross_prob: share of pedestrians whose path crosses the road.
        jaywalk_prob: share of crossings away from junctions (jaywalking).
        history_keyframes: past ego poses kept at 0.5 s (H, plus the current one).
        route_points: route polyline points in the observation (every 2 m, from 10 m behind).
        rules: the closed-loop rule set the criteria judge by (`carla_bridge.rules`; default leaderboard-2.0).
        vehicle: ego dynamics; idm: background car-following.
    """

    dt: float = 0.05
    num_vehicles: int = 50
    num_pedestrians: int = 30
    num_parked: int = 10
    num_props: int = 6
    spawn_radius: float | None = 150.0
    ego_clearance: float = 20.0
    lookahead_step: float = 2.0
    lookahead_points: int = 20
    clearance_margin: float = 0.35
    obstacle_candidates: int = 8
    yield_distance: float = 12.0
    yield_patience: float = 8.0
    stuck_respawn: float = 20.0
    lat_accel: float = 2.5
    green: float = 12.0
    yellow: float = 3.0
    all_red: float = 1.0
    pedestrian_cross_prob: float = 0.5
    jaywalk_prob: float = 0.3
    history_keyframes: int = 4
    route_points: int = 50
    rules: RuleSet = field(default_factory=load_rules)
    vehicle: BicycleParams = field(default_factory=BicycleParams)
    idm: IDMParams = field(default_factory=IDMParams)

    def __post_init__(self) -> None:
        if not self.dt > 0:
            raise ValueError(f"LiteConfig.dt must be positive, got {self.dt}")
        for name in ("num_vehicles", "num_pedestrians", "num_parked", "num_props"):
            if getattr(self, name) < 0:
                raise ValueError(f"LiteConfig.{name} must be ≥ 0, got {getattr(self, name)}")
