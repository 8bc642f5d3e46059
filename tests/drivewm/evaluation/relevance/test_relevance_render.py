"""The relevance report from results shaped like a run's: every model row rendered alike (a new world
model such as an object-level outcome model is one more row), a reliability diagram for every
probability a row carries, and headline figures checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from drivewm.evaluation.common.targets import Verdict
from drivewm.evaluation.relevance.metrics import summarize
from drivewm.evaluation.relevance.render import headlines, probability_panels, tau_per_scene, write_reports

ROWS = ["drivewm", "outcome", "cv-gt", "empty", "oracle"]


def _results(scenes: int = 5, plans: int = 10, seed: int = 0) -> dict:
    """A run's results: the truth per scene, each row a noisier copy of it (the oracle exact, empty flat);
    `outcome` carries a collision, off-road and red-light probability per plan, `drivewm` a collision
    probability per plan and a red-light probability per scene."""
    rng = np.random.default_rng(seed)
    noise = {"drivewm": 0.5, "outcome": 0.2, "cv-gt": 0.35, "oracle": 0.0}
    noise_unsafe = {"drivewm": 0.5, "outcome": 0.1, "cv-gt": 0.8, "oracle": 0.0}
    records = []
    for s in range(scenes):
        true = rng.uniform(0, 1, plans)
        unsafe = true < 0.3
        true = np.where(unsafe, 0.0, true)
        dep = np.clip(true + rng.normal(0, 0.05, plans), 0, 1)
        truth = {
            "score": true.tolist(),
            "dependent": dep.tolist(),
            "collision": unsafe.tolist(),
            "off_road": (rng.uniform(0, 1, plans) < 0.1).tolist(),
            "red_light": [False] * plans,
            "unsafe": unsafe.tolist(),
            "light_red": bool(s % 2),
        }
        models = {}
        for row in ROWS:
            if row == "empty":
                score, d, u = np.ones(plans), np.ones(plans), np.zeros(plans)
            else:
                score = true + rng.normal(0, noise[row], plans)
                d = dep + rng.normal(0, noise[row], plans)
                u = np.clip(unsafe.astype(float) + rng.normal(0, noise_unsafe[row], plans), 0, 1)
            rec = {
                "score": score.tolist(),
                "dependent": d.tolist(),
                "unsafety": u.tolist(),
                "best": int(np.argmax(score)),
                "finite": True,
                "occ_intersection": [3] * 6,
                "occ_union": [5] * 6,
            }
            if row == "drivewm":
                rec["probabilities"] = {"collision": u.tolist(), "light_red": 0.7}
            if row == "outcome":
                rec["probabilities"] = {"collision": u.tolist(), "off_road": (0.1 * np.ones(plans)).tolist()}
                rec["probabilities"]["red_light"] = [0.01] * plans
            models[row] = rec
        records.append({"index": s, "constructed_unsafe": unsafe.tolist(), "truth": truth, "models": models})
    return {
        "config": {
            "towns": ["Town05"],
            "scenes": scenes,
            "plans": plans,
            "seed": 0,
            "oracle_dt": 0.1,
            "threshold": 0.5,
            "latency_plans": [16, 128],
            "ckpt": None,
        },
        "protocol": "relevance-v1",
        "seed": 0,
        "metadata": {"git_commit": "abc1234"},
        "models": summarize(records, ROWS, 0.5),
        "latency_ms": {r: {"16": 20.0, "128": 250.0 if r == "drivewm" else 40.0} for r in ROWS},
        "scenes": records,
    }


def test_tau_per_scene_and_headlines_against_scipy():
    res = _results()
    tau = tau_per_scene(res, "drivewm", dependent=True)
    for s, rec in enumerate(res["scenes"]):
        ref = stats.kendalltau(rec["models"]["drivewm"]["dependent"], rec["truth"]["dependent"]).statistic
        assert tau[s] == pytest.approx(ref)
    heads = {(h.figure, h.subject): h for h in headlines(res)}
    # every row under test gets the same headlines; the reference rows none
    assert {s for _, s in heads} == {"drivewm", "outcome"}
    h = heads[("τ on the model-dependent terms", "drivewm")]
    base = tau_per_scene(res, "cv-gt", dependent=True)
    d = tau - base
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert h.delta.mean == pytest.approx(d.mean()) and h.delta.hi - h.delta.mean == pytest.approx(half)
    assert (
        h.baseline == "cv-gt"
        and h.reference == "oracle"
        and h.reference_value.mean == pytest.approx(np.mean(tau_per_scene(res, "oracle", dependent=True)))
    )
    # the outcome row is much closer to the truth than cv-gt: its AUROC beats it with a whole interval
    auc = heads[("unsafe-plan AUROC", "outcome")]
    assert auc.delta.lo > 0 and auc.verdict is Verdict.MET
    assert auc.value.mean == pytest.approx(res["models"]["outcome"]["unsafe_auroc"])
    # the planner step budget: 250 ms ≤ 300 ms
    assert heads[("planner step, N = 128 [ms]", "drivewm")].verdict is Verdict.MET


def test_a_reliability_diagram_for_every_probability_carried():
    res = _results()
    panels = probability_panels(res)
    assert set(panels) == {
        "drivewm: collision",
        "drivewm: light red",
        "outcome: collision",
        "outcome: off road",
        "outcome: red light",
    }
    p, t = panels["drivewm: light red"]
    assert len(p) == 5 and t.tolist() == [False, True, False, True, False]  # one per scene
    p, t = panels["outcome: off road"]
    assert len(p) == 50 and t.tolist() == [x for r in res["scenes"] for x in r["truth"]["off_road"]]


def test_report_pages_and_plots(tmp_path):
    res = _results()
    write_reports(tmp_path, res)
    page = (tmp_path / "report.html").read_text()
    md = (tmp_path / "report.md").read_text()
    for name in ("scores", "tau", "roc", "reliability"):
        png = tmp_path / "figures" / f"{name}.png"
        assert f"src='figures/{name}.png'" in page and f"](figures/{name}.png)" in md
        with Image.open(png) as img:
            assert img.size[0] <= 1240 and np.asarray(img.convert("L")).std() > 5
    # the wide table is split: ranking, then rejection/occupancy/latency, then calibration
    for anchor in ("summary", "ranking", "rejection", "calibration"):
        assert f"id='{anchor}'" in page
    lines = md.splitlines()
    assert sum(x.startswith("| outcome |") for x in lines) == 2  # ranking, rejection
    assert sum(x.startswith("| outcome: ") for x in lines) == 3  # calibration: one row per probability
    assert "outcome: off road" in md and "✓ met" in md
