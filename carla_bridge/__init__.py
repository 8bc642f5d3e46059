"""carla_bridge: everything CARLA.

Owns maps loaded from OpenDRIVE through `carla.Map` (works offline), the one module that converts
CARLA's left-handed frame, routes (leaderboard XML) and route planning, the `Backend` protocol
with the embedded **lite** simulator and the **live** CARLA-server backend, the camera-rig and
lidar renderer, infraction detection and leaderboard-2.0 scoring, the nuScenes-format recorder
with counterfactual branches, the privileged autopilot and oracle world model, and the
closed-loop runner that drives any `Agent`. Depends on `agents/`, `occupancy/` and `planner/`;
`carla` is imported lazily where only nuScenes-format code is needed.
"""
