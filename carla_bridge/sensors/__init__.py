"""Camera rig and lidar rendering for the lite simulator.

`CameraRig` (the real nuScenes n015 calibration), `RenderScene` (world-frame inputs), `render_cameras`
(6 cameras in one Embree ray cast: rgb, depth, semantic, instance) and `render_lidar` (32-beam LIDAR_TOP).
"""

from carla_bridge.sensors.camera import CameraFrame, render_cameras
from carla_bridge.sensors.lidar import LidarFrame, beam_elevations, render_lidar
from carla_bridge.sensors.mesh import SceneMesh, build_mesh
from carla_bridge.sensors.rig import CAMERAS, LIDAR, CameraRig
from carla_bridge.sensors.scene import Appearance, GroundPatch, HeightField, RenderScene
from carla_bridge.sensors.terrain import lane_height_field

__all__ = [
    "CAMERAS",
    "LIDAR",
    "Appearance",
    "CameraFrame",
    "CameraRig",
    "GroundPatch",
    "HeightField",
    "LidarFrame",
    "RenderScene",
    "SceneMesh",
    "beam_elevations",
    "build_mesh",
    "lane_height_field",
    "render_cameras",
    "render_lidar",
]
