"""The live CARLA backend, as far as it can be tested without a server (none exists here)."""

import math
import socket
import time

import numpy as np
import pytest
import torch

from carla_bridge.coords import world_pose_to_transform
from carla_bridge.live.backend import CarlaBackend, CarlaConfig, CarlaServerUnavailable, connect, lidar_to_ego_points
from carla_bridge.live.mount import (
    camera_body_to_ego,
    camera_fov_deg,
    carla_intrinsics,
    rotation_to_ypr,
    sensor_specs,
)
from carla_bridge.routes import ROUTES_DIR, parse_routes
from carla_bridge.sensors.rig import CameraRig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_gives_one_clear_error_within_the_timeout():
    port = _free_port()
    t0 = time.perf_counter()
    with pytest.raises(CarlaServerUnavailable, match=f"no CARLA server answered at 127.0.0.1:{port}") as err:
        connect("127.0.0.1", port, timeout_s=1.0)
    assert time.perf_counter() - t0 < 5.0
    assert "\n" not in str(err.value)
    backend = CarlaBackend(CarlaConfig(port=port, timeout_s=1.0))
    route = parse_routes(ROUTES_DIR / "routes_devtest.xml")[0]
    with pytest.raises(CarlaServerUnavailable):
        backend.reset(route, seed=0)
    backend.close()  # nothing to clean up, must not raise


def test_sensor_specs_reproduce_the_nuscenes_rig():
    """Mount poses written as CARLA numbers, read back through real carla.Transform objects, give the
    rig's camera optical axes in the ego frame."""
    rig = CameraRig.nuscenes(400, 225)
    specs = sensor_specs(rig)
    assert [s["id"] for s in specs] == [*rig.names, "LIDAR_TOP"]
    import carla

    for i, spec in enumerate(specs[:6]):
        assert spec["type"] == "sensor.camera.rgb"
        assert (spec["width"], spec["height"]) == (400, 225)
        # carla.Transform rotates a forward vector the way CARLA will; convert back to our frame
        t = carla.Transform(carla.Location(), carla.Rotation(pitch=spec["pitch"], yaw=spec["yaw"], roll=spec["roll"]))
        fwd = t.get_forward_vector()
        fwd_ego = np.array([fwd.x, -fwd.y, fwd.z])
        optical_axis = rig.cam_to_ego[i, :3, 2].double().numpy()
        np.testing.assert_allclose(fwd_ego, optical_axis, atol=1e-5)
        # focal length is preserved by the fov
        k = carla_intrinsics(400, 225, camera_fov_deg(rig, i))
        assert math.isclose(k[0, 0], float(rig.intrinsics[i, 0, 0]), rel_tol=1e-6)
        body = camera_body_to_ego(rig, i)
        # mount position: rig translation minus the rear-axle → box-centre offset, y mirrored
        cam_t = rig.cam_to_ego[i, :3, 3].double().numpy()
        np.testing.assert_allclose([spec["x"], -spec["y"], spec["z"]], cam_t - [1.38, 0, 0], atol=1e-4)
        np.testing.assert_allclose(body[:3, 3], cam_t)
    assert specs[-1]["channels"] == 32


def test_rotation_to_ypr_round_trip_through_carla():
    rng = np.random.default_rng(0)
    for _ in range(50):
        yaw, pitch, roll = rng.uniform(-math.pi, math.pi), rng.uniform(-1.2, 1.2), rng.uniform(-1, 1)
        t = world_pose_to_transform(0, 0, 0, yaw, pitch, roll)
        m = np.array(t.get_matrix())[:3, :3]
        mirror = np.diag([1.0, -1.0, 1.0])
        r = mirror @ m @ mirror  # CARLA (left-handed) matrix → right-handed rotation
        np.testing.assert_allclose(rotation_to_ypr(r), (yaw, pitch, roll), atol=1e-4)


def test_lidar_points_to_ego_frame():
    rig = CameraRig.nuscenes(400, 225)
    # a CARLA lidar point 10 m ahead, 2 m to the right (CARLA y = +2), at sensor height
    raw = np.array([[10.0, 2.0, 0.0, 0.5]], dtype=np.float32)
    out = lidar_to_ego_points(raw, rig)
    lidar_t = rig.lidar_to_ego[:3, 3].numpy()
    np.testing.assert_allclose(out[0, :3], [lidar_t[0] + 10.0, lidar_t[1] - 2.0, lidar_t[2]], atol=1e-5)
    assert out[0, 3] == pytest.approx(0.5)
    assert int(out[0, 4]) == int(np.abs(np.linspace(-30.67, 10.67, 32)).argmin())
    assert torch.is_tensor(torch.from_numpy(out))


def test_the_port_is_probed_before_the_carla_client_touches_it():
    """A web server on the CARLA port used to abort the whole process inside LibCarla (SIGABRT, exit
    134, no message). The probe asks the client's own first question — the msgpack-rpc `version` call —
    over a plain socket: a web server, a silent service, a closed port and an unknown host are each one
    clear line; a service that answers as CARLA does (the real `carla.Client` agrees) passes."""
    from carla_bridge.live.probe import parse_version_response, probe_carla, version_request
    from tests.carla_bridge.carla_stand_ins import local_service, pack_carla_version

    assert version_request(7) == b"\x94\x00\x07\xa7version\x90"  # [0, 7, "version", []]
    assert parse_version_response(pack_carla_version(7, "0.9.15")) == "0.9.15"
    with local_service("http") as port, pytest.raises(CarlaServerUnavailable, match="is not a CARLA server") as err:
        probe_carla("127.0.0.1", port, 2.0)
    assert "HTTP/1.1 400" in str(err.value) and "\n" not in str(err.value)
    t0 = time.perf_counter()
    with local_service("silent") as port, pytest.raises(CarlaServerUnavailable, match="within 0.5 s"):
        probe_carla("127.0.0.1", port, 0.5)
    assert time.perf_counter() - t0 < 3.0
    with pytest.raises(CarlaServerUnavailable, match="cannot resolve the CARLA host 'no.such.host.invalid'"):
        probe_carla("no.such.host.invalid", 2000, 1.0)
    with pytest.raises(CarlaServerUnavailable, match="connection refused"):
        probe_carla("127.0.0.1", _free_port(), 1.0)
    with pytest.raises(ValueError, match="1–65535"):
        probe_carla("127.0.0.1", 99999, 1.0)
    with local_service("carla") as port:
        assert probe_carla("127.0.0.1", port, 2.0) == "0.9.15"
        client = connect("127.0.0.1", port, 2.0)  # the C++ client itself, after the probe
        assert client.get_server_version() == "0.9.15"
