import math

import numpy as np
import pytest
import torch

import drivewm.leaderboard_agent as lb
from agents import EGO
from carla_bridge.closed_loop.agent import validate_sensors
from carla_bridge.maps import load_town


def test_entry_point_and_lazy_class():
    assert lb.get_entry_point() == "DriveWMLeaderboardAgent"
    try:
        import leaderboard  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="leaderboard is not installed"):
            lb.DriveWMLeaderboardAgent  # noqa: B018
    with pytest.raises(AttributeError):
        lb.NoSuchThing  # noqa: B018


def test_sensor_list_is_valid_leaderboard_format():
    specs = lb.leaderboard_sensors((32, 18))
    validate_sensors(specs)
    ids = [s["id"] for s in specs]
    assert ids[:6] == ["CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT"]
    assert {"LIDAR_TOP", "GPS", "IMU", "SPEED"} <= set(ids)
    assert all(s["width"] == 32 and s["height"] == 18 for s in specs if s["type"] == "sensor.camera.rgb")


def test_gnss_and_compass_invert_carla():
    import carla

    cmap = load_town("Town01").carla_map
    for x, y in ((0.0, 0.0), (100.0, -50.0), (-230.5, 310.25)):
        g = cmap.transform_to_geolocation(carla.Location(x=x, y=-y, z=0.0))  # CARLA y = -world y
        assert lb.gnss_to_world_xy(g.latitude, g.longitude, carla_map=cmap) == pytest.approx((x, y), abs=0.01)
        approx = lb.gnss_to_world_xy(g.latitude, g.longitude)  # spherical fallback, no map
        assert approx == pytest.approx((x, y), rel=2e-3, abs=0.01)
    # compass: 0 = north = CARLA -y = world +y; east (π/2) = world +x; clockwise
    assert lb.compass_to_world_yaw(0.0) == pytest.approx(math.pi / 2)
    assert lb.compass_to_world_yaw(math.pi / 2) == pytest.approx(0.0)
    assert lb.compass_to_world_yaw(math.pi) == pytest.approx(-math.pi / 2)


def test_bgra_to_rgb():
    img = np.zeros((2, 3, 4), np.uint8)
    img[..., 0], img[..., 1], img[..., 2], img[..., 3] = 10, 20, 30, 255  # B G R A
    out = lb.bgra_to_rgb_chw(img)
    assert out.shape == (3, 2, 3) and out[:, 0, 0].tolist() == [30, 20, 10]
    with pytest.raises(ValueError, match="BGRA"):
        lb.bgra_to_rgb_chw(np.zeros((2, 3, 3), np.uint8))


def test_a_leaderboard_tick_end_to_end(tmp_path):
    import carla

    cfg = tmp_path / "agent.yaml"
    cfg.write_text("agent: empty\ncamera_size: [32, 18]\ntown: Town01\n")
    agent = lb.build_agent_class(object)()
    agent.setup(str(cfg))
    assert agent.track in ("SENSORS",) or getattr(agent.track, "name", "") == "SENSORS"
    cmap = load_town("Town01").carla_map
    # route straight along world +x from (100, -2) (CARLA y = 2)
    plan = [(carla.Transform(carla.Location(x=100.0 + 5 * i, y=2.0, z=0.0)), None) for i in range(20)]
    agent.set_global_plan([], plan)
    rng = np.random.default_rng(0)
    centre = (101.0 + EGO.rear_axle_to_center, -2.0)  # vehicle centre, heading world +x (compass π/2)
    geo = cmap.transform_to_geolocation(carla.Location(x=centre[0], y=-centre[1], z=0.0))
    data = {s["id"]: (1, rng.integers(0, 255, (18, 32, 4), dtype=np.uint8)) for s in agent.sensors()[:6]}
    data["LIDAR_TOP"] = (1, rng.normal(size=(50, 4)).astype(np.float32))
    data["GPS"] = (1, np.array([geo.latitude, geo.longitude, 0.0]))
    data["IMU"] = (1, np.array([0, 0, 0, 0, 0, 0, math.pi / 2]))
    data["SPEED"] = (1, {"speed": 3.0})
    pose = agent.converter.pose(data)
    assert pose == pytest.approx([101.0, -2.0, 0.0], abs=0.02)
    control = agent.run_step(data, 0.05)
    assert isinstance(control, carla.VehicleControl)
    assert all(math.isfinite(v) for v in (control.throttle, control.steer, control.brake))
    obs = agent.converter(data, 0.10, agent._route_xy)
    assert obs.images.shape == (1, 6, 3, 18, 32) and obs.lidar.shape == (1, 50, 5)
    assert float(obs.speed[0]) == 3.0
    assert torch.allclose(obs.route[0, obs.route_valid[0]][:, 1], torch.zeros(1), atol=0.05)  # route ahead on y = 0
    agent.destroy()
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: autopilot\n")
    with pytest.raises(ValueError, match="cannot run on the leaderboard"):
        lb.load_agent_config(str(bad))
    bad.write_text("agent: empty\nspeedy: 1\n")
    with pytest.raises(ValueError, match="unknown keys"):
        lb.load_agent_config(str(bad))
