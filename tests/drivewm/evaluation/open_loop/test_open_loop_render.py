"""Open-loop headline figures and plots from results shaped like a run's (per-scene metrics of three
scenes), checked against hand-computed paired differences; the real run's report is checked end to end
by the browser test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from drivewm.evaluation.common.targets import Verdict
from drivewm.evaluation.open_loop.render import headlines, write_plots

TIMES = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def _per_horizon(iou_at_1s: float) -> dict:
    return {"geometry_iou": [iou_at_1s + 0.1, iou_at_1s, 0.3, 0.2, 0.1, 0.1], "miou": [0.2] * 6}


def _results() -> dict:
    model = {"s0": 0.50, "s1": 0.40, "s2": 0.45}
    copy = {"s0": 0.40, "s1": 0.35, "s2": 0.30}
    return {
        "horizon_times": TIMES,
        "eval_config": {"planning_horizons": [1.0, 2.0, 3.0]},
        "occupancy_per_scene": {
            "model": {s: _per_horizon(v) for s, v in model.items()},
            "copy_last_own": {s: _per_horizon(v) for s, v in copy.items()},
        },
        "occupancy": {
            k: {"per_horizon": [{"geometry_iou": 0.4 - 0.05 * t, "miou": 0.2} for t in range(6)]}
            for k in ("model", "copy_last_own", "copy_last_gt", "plan_off")
        },
        "agents": {"matching": {"modes": 3}},
        "agents_per_scene": {
            "model": {"s0": {"minADE_1": 2.0, "minADE_5": 1.0}, "s1": {"minADE_1": 3.0, "minADE_5": 1.5}},
            "cv_own_detections": {"s0": {"minADE_1": 2.5, "minADE_5": 2.5}, "s1": {"minADE_1": 2.0, "minADE_5": 2.0}},
        },
        "planning": {
            k: {
                "l2": {"avg": {"1.0": 0.5 * f, "2.0": 1.0 * f, "3.0": 1.5 * f}},
                "collision": {"avg": {"1.0": 0.0, "2.0": 0.01 * f, "3.0": None}},
            }
            for k, f in (("model", 1.0), ("ego_status_mlp", 1.2), ("constant_velocity", 2.0))
        },
        "probabilities": {"red light": {"prob": [0.9, 0.8, 0.1, 0.2], "label": [True, False, False, False]}},
    }


def test_headlines_pair_scenes():
    heads = {h.figure: h for h in headlines(_results())}
    occ = heads["occupancy IoU at 1 s"]
    d = np.array([0.10, 0.05, 0.15])  # model − copy-last per scene at 1 s
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)  # 4.303 · 0.05 / √3 = 0.124
    assert occ.delta.mean == pytest.approx(0.10) and occ.delta.lo == pytest.approx(0.10 - half)
    assert occ.value.mean == pytest.approx(0.45) and occ.baseline_value.mean == pytest.approx(0.35)
    assert occ.verdict is Verdict.NOT_SHOWN  # better in every scene, but three scenes cannot show it at 95 %
    top1 = heads["agent minADE, top mode [m]"]
    assert top1.delta.mean == pytest.approx(0.25) and top1.verdict is Verdict.NOT_MET  # worse than cv
    best = heads["agent minADE, best of 3 modes [m]"]
    d = np.array([-1.5, -0.5])
    assert best.delta.mean == pytest.approx(-1.0)
    assert best.delta.hi == pytest.approx(-1.0 + stats.t.ppf(0.975, 1) * d.std(ddof=1) / math.sqrt(2))
    assert best.verdict is Verdict.NOT_SHOWN


def test_plots(tmp_path):
    figures = write_plots(_results(), tmp_path)
    names = [p.name for p, _ in figures]
    assert names == ["occupancy_horizon.png", "planning_horizon.png", "reliability.png"]
    for p, caption in figures:
        with Image.open(p) as img:
            assert img.size[0] <= 1240 and np.asarray(img.convert("L")).std() > 5, caption
