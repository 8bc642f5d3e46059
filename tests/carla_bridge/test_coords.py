import math

import carla
import numpy as np
import pytest

from agents.control import Control
from carla_bridge.coords import (
    carla_points_to_world,
    carla_to_world_xyz,
    carla_yaw_deg_to_world_rad,
    control_from_carla,
    control_to_carla,
    location_to_world,
    transform_to_world_pose,
    world_pose_to_transform,
    world_to_location,
    world_yaw_rad_to_carla_deg,
)


def test_transform_to_world_pose_on_real_carla_transform():
    t = carla.Transform(carla.Location(x=10.0, y=20.0, z=1.5), carla.Rotation(pitch=0.0, yaw=90.0, roll=0.0))
    x, y, z, yaw = transform_to_world_pose(t)
    assert (x, y, z) == pytest.approx((10.0, -20.0, 1.5))
    # CARLA yaw 90° (clockwise, towards +y_carla) points towards -y in the right-handed world.
    assert yaw == pytest.approx(-math.pi / 2)
    # The heading vector agrees with carla's own forward vector, mirrored.
    f = t.get_forward_vector()
    assert (math.cos(yaw), math.sin(yaw)) == pytest.approx((f.x, -f.y), abs=1e-6)


@pytest.mark.parametrize("yaw_deg", [-179.0, -90.0, -30.0, 0.0, 45.0, 135.0, 180.0, 270.0, 359.0])
def test_yaw_matches_carla_forward_vector_and_roundtrips(yaw_deg):
    t = carla.Transform(carla.Location(x=1.0, y=2.0, z=0.0), carla.Rotation(yaw=yaw_deg))
    yaw = carla_yaw_deg_to_world_rad(yaw_deg)
    assert -math.pi < yaw <= math.pi
    f = t.get_forward_vector()
    assert (math.cos(yaw), math.sin(yaw)) == pytest.approx((f.x, -f.y), abs=1e-6)
    back = world_pose_to_transform(*transform_to_world_pose(t))
    assert back.location.distance(t.location) < 1e-5
    assert math.cos(math.radians(back.rotation.yaw - yaw_deg)) == pytest.approx(1.0)
    assert -180.0 < world_yaw_rad_to_carla_deg(yaw) <= 180.0


def test_points_and_locations_mirror_y_and_preserve_handedness():
    loc = world_to_location(3.0, 4.0, 5.0)
    assert isinstance(loc, carla.Location)
    assert (loc.x, loc.y, loc.z) == pytest.approx((3.0, -4.0, 5.0))
    np.testing.assert_allclose(location_to_world(loc), [3.0, 4.0, 5.0])
    pts = np.array([[1.0, 2.0, 3.0], [-4.0, -5.0, 6.0]])
    np.testing.assert_allclose(carla_points_to_world(pts), [[1.0, -2.0, 3.0], [-4.0, 5.0, 6.0]])
    assert carla_to_world_xyz(1.0, 2.0, 3.0) == (1.0, -2.0, 3.0)
    # A counter-clockwise triangle in the world is clockwise in CARLA (mirror flips orientation).
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    c = carla_points_to_world(tri)
    area = 0.5 * np.cross(c[1] - c[0], c[2] - c[0])
    assert area < 0
    with pytest.raises(ValueError, match="points must have shape"):
        carla_points_to_world(np.zeros((3, 4)))


def test_control_steer_sign_flips_and_validates():
    vc = control_to_carla(Control(throttle=0.5, steer=0.25, brake=0.0))
    assert isinstance(vc, carla.VehicleControl)
    assert vc.steer == pytest.approx(-0.25)
    assert vc.throttle == pytest.approx(0.5)
    assert control_from_carla(vc).steer == pytest.approx(0.25)
    with pytest.raises(ValueError, match="steer"):
        control_to_carla(Control(steer=1.5))
