"""agents: the vocabulary of moving things.

Owns SE(2) poses and transforms, oriented boxes and their vectorized overlap test, the batched
agent-state container (`AgentStates`), trajectories (resampling, finite differences), behaviour
models (constant velocity / turn rate, IDM, kinematic bicycle), the vehicle `Control`, the ego
vehicle's dimensions, and forecast metrics (minADE_k, minFDE_k, miss rate). It is the bottom
layer: it imports nothing from the other drivewm packages. Torch, batched, CPU or GPU; numpy
only at I/O boundaries.
"""

from agents.boxes import agent_boxes, box_corners, box_distance, boxes_overlap, boxes_overlap_paired, ego_boxes
from agents.control import Control
from agents.ego import EGO, EgoVehicle
from agents.se2 import (
    quaternion_to_yaw,
    se2_apply,
    se2_compose,
    se2_inverse,
    se2_relative,
    wrap_angle,
    yaw_to_quaternion,
)
from agents.states import AgentClass, AgentStates

__all__ = [
    "EGO",
    "AgentClass",
    "AgentStates",
    "Control",
    "EgoVehicle",
    "agent_boxes",
    "box_corners",
    "box_distance",
    "boxes_overlap",
    "boxes_overlap_paired",
    "ego_boxes",
    "quaternion_to_yaw",
    "se2_apply",
    "se2_compose",
    "se2_inverse",
    "se2_relative",
    "wrap_angle",
    "yaw_to_quaternion",
]
