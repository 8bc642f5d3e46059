"""The one module that knows CARLA's left-handed convention.

CARLA (Unreal) uses x forward, **y right**, z up, yaw clockwise in degrees. Our world frame is
right-handed (x, y left, z up, yaw counter-clockwise in radians, wrapped to (-π, π]). The mapping
is a mirror through the x–z plane: ``y → -y`` and ``yaw → -yaw``; pitch keeps its sign (nose up
stays nose up) and so does roll (right side down in both, as `carla.Transform.get_matrix()`
confirms). Steering flips sign too: `agents.Control.steer` > 0 steers left,
`carla.VehicleControl.steer` > 0 steers right.

All array functions accept scalars or numpy arrays of any shape and broadcast. `carla` is imported
lazily, only by the functions that build or read `carla` objects.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from agents.control import Control


def wrap_angle_np(a: np.ndarray | float) -> np.ndarray | float:
    """Wrap angles [rad] to (-π, π] (numpy or float)."""
    w = np.pi - np.mod(np.pi - np.asarray(a, dtype=np.float64), 2.0 * np.pi)
    return float(w) if np.ndim(w) == 0 else w


def carla_to_world_xyz(x: Any, y: Any, z: Any) -> tuple[Any, Any, Any]:
    """CARLA location (x, y, z) [m] → world (x, y, z) [m]: y is negated."""
    neg_y = -y if isinstance(y, (int, float)) else -np.asarray(y)
    return x, neg_y, z


def world_to_carla_xyz(x: Any, y: Any, z: Any) -> tuple[Any, Any, Any]:
    """World (x, y, z) [m] → CARLA location (x, y, z) [m] (the mirror is its own inverse)."""
    return carla_to_world_xyz(x, y, z)


def carla_yaw_deg_to_world_rad(yaw_deg: Any) -> Any:
    """CARLA yaw [deg, clockwise] → world yaw [rad, counter-clockwise], wrapped to (-π, π]."""
    return wrap_angle_np(-np.deg2rad(np.asarray(yaw_deg, dtype=np.float64)))


def world_yaw_rad_to_carla_deg(yaw: Any) -> Any:
    """World yaw [rad] → CARLA yaw [deg] in (-180, 180]."""
    d = -np.rad2deg(np.asarray(wrap_angle_np(yaw), dtype=np.float64))
    d = np.where(d <= -180.0, d + 360.0, d)
    return float(d) if np.ndim(d) == 0 else d


def carla_points_to_world(points: np.ndarray) -> np.ndarray:
    """`[..., 2 or 3]` CARLA points → world points (copy, y negated)."""
    p = np.array(points, dtype=np.float64, copy=True)
    if p.ndim == 0 or p.shape[-1] not in (2, 3):
        raise ValueError(f"points must have shape [..., 2] or [..., 3], got {list(p.shape)}")
    p[..., 1] = -p[..., 1]
    return p


def world_points_to_carla(points: np.ndarray) -> np.ndarray:
    """`[..., 2 or 3]` world points → CARLA points (copy, y negated)."""
    return carla_points_to_world(points)


def location_to_world(location: Any) -> np.ndarray:
    """`carla.Location` → `[3]` world (x, y, z) [m]."""
    return np.array([location.x, -location.y, location.z], dtype=np.float64)


def transform_to_world_pose(transform: Any) -> tuple[float, float, float, float]:
    """`carla.Transform` → world (x, y, z [m], yaw [rad])."""
    loc, rot = transform.location, transform.rotation
    return float(loc.x), float(-loc.y), float(loc.z), float(carla_yaw_deg_to_world_rad(rot.yaw))


def world_to_location(x: float, y: float, z: float = 0.0) -> Any:
    """World (x, y, z) [m] → `carla.Location`."""
    import carla

    return carla.Location(x=float(x), y=float(-y), z=float(z))


def world_pose_to_transform(x: float, y: float, z: float, yaw: float, pitch: float = 0.0, roll: float = 0.0) -> Any:
    """World pose (x, y, z [m], yaw [rad], pitch, roll [rad]) → `carla.Transform`."""
    import carla

    return carla.Transform(
        world_to_location(x, y, z),
        carla.Rotation(
            pitch=float(math.degrees(pitch)),
            yaw=float(world_yaw_rad_to_carla_deg(yaw)),
            roll=float(math.degrees(roll)),
        ),
    )


def control_to_carla(control: Control) -> Any:
    """`agents.Control` (steer > 0 = left) → `carla.VehicleControl` (steer > 0 = right). Validates first."""
    import carla

    c = control.validate()
    return carla.VehicleControl(throttle=float(c.throttle), steer=float(-c.steer), brake=float(c.brake))


def control_from_carla(vehicle_control: Any) -> Control:
    """`carla.VehicleControl` → `agents.Control` (steer sign flipped)."""
    from agents.control import Control

    return Control(
        throttle=float(vehicle_control.throttle),
        steer=float(-vehicle_control.steer),
        brake=float(vehicle_control.brake),
    ).validate()
