import json

from drivewm.cli import main
from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint

ROUTES_XML = """<?xml version="1.0"?>
<routes>
  <route id="5" town="Town12">
    <waypoint x="10.0" y="20.0" z="0.0" pitch="0" roll="0" yaw="0"/>
    <waypoint x="60.0" y="20.0" z="0.0" pitch="0" roll="0" yaw="0"/>
  </route>
</routes>
"""

FAST = ["--vehicles", "2", "--pedestrians", "0", "--camera-size", "32x18", "--max-route-length", "20"]


def test_closed_loop_command_runs_resumes_and_reports(tmp_path, capsys):
    out = tmp_path / "cl"
    args = [
        "eval",
        "closed-loop",
        "--agent",
        "autopilot",
        "--routes",
        "routes_devtest",
        "--route-ids",
        "0",
        "--seeds",
        "1",
        "--out",
        str(out),
        "--frames-every",
        "1.0",
        *FAST,
    ]
    assert main(args) == 0
    records = ResultsCheckpoint(out / "checkpoint.json").load()
    assert [(r["agent"], r["route_id"], r["seed"]) for r in records] == [("autopilot", "0", 0)]
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["autopilot"]["command"]["agent"] == "autopilot"
    assert res["aggregate"]["autopilot"]["runs"] == 1
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "1 reused (--resume)" in capsys.readouterr().out
    assert len(ResultsCheckpoint(out / "checkpoint.json").load()) == 1


def test_clear_errors(tmp_path, capsys):
    xml = tmp_path / "r.xml"
    xml.write_text(ROUTES_XML)
    base = ["eval", "closed-loop", "--agent", "autopilot", "--out", str(tmp_path / "o")]
    assert main([*base, "--routes", str(xml)]) == 2
    err = capsys.readouterr().err
    assert "missing map: map Town12 (routes 5)" in err and "Town01" in err and len(err.strip().splitlines()) == 1
    assert main([*base, "--routes", "routes_devtest", "--route-ids", "42"]) == 2
    assert "unknown route ids ['42']" in capsys.readouterr().err
    assert (
        main(["eval", "closed-loop", "--agent", "drivewm", "--routes", "routes_devtest", "--out", str(tmp_path)]) == 2
    )
    assert "--ckpt" in capsys.readouterr().err
    assert main([*base, "--routes", "routes_devtest", "--agent", "nobody"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("drivewm eval closed-loop: error: ") and "unknown agent 'nobody'" in err


def test_carla_backend_without_server_fails_in_one_line(tmp_path, capsys):
    args = [
        "eval",
        "closed-loop",
        "--agent",
        "cv-gt",
        "--routes",
        "routes_devtest",
        "--backend",
        "carla",
        "--port",
        "2999",
        "--carla-timeout",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no CARLA server answered at 127.0.0.1:2999" in err and len(err.strip().splitlines()) == 1
