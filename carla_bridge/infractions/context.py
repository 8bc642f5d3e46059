"""What the criteria need to know about one route on its town, built once per route: the route's
criteria waypoints, the town's red-light stop lines, stop-sign trigger boxes and parking lanes."""

from __future__ import annotations

from dataclasses import dataclass

from carla_bridge.infractions.outside_lanes import ParkingLanes, parking_lanes
from carla_bridge.infractions.red_light import StopLines, stop_lines
from carla_bridge.infractions.route_points import RoutePoints, route_points
from carla_bridge.infractions.stop_sign import StopBoxes, stop_boxes
from carla_bridge.rules import RuleSet


@dataclass(frozen=True)
class CriteriaContext:
    """Attributes: points (the route's `RoutePoints`), lines (`StopLines` of the town's lights), boxes
    (`StopBoxes` of its stop signs), parking (`ParkingLanes`)."""

    points: RoutePoints
    lines: StopLines
    boxes: StopBoxes
    parking: ParkingLanes


def criteria_context(town, plan, rules: RuleSet) -> CriteriaContext:
    """The `CriteriaContext` of a `RoutePlan` on `town` under `rules`."""
    return CriteriaContext(
        points=route_points(town, plan, rules.route_spacing),
        lines=stop_lines(town, rules.red_light),
        boxes=stop_boxes(town, rules.stop_sign),
        parking=parking_lanes(town),
    )
