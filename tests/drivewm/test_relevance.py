"""Action-relevance evaluation: plan construction, score parts, occupancy counts, aggregation (vs scipy
and hand-computed values) and one tiny end-to-end run on Town01 with the real lite simulator."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from drivewm.cli import main as cli_main
from drivewm.evaluation.relevance import (
    RelevanceConfig,
    _intercept,
    dependent_score,
    occupancy_counts,
    rank_per_scene,
    route_following_plan,
    run_relevance,
    summarize,
    unsafety,
)
from occupancy import GridSpec
from planner import Prediction
from planner.relevance_metrics import kendall_tau
from planner.scorer import Gate, ScorerConfig, ScoreResult, Soft


def test_route_following_plan_on_a_straight_route():
    route = torch.stack([torch.arange(-5.0, 80.0), torch.zeros(85)], -1)
    dense = route_following_plan(route, speed0=6.0, accel=0.0, v_max=6.0, lateral=0.0)
    t = torch.arange(1, 31) * 0.1
    assert torch.allclose(dense[:, 0], 6.0 * t, atol=1e-4)
    assert torch.allclose(dense[:, 1:], torch.zeros(30, 2), atol=1e-5)
    swerve = route_following_plan(route, speed0=6.0, accel=0.0, v_max=6.0, lateral=-3.5)
    assert abs(float(swerve[-1, 1]) + 3.5) < 1e-4 and float(swerve[:, 1].max()) <= 1e-6  # right = negative y
    assert float(swerve[14, 2]) < 0.0  # heading to the right mid-swerve
    fast = route_following_plan(route, speed0=6.0, accel=2.0, v_max=10.0, lateral=0.0)
    v = torch.diff(torch.cat([torch.zeros(1), fast[:, 0]])) / 0.1
    assert abs(float(v[-1]) - 10.0) < 1e-3 and float(v[0]) < 6.5  # jerk-limited onset, capped at v_max


def _result(gates: list[list[float]], ttc: list[float], coll_t: list[float], obst: list[float], agent: list[float]):
    n = len(ttc)
    soft = torch.ones(1, len(Soft), n)
    soft[0, Soft.TTC] = torch.tensor(ttc)
    return ScoreResult(
        gates=torch.tensor(gates).T[None],  # [1, G, N]
        soft=soft,
        score=torch.zeros(1, n),
        reason=torch.zeros(1, n, dtype=torch.int64),
        best=torch.zeros(1, dtype=torch.int64),
        collision_time=torch.tensor([coll_t]),
        obstacle_risk=torch.tensor([obst]),
        agent_risk=torch.tensor([agent]),
        progress=torch.zeros(1, n),
        finite=torch.ones(1, dtype=torch.bool),
    )


def test_dependent_score_and_unsafety_by_hand():
    # plans: clear (TTC ok), clear (TTC fails), collides at 1.5 s, off road, collides at 0.1 s and off road
    g = [[1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 0, 1], [1, 0, 0, 1]]
    res = _result(
        g, [1, 0, 0, 1, 0], [math.inf, math.inf, 1.5, math.inf, 0.1], [0, 0.2, 0.6, 0, 0.9], [0, 0.1, 0, 0, 0]
    )
    dep = dependent_score(res)[0]
    assert torch.allclose(dep, torch.tensor([1.0, 0.5, 0.25, 0.0, 0.0]))
    # true flags override the gates: a true collision at the scorer's 'no collision' time counts as t = 3 s
    dep_true = dependent_score(res, collision=torch.tensor([[True, False, False, False, False]]))[0]
    assert math.isclose(float(dep_true[0]), 0.5)
    dep_t = dependent_score(res, torch.tensor([[True] + [False] * 4]), None, torch.tensor([[0.6] + [math.inf] * 4]))
    assert dep_t[0, [0, 2]].tolist() == pytest.approx([0.1, 0.25])  # the earliest time wins
    cfg = ScorerConfig()
    u = unsafety(res, cfg)[0]
    assert torch.allclose(u, torch.tensor([0.0, max(0.2, 0.1 * 0.5 / 0.3), 0.6, 1.0, 1.0]), atol=1e-6)
    # accepted (u < 0.5) exactly where both model-dependent gates pass
    passes = (res.gates[0, Gate.NO_COLLISION] > 0) & (res.gates[0, Gate.DRIVABLE] > 0)
    assert torch.equal(u < 0.5, passes)
    edge = _result([[1, 1, 1, 1]], [1], [math.inf], [0.0], [cfg.agent_threshold])
    assert float(unsafety(edge, cfg)[0, 0]) == pytest.approx(0.5)


def test_occupancy_counts_vs_plain_loop():
    grid = GridSpec((-10.0, -10.0, -1.0), (10.0, 10.0, 5.4), (1.0, 1.0, 6.4))
    n, t = 2, 6
    rng = np.random.default_rng(0)
    pred_p = torch.from_numpy(rng.random((1, n, t, 20, 20))).float()
    truth = torch.from_numpy(rng.random((n, t, 20, 20)) > 0.6).float()
    plans = torch.zeros(1, n, t, 3)
    plans[0, 1, :, 0] = torch.arange(1, 7) * 1.0  # plan 1 moves forward, plan 0 stands
    pred = Prediction(
        grid=grid,
        obstacle_prob=pred_p,
        drivable_prob=torch.ones(1, 20, 20),
        light_probs=torch.tensor([[0.0, 0.0, 1.0]]),
        light_distance=torch.tensor([math.inf]),
        agent_trajs=torch.zeros(1, n, 0, 1, t, 3),
        agent_mode_probs=torch.zeros(1, n, 0, 1),
        agent_valid=torch.zeros(1, 0, dtype=torch.bool),
        agent_size=torch.zeros(1, 0, 3),
        agent_cls=torch.zeros(1, 0, dtype=torch.int64),
    )
    inter, union = occupancy_counts(pred, truth, plans)
    # plain loop: a cell is under the ego if its centre lies in the ego box (rear axle at the plan pose)
    ref_i, ref_u = np.zeros(t, int), np.zeros(t, int)
    for k in range(n):
        for s in range(t):
            x_rear = float(plans[0, k, s, 0])
            for i in range(20):
                for j in range(20):
                    cx, cy = -10 + i + 0.5, -10 + j + 0.5
                    ego = (x_rear + 1.38 - 2.042 <= cx <= x_rear + 1.38 + 2.042) and abs(cy) <= 0.925
                    if ego:
                        continue
                    p, q = bool(pred_p[0, k, s, i, j] >= 0.5), bool(truth[k, s, i, j] > 0.5)
                    ref_i[s] += p and q
                    ref_u[s] += p or q
    assert inter.tolist() == ref_i.tolist() and union.tolist() == ref_u.tolist()


def test_summarize_matches_scipy_per_scene():
    rng = np.random.default_rng(1)
    records = []
    for _ in range(5):
        true = rng.random(8)
        records.append(
            {
                "truth": {
                    "score": true.tolist(),
                    "dependent": rng.random(8).tolist(),
                    "unsafe": (true < 0.3).tolist(),
                    "collision": (true < 0.2).tolist(),
                    "off_road": (true < 0.1).tolist(),
                },
                "constructed_unsafe": [False] * 6 + [True] * 2,
                "models": {
                    "m": {
                        "score": (true + 0.3 * rng.random(8)).tolist(),
                        "dependent": rng.random(8).tolist(),
                        "unsafety": (1 - true).tolist(),
                        "occ_intersection": [1, 2, 0, 0, 0, 0],
                        "occ_union": [2, 2, 0, 0, 0, 4],
                    }
                },
            }
        )
    s = summarize(records, ["m"], 0.5)["m"]
    taus = [stats.kendalltau(r["models"]["m"]["score"], r["truth"]["score"]).statistic for r in records]
    assert s["kendall_tau"]["mean"] == pytest.approx(np.mean(taus))
    rhos = [stats.spearmanr(r["models"]["m"]["dependent"], r["truth"]["dependent"]).statistic for r in records]
    assert s["dependent"]["spearman_rho"]["mean"] == pytest.approx(np.mean(rhos))
    assert s["occupancy_iou"]["pooled"] == pytest.approx(3 / 8)
    assert s["unsafe_auroc"] == pytest.approx(1.0)  # unsafety = 1 - true score separates perfectly
    # a flat prediction carries no ranking information (0); a flat truth makes the scene undefined (NaN)
    pred = np.array([[0.5, 0.5, 0.5], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    true = np.array([[0.1, 0.2, 0.3], [1.0, 1.0, 1.0], [0.1, 0.2, 0.3]])
    got = rank_per_scene(kendall_tau, pred, true)
    assert got[0] == 0.0 and math.isnan(got[1]) and got[2] == pytest.approx(-1.0)


def test_bad_config_and_cli_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="checkpoint"):
        RelevanceConfig(models=("drivewm",)).validate()
    with pytest.raises(ValueError, match="models"):
        RelevanceConfig(models=("nope",)).validate()
    with pytest.raises(ValueError, match="plans"):
        RelevanceConfig(plans=2).validate()
    assert RelevanceConfig(models=("drivewm", "empty"), ckpt="x", plan_conditioning=False).rows() == [
        "drivewm-noplan",
        "empty",
    ]
    rc = cli_main(["eval", "relevance", "--model", "nope", "--out", str(tmp_path / "r")])
    assert rc == 2 and "models must be among" in capsys.readouterr().err
    rc = cli_main(["eval", "relevance", "--model", "empty", "--towns", "Town99", "--out", str(tmp_path / "r")])
    assert rc == 2 and "Town99" in capsys.readouterr().err


def test_tiny_end_to_end_run(tmp_path):
    cfg = RelevanceConfig(
        towns=("Town01",),
        scenes=1,
        plans=8,
        models=("cv-gt", "empty", "oracle"),
        warmup=(1.0, 3.0),
        num_vehicles=6,
        num_pedestrians=0,
        num_parked=2,
        num_props=0,
        unsafe_fraction=0.5,
        latency_repeats=1,
        latency_plans=(4,),
        figures=1,
    )
    res = run_relevance(cfg, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["seed"] == 0 and saved["config"]["plans"] == 8
    assert "git_commit" in saved["metadata"] and "torch" in saved["metadata"]["package_versions"]
    for f in ("report.md", "report.html", "figures/scene_000.png"):
        assert (tmp_path / f).stat().st_size > 0
    scene = res["scenes"][0]
    assert len(scene["kinds"]) == 8 and scene["kinds"][0] == "stop" and sum(scene["constructed_unsafe"]) == 4
    truth = scene["truth"]
    # the comfortable stop is safe, and a truly unsafe plan scores 0
    assert not truth["unsafe"][0]
    assert all(s == 0.0 for s, u in zip(truth["score"], truth["unsafe"]) if u)
    # the oracle's prediction is the true future: its plan-conditioned occupancy is exact
    orc = res["models"]["oracle"]
    assert orc["occupancy_iou"]["pooled"] == pytest.approx(1.0) or math.isnan(orc["occupancy_iou"]["pooled"])
    # the empty world sees no danger: everything accepted
    emp = res["models"]["empty"]
    assert emp["accepted_fraction"] == 1.0 and scene["models"]["empty"]["unsafety"] == [0.0] * 8
    assert set(res["latency_ms"]) == {"cv-gt", "empty", "oracle"}
    assert all(v > 0 for m in res["latency_ms"].values() for v in m.values())
    assert "| oracle |" in (tmp_path / "report.md").read_text()

    # resume: finished scenes are taken from scenes.partial.json (same config), not simulated again
    partial = {"config": res["config"], "records": json.loads(json.dumps(res["scenes"])), "latency": res["latency_ms"]}
    (tmp_path / "scenes.partial.json").write_text(json.dumps(partial))
    msgs: list[str] = []
    again = run_relevance(cfg, tmp_path, progress=msgs.append, resume=True)
    assert msgs == ["resuming after 1 finished scenes"]
    assert again["scenes"][0]["truth"] == scene["truth"] and not (tmp_path / "scenes.partial.json").exists()
    assert again["models"]["oracle"]["kendall_tau"] == pytest.approx(
        res["models"]["oracle"]["kendall_tau"], nan_ok=True
    )


def test_intercept_plans_meet_the_road_user():
    route = torch.stack([torch.arange(-5.0, 120.0), torch.zeros(125)], -1)
    for xy, vel, v0 in (
        ((20.0, 0.0), (0.0, 0.0), 10.0),
        ((25.0, 3.0), (4.0, 0.0), 8.0),
        ((30.0, -5.0), (0.0, 2.5), 6.0),
    ):
        hit = _intercept(torch.tensor(xy), torch.tensor(vel), v0)
        assert hit is not None
        dense = route_following_plan(route, v0, hit[0], 16.0, hit[1])
        centre = dense[:, :2] + 1.38 * torch.stack([torch.cos(dense[:, 2]), torch.sin(dense[:, 2])], -1)
        t = torch.arange(1, 31) * 0.1
        agent = torch.tensor(xy) + t[:, None] * torch.tensor(vel)
        assert float((centre - agent).norm(dim=-1).min()) < 1.5  # the ego's centre passes through the agent's
    assert _intercept(torch.tensor([40.0, 0.0]), torch.tensor([15.0, 0.0]), 5.0) is None  # too fast to catch


def test_learned_model_rows_with_and_without_plan_conditioning(active_plan_pathway):
    """The learned model (untrained, tiny config, plan pathway made active) runs through the same path
    on rendered cameras; the two rows share one model, and the plan-conditioning switch is restored
    after each call."""
    from carla_bridge.lite.backend import LiteBackend
    from carla_bridge.lite.config import LiteConfig
    from carla_bridge.maps import load_town
    from drivewm.evaluation.relevance import build_runners, evaluate_scene, prepare_scene
    from drivewm.model import DriveWorldModel, ModelConfig

    town01 = load_town("Town01")
    torch.manual_seed(0)
    model = active_plan_pathway(DriveWorldModel(ModelConfig())).eval()
    with torch.no_grad():  # an untrained drivable head gates every plan off-road: make it say "all road"
        model.drivable.weight.zero_()
        model.drivable.bias.fill_(5.0)
    h, w = model.config.image_size
    cfg = RelevanceConfig(
        towns=("Town01",), scenes=1, plans=6, models=("drivewm", "empty"), ckpt="unused", warmup=(0.5, 1.0)
    )
    lite = LiteConfig(num_vehicles=4, num_pedestrians=0, num_parked=0, num_props=0)
    backend = LiteBackend(town01, lite, render="cameras", render_every=10**9, image_size=(w, h))
    runners = build_runners(cfg, backend, model)
    assert [r.row for r in runners] == ["drivewm", "drivewm-noplan", "empty"]
    info = prepare_scene(backend, town01, cfg, 0, True)
    rec, _keep = evaluate_scene(backend, runners, cfg, info, True)
    on, off = rec["models"]["drivewm"], rec["models"]["drivewm-noplan"]
    assert len(on["score"]) == len(off["score"]) == 6 and on["finite"] and off["finite"]
    assert on["unsafety"] != off["unsafety"]  # the plan pathway changes the predicted risk under each plan
    assert model.plan_conditioning  # restored
    assert sum(on["occ_union"]) >= sum(on["occ_intersection"]) >= 0
