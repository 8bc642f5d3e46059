import json
import math

import numpy as np
import pytest
from PIL import Image

from carla_bridge.closed_loop.runner import FrameLog, load_frames
from carla_bridge.scoring import InfractionKind
from drivewm.evaluation.closed_loop import render_route_gif, write_report
from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint

T975 = {1: 12.706204736, 2: 4.302652730}  # Student t quantiles (tables)


def _record(agent, route, seed, ds, rc, km, counts=None, frames=None, failure=None):
    c = {k.value: 0 for k in InfractionKind}
    c.update(counts or {})
    return {
        "agent": agent,
        "route_id": route,
        "town": "Town01",
        "seed": seed,
        "status": "Failed - Agent_runtime" if failure else ("Perfect" if ds == 100 else "Completed"),
        "failure": failure,
        "route_completion": rc,
        "infraction_penalty": ds / rc if rc else 1.0,
        "driving_score": ds,
        "km_driven": km,
        "counts": c,
        "infractions_per_km": {k: v / max(km, 0.001) for k, v in c.items()},
        "events": [],
        "sim_seconds": 10.0,
        "timing": {"wall_seconds": 5.0, "wall_per_sim_second": 0.5},
        "planner": {
            "latency_ms": {"p50": 100.0, "p90": 150.0, "p99": 160.0, "max": 170.0},
            "rejections": 1,
            "fallbacks": 1,
            "replans": 20,
        }
        if agent == "drivewm"
        else {"steps": 200},
        **({"frames": frames} if frames else {}),
    }


def _frames(path, n=4):
    log = FrameLog(every=0.5)
    rng = np.random.default_rng(0)
    for i in range(n):
        frame = {
            "time": np.array(0.5 * i, dtype=np.float32),
            "speed": np.array(3.0, dtype=np.float32),
            "camera": rng.integers(0, 255, (18, 32, 3), dtype=np.uint8),
            "route": np.stack([np.linspace(-10, 60, 30), np.zeros(30)], -1).astype(np.float32),
            "boxes": np.array([[12.0, 3.0, 0.2, 4.5, 1.9]], dtype=np.float32),
            "plans": np.cumsum(np.ones((3, 6, 3), dtype=np.float32), axis=1) * [2.0, 0.1, 0.0],
            "scores": np.array([0.2, 0.9, 0.5], dtype=np.float32),
            "best": np.array(1),
        }
        log.frames.append(frame)
    return log.save(path)


def test_report_puts_two_agents_side_by_side(tmp_path):
    frames = _frames(tmp_path / "frames" / "f.npz")
    assert len(load_frames(frames)) == 4
    ckpt = ResultsCheckpoint(tmp_path / "checkpoint.json")
    ckpt.append(
        [
            _record("drivewm", "0", 0, 60.0, 100.0, 0.1, {"collisions_vehicle": 1}, frames=str(frames)),
            _record("drivewm", "0", 1, 80.0, 100.0, 0.1),
            _record("drivewm", "1", 0, 100.0, 100.0, 0.2, failure={"status": "Agent_runtime", "message": "x"}),
            _record("autopilot", "0", 0, 50.0, 50.0, 0.05, {"red_light": 2}),
            _record("autopilot", "0", 1, 50.0, 50.0, 0.05),
            _record("autopilot", "1", 0, 50.0, 50.0, 0.1),
        ]
    )
    paths = write_report(tmp_path)
    res = json.loads(paths["results"].read_text())
    assert res["identical_routes_and_seeds"] is True
    assert res["seeds"] == [0, 1] and len(res["records"]) == 6
    assert "torch" in res["package_versions"] and "numpy" in res["package_versions"]
    d, a = res["aggregate"]["drivewm"], res["aggregate"]["autopilot"]
    assert d["driving_score"]["mean"] == pytest.approx(80.0)
    assert d["driving_score"]["ci95"] == pytest.approx(T975[2] * 20.0 / math.sqrt(3), abs=1e-3)
    assert a["driving_score"] == {"mean": 50.0, "ci95": 0.0}
    assert d["infractions_per_km"]["collisions_vehicle"] == pytest.approx(1 / 0.4, abs=1e-3)
    assert a["infractions_per_km"]["red_light"] == pytest.approx(2 / 0.2, abs=1e-3)
    assert d["failures"] == 1 and d["failure_statuses"] == ["Agent_runtime"]
    assert d["planner_latency_ms"]["p50"] == 100.0 and d["rejections"] == 3
    md = paths["md"].read_text()
    rows = [line for line in md.splitlines() if line.startswith("| drivewm |") or line.startswith("| autopilot |")]
    assert len(rows) == 2 * 3  # one row per agent in each of: scores, infractions per km, planner and timing
    assert "80.0 ± 49.7" in md and "50.0 ± 0.0" in md
    html = paths["html"].read_text()
    assert "<table>" in html and "drivewm" in html and "autopilot" in html
    gif = tmp_path / "videos" / "drivewm_0_s0.gif"  # the worst drivewm run with frames
    assert gif.is_file() and "videos/drivewm_0_s0.gif" in html
    assert Image.open(gif).n_frames == 4


def test_gif_and_missing_results(tmp_path):
    gif = render_route_gif(_frames(tmp_path / "f.npz", n=3), tmp_path / "x.gif", title="t")
    im = Image.open(gif)
    assert im.n_frames == 3 and im.size[0] > im.size[1]
    with pytest.raises(FileNotFoundError, match="no closed-loop results"):
        write_report(tmp_path / "empty")
