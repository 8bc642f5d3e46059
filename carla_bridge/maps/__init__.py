"""CARLA towns loaded offline: lane graph, projection, lights, stop signs, static scene.

Entry point: `load_town(name_or_path) -> TownMap`.
"""

from carla_bridge.maps.lanes import Lane, LaneArrays
from carla_bridge.maps.lights import LightHead, TrafficLightGroup
from carla_bridge.maps.static_scene import StaticScene
from carla_bridge.maps.stop_signs import StopSign
from carla_bridge.maps.structures import Box3D
from carla_bridge.maps.town import TownMap, clear_cache, load_town
from carla_bridge.maps.xodr import available_towns, find_town

__all__ = [
    "Box3D",
    "Lane",
    "LaneArrays",
    "LightHead",
    "StaticScene",
    "StopSign",
    "TownMap",
    "TrafficLightGroup",
    "available_towns",
    "clear_cache",
    "find_town",
    "load_town",
]
