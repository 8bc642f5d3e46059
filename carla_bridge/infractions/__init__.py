"""The closed-loop criteria, one module per criterion of the leaderboard's criteria tree (scenario_runner
`atomic_criteria.py`, `timer.py`, branch leaderboard-2.0), each a function of batched arrays `[W, ...]`
(W egos) with its parameters from a `carla_bridge.rules.RuleSet`:

| module | reference |
|---|---|
| `completion` | RouteCompletionTest |
| `collision` | CollisionTest |
| `red_light` | RunningRedLightTest |
| `stop_sign` | RunningStopTest |
| `outside_lanes` | OutsideRouteLanesTest |
| `route_deviation` | InRouteTest |
| `min_speed` | MinimumSpeedRouteTest |
| `blocked` | ActorBlockedTest |
| `route_timeout` | RouteTimeoutBehavior |
| `yield_emergency` | YieldToEmergencyVehicleTest |
| `scenario_timeout` | ScenarioTimeoutTest (+ the ScenarioTimeout behaviour) |

`route_points` holds the route as the criteria walk it, `context` what they need of a route's town.
The lite simulator applies them in `carla_bridge.lite.criteria`; penalties live in the rule set and
`carla_bridge.scoring`.
"""

from carla_bridge.infractions.blocked import blocked_update
from carla_bridge.infractions.collision import collision_update, contacts
from carla_bridge.infractions.completion import completion_update
from carla_bridge.infractions.context import CriteriaContext, criteria_context
from carla_bridge.infractions.min_speed import MinSpeedState, min_speed_finish, min_speed_update, traffic_mean_speed
from carla_bridge.infractions.outside_lanes import LaneFacts, OutsideLanesState, lane_facts, outside_lanes_update
from carla_bridge.infractions.red_light import StopLines, red_light_candidates, stop_lines
from carla_bridge.infractions.route_deviation import route_deviation_update
from carla_bridge.infractions.route_points import RoutePoints, closest_index, ego_centre, passed_index, route_points
from carla_bridge.infractions.route_timeout import full_route_budget, route_timeout_update
from carla_bridge.infractions.scenario_timeout import scenario_timed_out
from carla_bridge.infractions.stop_sign import StopBoxes, stop_boxes, stop_sign_step
from carla_bridge.infractions.yield_emergency import yield_update

__all__ = [
    "CriteriaContext",
    "LaneFacts",
    "MinSpeedState",
    "OutsideLanesState",
    "RoutePoints",
    "StopBoxes",
    "StopLines",
    "blocked_update",
    "closest_index",
    "collision_update",
    "completion_update",
    "contacts",
    "criteria_context",
    "ego_centre",
    "full_route_budget",
    "lane_facts",
    "min_speed_finish",
    "min_speed_update",
    "outside_lanes_update",
    "passed_index",
    "red_light_candidates",
    "route_deviation_update",
    "route_points",
    "route_timeout_update",
    "scenario_timed_out",
    "stop_boxes",
    "stop_lines",
    "stop_sign_step",
    "traffic_mean_speed",
    "yield_update",
]
