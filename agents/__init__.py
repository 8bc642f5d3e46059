"""agents: the vocabulary of moving things.

Owns SE(2) poses and transforms, oriented boxes and their vectorized overlap test, the batched
agent-state container (`AgentStates`), trajectories (resampling, finite differences), behaviour
models (constant velocity / turn rate, IDM, kinematic bicycle), the vehicle `Control`, the ego
vehicle's dimensions, and forecast metrics (minADE_k, minFDE_k, miss rate). It is the bottom
layer: it imports nothing from the other drivewm packages. Torch, batched, CPU or GPU; numpy
only at I/O boundaries.
"""

from agents.control import Control
from agents.ego import EGO, EgoVehicle
from agents.states import AgentClass, AgentStates

__all__ = ["EGO", "AgentClass", "AgentStates", "Control", "EgoVehicle"]
