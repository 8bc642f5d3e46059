"""Where the nuScenes rig's sensors sit on a CARLA vehicle, as data.

`sensor_specs(rig)` returns the sensor suite in the CARLA leaderboard's `sensors()` format
(`{'type': 'sensor.camera.rgb', 'x', 'y', 'z', 'roll', 'pitch', 'yaw', 'width', 'height', 'fov',
'id'}`, CARLA vehicle frame, degrees), so the same list serves the live backend and the
leaderboard adapter. Our ego frame's origin is the rear axle; a CARLA vehicle's origin is the
centre of its bounding box on the ground, `EGO.rear_axle_to_center` ahead of the rear axle
(the nuScenes car's geometry; CARLA's own vehicle models differ slightly — documented, not hidden).

CARLA cameras look along their x axis and are ideal pinholes with the principal point at the image
centre: `fov` reproduces nuScenes' focal length; the principal-point offset of the real rig (a few
pixels) is not reproducible in CARLA and `carla_intrinsics` reports what the camera really has.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agents import EGO
from carla_bridge.coords import world_pose_to_transform
from carla_bridge.sensors.rig import CameraRig

# optical frame (z fwd, x right, y down) → body frame (x fwd, y left, z up): columns are the body
# axes written in optical coordinates
OPTICAL_TO_BODY = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def rotation_to_ypr(r: np.ndarray) -> tuple[float, float, float]:
    """Right-handed rotation matrix `[3, 3]` (body → parent) → (yaw, nose-up pitch, roll) [rad]."""
    yaw = math.atan2(r[1, 0], r[0, 0])
    pitch = math.asin(max(-1.0, min(1.0, float(r[2, 0]))))
    roll = math.atan2(r[2, 1], r[2, 2])
    return yaw, pitch, roll


def _carla_numbers(translation_ego: np.ndarray, rotation_body_to_ego: np.ndarray) -> dict[str, float]:
    """A mount pose in the ego frame → CARLA vehicle-frame numbers (x, y, z [m], roll, pitch, yaw [deg])."""
    yaw, pitch, roll = rotation_to_ypr(rotation_body_to_ego)
    x, y, z = translation_ego
    t = world_pose_to_transform(x - EGO.rear_axle_to_center, y, z, yaw, pitch, roll)
    loc, rot = t.location, t.rotation
    return {"x": loc.x, "y": loc.y, "z": loc.z, "roll": rot.roll, "pitch": rot.pitch, "yaw": rot.yaw}


def camera_fov_deg(rig: CameraRig, index: int) -> float:
    """Horizontal field of view [deg] that reproduces the rig camera's focal length at its width."""
    fx = float(rig.intrinsics[index, 0, 0])
    return math.degrees(2.0 * math.atan(rig.width / (2.0 * fx)))


def carla_intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    """`[3, 3]` intrinsics of a CARLA pinhole camera (principal point at the image centre)."""
    f = width / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def camera_body_to_ego(rig: CameraRig, index: int) -> np.ndarray:
    """`[4, 4]` CARLA-camera body frame (x fwd, y left, z up; right-handed) → ego frame."""
    cam_to_ego = rig.cam_to_ego[index].double().numpy()
    out = np.eye(4)
    out[:3, :3] = cam_to_ego[:3, :3] @ OPTICAL_TO_BODY
    out[:3, 3] = cam_to_ego[:3, 3]
    return out


def lidar_body_to_ego(rig: CameraRig) -> np.ndarray:
    """`[4, 4]` CARLA-lidar body frame (x fwd, y left, z up; right-handed) → ego frame. The CARLA lidar
    is mounted level at LIDAR_TOP's position; its points are re-expressed in the ego frame."""
    out = np.eye(4)
    out[:3, 3] = rig.lidar_to_ego[:3, 3].double().numpy()
    return out


def sensor_specs(rig: CameraRig, lidar_channels: int = 32, lidar_range: float = 70.0) -> list[dict[str, Any]]:
    """The rig as a leaderboard-style sensor list (CARLA vehicle frame, degrees)."""
    specs: list[dict[str, Any]] = []
    for i, name in enumerate(rig.names):
        body = camera_body_to_ego(rig, i)
        specs.append(
            {
                "type": "sensor.camera.rgb",
                **_carla_numbers(body[:3, 3], body[:3, :3]),
                "width": rig.width,
                "height": rig.height,
                "fov": camera_fov_deg(rig, i),
                "id": name,
            }
        )
    lidar = lidar_body_to_ego(rig)
    specs.append(
        {
            "type": "sensor.lidar.ray_cast",
            **_carla_numbers(lidar[:3, 3], lidar[:3, :3]),
            "channels": lidar_channels,
            "range": lidar_range,
            "upper_fov": 10.67,
            "lower_fov": -30.67,
            "rotation_frequency": 20.0,
            "points_per_second": 1_390_000,
            "id": "LIDAR_TOP",
        }
    )
    return specs
