"""Infraction criteria, one module per criterion, each a pure function over batched states `[W, ...]`
(W worlds of the lite simulator) that returns masks/updated bookkeeping; the simulator turns them
into `Event`s. Penalties live in `carla_bridge.scoring`."""

from carla_bridge.infractions.blocked import blocked_update, route_timeout_seconds
from carla_bridge.infractions.collision import collision_update
from carla_bridge.infractions.min_speed import min_speed_percentage
from carla_bridge.infractions.outside_lanes import outside_lanes_update, outside_percentage
from carla_bridge.infractions.red_light import red_light_crossings
from carla_bridge.infractions.route_deviation import route_deviation
from carla_bridge.infractions.stop_sign import stop_sign_update

__all__ = [
    "blocked_update",
    "collision_update",
    "min_speed_percentage",
    "outside_lanes_update",
    "outside_percentage",
    "red_light_crossings",
    "route_deviation",
    "route_timeout_seconds",
    "stop_sign_update",
]
