import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from carla_bridge.closed_loop.backend_spec import BackendSpec
from carla_bridge.closed_loop.runner import RunLimits
from carla_bridge.routes import Route, parse_routes
from drivewm.evaluation.closed_loop import check_towns, parse_seeds, run_evaluation, select_routes
from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint
from drivewm.evaluation.closed_loop.ray_runner import ray_available
from tests.carla_bridge.closed_loop_testkit import FAST_BACKEND, AutopilotFactory, devtest_route

LIMITS = RunLimits(max_route_length=20.0)
REPO = Path(__file__).resolve().parents[4]


def _keys(records):
    return sorted((r["agent"], r["route_id"], r["seed"]) for r in records)


def test_kill_mid_run_then_resume_loses_and_repeats_nothing(tmp_path):
    out = tmp_path / "out"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from tests.carla_bridge.closed_loop_testkit import FAST_BACKEND, AutopilotFactory, devtest_route
            from drivewm.evaluation.closed_loop import run_evaluation
            from carla_bridge.closed_loop.runner import RunLimits
            run_evaluation(AutopilotFactory(), "autopilot", [devtest_route("0")], [0, 1, 2, 3], {str(out)!r},
                           backend=FAST_BACKEND, limits=RunLimits(max_route_length=20.0), log=lambda s: None)
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the script imports the repository's test kit
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    ckpt = ResultsCheckpoint(out / "checkpoint.json")
    deadline = time.time() + 90
    try:
        while time.time() < deadline and proc.poll() is None:
            if ckpt.path.exists() and len(ckpt.load()) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    first = ckpt.load()
    assert 1 <= len(first) < 4
    lines = []
    summary = run_evaluation(
        AutopilotFactory(),
        "autopilot",
        [devtest_route("0")],
        [0, 1, 2, 3],
        out,
        backend=FAST_BACKEND,
        limits=LIMITS,
        resume=True,
        log=lines.append,
    )
    final = ckpt.load()
    assert _keys(final) == [("autopilot", "0", s) for s in range(4)]
    assert len(summary.ran) == 4 - len(first) and len(summary.skipped) == len(first)
    assert sorted(k for k in summary.skipped) == sorted((r["route_id"], r["seed"]) for r in first)
    # the records finished before the kill are untouched
    by_key = {(r["route_id"], r["seed"]): r for r in final}
    for r in first:
        assert by_key[(r["route_id"], r["seed"])] == r
    assert any("resume" in s for s in lines)
    assert json.loads((out / "config_autopilot.json").read_text())["seeds"] == [0, 1, 2, 3]


def test_two_workers_write_every_record_once(tmp_path):
    summary = run_evaluation(
        AutopilotFactory(),
        "autopilot",
        [devtest_route("0")],
        [0, 1, 2],
        tmp_path,
        backend=FAST_BACKEND,
        limits=LIMITS,
        workers=2,
        log=lambda s: None,
    )
    records = ResultsCheckpoint(tmp_path / "checkpoint.json").load()
    assert _keys(records) == [("autopilot", "0", s) for s in range(3)]
    assert len(summary.ran) == 3
    assert all(r["failure"] is None for r in records), [r["failure"] for r in records]


@pytest.mark.skipif(not ray_available(), reason="the optional 'ray' extra is not installed (pip install -e .[ray])")
def test_ray_local_instance_runs_the_routes(tmp_path):
    from drivewm.factory import AgentSpec

    summary = run_evaluation(
        AgentSpec("autopilot"),
        "autopilot",
        [devtest_route("0")],
        [0, 1],
        tmp_path,
        backend=FAST_BACKEND,
        limits=RunLimits(max_route_length=20.0, frames_every=1.0),
        workers=2,
        ray_address="local",
        log=lambda s: None,
    )
    records = ResultsCheckpoint(tmp_path / "checkpoint.json").load()
    assert _keys(records) == [("autopilot", "0", 0), ("autopilot", "0", 1)]
    assert all(r["failure"] is None for r in records)
    assert len(summary.ran) == 2
    for r in records:  # frames come back from the task as bytes and land in the output folder
        assert Path(r["frames"]).is_file() and Path(r["frames"]).is_relative_to(tmp_path)


def test_route_and_seed_selection_and_missing_maps():
    routes = parse_routes("routes_devtest")
    assert [r.id for r in select_routes(routes, "3,0")] == ["3", "0"]
    assert select_routes(routes, None) == routes
    with pytest.raises(ValueError, match=r"unknown route ids \['9'\]"):
        select_routes(routes, "0,9")
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("0,5,7") == [0, 5, 7]
    for bad in ("0", "x", "1,1", "-1,2"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    r = routes[0]
    with pytest.raises(FileNotFoundError, match=r"missing map: map Town12 \(routes 7\)"):
        check_towns([r, Route("7", "Town12", r.waypoints_world, r.yaw)])
    check_towns(routes)
    with pytest.raises(ValueError, match="--workers 1"):
        run_evaluation(AutopilotFactory(), "a", routes[:1], [0], "unused", BackendSpec(kind="carla"), workers=2)
    with pytest.raises(ValueError, match="backend must be"):
        BackendSpec(kind="unreal")
