"""Issue 17, closed loop: results keyed by everything that defines a run, so reruns and `--resume`
can neither mix nor skip.

- a rerun into an existing `--out` with another request aggregates only the requested runs (it
  reported runs = 3 after asking for one route);
- `--resume` with another `--max-route-length` reruns (it reused 60 m records under a 40 m header);
- a changed checkpoint is a new key (a fixed checkpoint + `--resume` skipped the route scored 0
  under the broken one);
- a route that failed for the infrastructure ("Simulation") is run again by `--resume`.
"""

from __future__ import annotations

import json
import shutil

from carla_bridge.closed_loop.runner import RunLimits
from drivewm.cli import main
from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint
from drivewm.evaluation.closed_loop.evaluate import digest, route_digest, run_identity
from drivewm.factory import AgentSpec
from tests.carla_bridge.closed_loop_testkit import FAST_BACKEND, devtest_route
from tests.drivewm.bad_input_files import write_checkpoint

FAST = ["--vehicles", "2", "--pedestrians", "0", "--camera-size", "32x18", "--frames-every", "0"]


def _run(out, *extra) -> int:
    argv = ["eval", "closed-loop", "--agent", "autopilot", "--routes", "routes_devtest", "--route-ids", "0"]
    return main([*argv, "--out", str(out), *FAST, *extra])


def _results(out) -> dict:
    return json.loads((out / "results.json").read_text())


def test_reruns_and_resume_neither_mix_nor_skip(tmp_path, capsys):
    out = tmp_path / "cl"
    assert _run(out, "--seeds", "2", "--max-route-length", "20") == 0
    assert _results(out)["aggregate"]["autopilot"]["runs"] == 2
    # another request into the same folder: only its runs are reported (the others stay on file)
    assert _run(out, "--seeds", "1", "--max-route-length", "20") == 0
    assert _results(out)["aggregate"]["autopilot"]["runs"] == 1
    assert [r["seed"] for r in _results(out)["records"]] == [0]
    assert len(ResultsCheckpoint(out / "checkpoint.json").load_all()) == 2
    # the same request with --resume reuses its record
    capsys.readouterr()
    assert _run(out, "--seeds", "1", "--max-route-length", "20", "--resume") == 0
    assert "1 reused (--resume)" in capsys.readouterr().out
    # another route length is another run: --resume must not reuse the 20 m record
    assert _run(out, "--seeds", "1", "--max-route-length", "12", "--resume") == 0
    assert "reused" not in capsys.readouterr().out
    (rec,) = _results(out)["records"]
    assert rec["limits"]["max_route_length"] == 12.0 and rec["route_length_m"] <= 12.5
    assert _results(out)["aggregate"]["autopilot"]["runs"] == 1
    # back to 20 m: the earlier record matches exactly and is reused
    assert _run(out, "--seeds", "1", "--max-route-length", "20", "--resume") == 0
    assert "1 reused (--resume)" in capsys.readouterr().out
    assert _results(out)["records"][0]["limits"]["max_route_length"] == 20.0


def test_a_route_failed_by_the_simulator_is_run_again_on_resume(tmp_path, capsys):
    out = tmp_path / "cl"
    assert _run(out, "--max-route-length", "12") == 0
    ckpt = ResultsCheckpoint(out / "checkpoint.json")
    (rec,) = ckpt.load()
    rec["failure"] = {"status": "Simulation", "message": "the worker process running it died"}
    rec["status"] = "Failed - Simulation"
    ckpt.append([rec])
    capsys.readouterr()
    assert _run(out, "--max-route-length", "12", "--resume") == 0
    assert "reused" not in capsys.readouterr().out
    (again,) = ckpt.load()
    assert again["failure"] is None


def test_the_run_identity_follows_the_checkpoint_content_not_its_name(tmp_path):
    """Same bytes under another name: same run; other bytes under the same name: another run."""
    route = devtest_route("0")
    limits = RunLimits(max_route_length=20.0)

    def run_id(ckpt) -> str:
        spec = AgentSpec("drivewm", str(ckpt))
        return digest(run_identity("drivewm", spec, FAST_BACKEND, limits, {"protocol": "closed-loop-v1"}))

    a = write_checkpoint(tmp_path / "a.ckpt")
    first = run_id(a)
    shutil.copy(a, tmp_path / "renamed.ckpt")
    assert run_id(tmp_path / "renamed.ckpt") == first
    write_checkpoint(a, nan_weights=True)  # retrained / fixed in place: other content
    assert run_id(a) != first
    # every setting that changes results is part of the identity, execution-only ones are not
    spec = AgentSpec("autopilot")
    base = digest(run_identity("autopilot", spec, FAST_BACKEND, limits, {"protocol": "closed-loop-v1"}))
    for changed in (
        run_identity("autopilot", spec, FAST_BACKEND, RunLimits(max_route_length=40.0), {"protocol": "closed-loop-v1"}),
        run_identity("autopilot", spec, FAST_BACKEND, limits, {"protocol": "closed-loop-v1", "rules": "bench2drive"}),
        run_identity("autopilot", spec, FAST_BACKEND, limits, {"protocol": "closed-loop-v2"}),
        run_identity(
            "autopilot", AgentSpec("autopilot", replan_hz=4.0), FAST_BACKEND, limits, {"protocol": "closed-loop-v1"}
        ),
    ):
        assert digest(changed) != base
    same = {"protocol": "closed-loop-v1", "workers": 4, "ray": "local", "frames_every": 0.0, "port": 2001}
    assert digest(run_identity("autopilot", spec, FAST_BACKEND, limits, same)) == base
    # a route's digest follows its content, not the file it came from
    import dataclasses

    assert route_digest(dataclasses.replace(route, source="elsewhere.xml")) == route_digest(route)
    moved = dataclasses.replace(route, waypoints_world=route.waypoints_world + 1.0)
    assert route_digest(moved) != route_digest(route)


def test_an_agent_that_cannot_be_set_up_stops_the_evaluation(tmp_path):
    """Before: every route recorded "Failed - Agent_init", DS 0, exit 0. Now nothing is scored, in this
    process and in worker processes alike."""
    import pytest

    from drivewm.evaluation.closed_loop import run_evaluation
    from drivewm.evaluation.closed_loop.evaluate import AgentInitError
    from tests.carla_bridge.closed_loop_testkit import SetupFailAgent

    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        with pytest.raises(AgentInitError, match="could not be set up for route 0: .*weights.ckpt is missing"):
            run_evaluation(
                SetupFailAgent,
                "setup-fail",
                [devtest_route("0")],
                [0, 1],
                out,
                backend=FAST_BACKEND,
                limits=RunLimits(max_route_length=12.0),
                workers=workers,
                log=lambda s: None,
            )
        assert ResultsCheckpoint(out / "checkpoint.json").load_all() == []

    def broken_factory():
        raise ValueError("checkpoint x.ckpt is truncated or damaged")

    with pytest.raises(AgentInitError, match="agent 'drivewm' could not be built: checkpoint x.ckpt is truncated"):
        run_evaluation(broken_factory, "drivewm", [devtest_route("0")], [0], tmp_path / "b", backend=FAST_BACKEND)
    assert not (tmp_path / "b").exists()
