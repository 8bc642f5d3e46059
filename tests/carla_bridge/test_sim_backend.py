"""`LiteBackend` (Backend protocol) and the `drivewm sim run` command, including bad input."""

import json
import math

import numpy as np
import pytest
import torch

from agents import Control
from carla_bridge.backend import Backend
from carla_bridge.lite.backend import LiteBackend
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.random_route import random_route
from drivewm.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = LiteConfig(num_vehicles=8, num_pedestrians=4, num_parked=2, num_props=2)


def test_backend_protocol_observation_and_privileged(town01):
    be = LiteBackend(town01, SMALL)
    assert isinstance(be, Backend)
    obs = be.reset(random_route(town01, 4, 120.0), seed=4)
    obs.validate()
    assert obs.images.shape[:2] == (1, 0)  # no cameras requested
    for _ in range(12):
        obs, _ = be.step(Control(throttle=0.6))
    assert obs.speed.item() > 0.5
    assert obs.ego_history.shape == (1, 5, 3) and torch.allclose(obs.ego_history[0, -1], torch.zeros(3))
    assert obs.ego_history[0, -2, 0] < 0.0  # half a second ago the ego was behind
    priv = be.privileged()
    n_static = be.world.state.statics.box.shape[1]
    assert 2 <= n_static <= 4  # parked cars/props too close to the ego's start are skipped
    assert priv.agents.batch_shape == (1, 8 + 4 + n_static)
    gt = be.ground_truth()
    assert gt["agents"].track_id.unique().numel() == gt["agents"].num_agents
    assert int(gt["parked"].sum()) == int((be.world.state.statics.cls == 0).sum())
    # a snapshot restores the same future through the backend too
    snap = be.snapshot()
    a = [be.step(Control(throttle=0.3, steer=0.1))[0].ego_pose for _ in range(10)]
    be.restore(snap)
    b = [be.step(Control(throttle=0.3, steer=0.1))[0].ego_pose for _ in range(10)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_backend_rejects_bad_controls(town01):
    be = LiteBackend(town01, SMALL)
    be.reset(random_route(town01, 5, 80.0), seed=5)
    with pytest.raises(ValueError, match="throttle"):
        be.step(Control(throttle=math.nan))
    with pytest.raises(ValueError, match="steer"):
        be.step(Control(steer=-1.5))
    with pytest.raises(ValueError, match="Control"):
        be.step((0.5, 0.0, 0.0))


def test_backend_renders_cameras_on_request(town01):
    be = LiteBackend(town01, SMALL, render="cameras", render_every=5, image_size=(64, 36))
    obs = be.reset(random_route(town01, 6, 80.0), seed=6)
    assert obs.images.shape == (1, 6, 3, 36, 64)
    assert obs.images.float().std() > 5.0  # not a blank frame
    scene = be.render_scene()
    ids = set(scene.instance_id.tolist())
    assert ids <= set(be.ground_truth()["agents"].track_id.tolist())


def _route_file(tmp_path, town01):
    """A leaderboard-1.0 route file with one Town01 route (CARLA coordinates: y flipped)."""
    plan = random_route(town01, 8, 90.0)
    pts = plan.polyline[:: max(1, len(plan.polyline) // 4)]
    wps = "".join(
        f'<waypoint x="{x:.2f}" y="{-y:.2f}" z="0.0" pitch="0" roll="0" yaw="{-math.degrees(a):.1f}"/>'
        for (x, y), a in zip(pts, plan.yaw[:: max(1, len(plan.polyline) // 4)])
    )
    path = tmp_path / "routes.xml"
    path.write_text(f'<routes><route id="7" town="Town01">{wps}</route></routes>')
    return path


def test_cli_sim_run_writes_results_and_animation(tmp_path, town01):
    routes = _route_file(tmp_path, town01)
    out = tmp_path / "out"
    rc = main(
        [
            "sim",
            "run",
            "--routes",
            str(routes),
            "--route-ids",
            "7",
            "--agent",
            "autopilot",
            "--out",
            str(out),
            "--max-seconds",
            "4",
            "--vehicles",
            "5",
            "--pedestrians",
            "3",
            "--frame-every",
            "20",
        ]
    )
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    r = res["routes"][0]
    assert r["route_id"] == "7" and r["town"] == "Town01"
    assert 0.0 < r["route_completion"] <= 100.0
    assert r["steps"] == 80  # the runner's record: --max-seconds 4 at 0.05 s
    assert r["counts"]["route_timeout"] == 0 and r["stopped_by"] == "max_sim_seconds"  # a cap, not the rules' timeout
    assert r["status"] == "Failed" and r["rules"]["name"] == "leaderboard-2.0"
    assert (out / r["animation"]).stat().st_size > 1000
    assert res["statistics"]["scores"]["driving_score"]["n"] == 1


def test_cli_bad_input(tmp_path, town01, capsys):
    routes = _route_file(tmp_path, town01)
    out = str(tmp_path / "o")
    assert main(["sim", "run", "--routes", str(routes), "--town", "Town99", "--out", out, "--route-ids", "7"]) == 2
    assert "Town99" in capsys.readouterr().err
    bad = tmp_path / "bad.xml"
    bad.write_text("<routes><route id='1' town='Town01'><waypoint x='a' y='0' z='0'/></route></routes>")
    assert main(["sim", "run", "--routes", str(bad), "--out", out, "--route-ids", "1"]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["sim", "run", "--routes", str(routes), "--out", out, "--route-ids", "3"]) == 2
    assert "available: 7" in capsys.readouterr().err
    far = tmp_path / "far.xml"
    far.write_text(
        '<routes><route id="1" town="Town01"><waypoint x="9000" y="9000" z="0"/>'
        '<waypoint x="9100" y="9000" z="0"/></route></routes>'
    )
    assert main(["sim", "run", "--routes", str(far), "--out", out, "--route-ids", "1"]) == 2
    assert "error" in capsys.readouterr().err
    assert not np.any([p.name == "results.json" for p in (tmp_path / "o").glob("*")])
