"""Action-relevance metrics (`drivewm.evaluation.relevance.metrics`) against scipy, plain loops and
hand-computed values."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from agents import AgentClass
from drivewm.evaluation.relevance.metrics import (
    auroc,
    dependent_score,
    false_accept_rate,
    kendall_tau,
    occupancy_counts,
    per_scene,
    rank_per_scene,
    relevance_summary,
    spearman_rho,
    summarize,
    top1_regret,
    unsafety,
)
from occupancy import GridSpec
from planner import Prediction
from planner.proposals import ProposalConfig, generate_proposals
from planner.scorer import Gate, ScorerConfig, ScoreResult, Soft, score_plans
from planner.world_models import ConstantVelocityWorldModel
from tests.planner.planner_scenes import agents, observation, privileged


@pytest.mark.parametrize("seed", range(5))
def test_rank_correlations_match_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    # ties on purpose (scores quantised like gated plan scores)
    xq, yq = np.round(x * 2) / 2, np.where(rng.random(40) < 0.3, 0.0, np.round(y, 1))
    for a, b in ((x, y), (xq, yq), (xq, xq)):
        assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)
        assert spearman_rho(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert math.isnan(kendall_tau(np.ones(5), np.arange(5.0)))
    assert math.isnan(spearman_rho(np.arange(5.0), np.zeros(5)))


def _plain_auroc(scores, labels):
    pos = [s for s, lab in zip(scores, labels) if lab]
    neg = [s for s, lab in zip(scores, labels) if not lab]
    total = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return total / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_plain_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(60) < 0.3
    scores = np.round(labels * 0.8 + rng.normal(size=60), 1)  # ties included
    assert auroc(scores, labels) == pytest.approx(_plain_auroc(scores, labels), abs=1e-12)
    assert auroc(labels.astype(float), labels) == 1.0 and auroc(-labels.astype(float), labels) == 0.0
    assert math.isnan(auroc(scores, np.zeros(60, dtype=bool)))


def test_regret_false_accepts_and_summary():
    pred = np.array([[0.9, 0.2, 0.5], [0.1, 0.3, 0.2]])
    true = np.array([[0.4, 0.8, 0.6], [0.0, 0.7, 0.7]])
    assert top1_regret(pred, true).tolist() == pytest.approx([0.4, 0.0])
    assert false_accept_rate([True, False, True, True], [True, True, False, False]) == 0.5
    assert math.isnan(false_accept_rate([True], [False]))
    assert per_scene(kendall_tau, pred, true).tolist() == pytest.approx(
        [stats.kendalltau(p, t).statistic for p, t in zip(pred, true)]
    )
    s = relevance_summary(pred, true, pred_unsafe=1 - pred, true_unsafe=true < 0.5)
    # unsafety 1 - pred: unsafe plans score 0.1 and 0.9, safe ones 0.8, 0.5, 0.7, 0.8 → 4 of 8 pairs ranked right
    assert s["num_scenes"] == 2 and s["unsafe_auroc"] == pytest.approx(0.5)
    assert s["top1_regret"]["mean"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"\[S, N\]"):
        top1_regret(pred, true[:, :2])


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


def test_dependent_score_and_unsafety_on_a_planner_scene():
    """A car coming head-on in the ego's lane (constant velocity, ground truth): every plan that stays in
    the lane collides (certain, so unsafe 1 and a dependent score of at most 0.5), the other lane is safe."""
    obs = observation(8.0)
    wm = ConstantVelocityWorldModel("cv-gt")
    scene = wm.encode_privileged(obs, privileged(agents((25.0, 0.0, math.pi, 8.0, AgentClass.CAR))))
    lanes = ProposalConfig(lateral_offsets=(0.0, 3.5), speed_fractions=(0.25, 0.5, 1.0), target_speed=8.0)
    props = generate_proposals(scene.route, scene.route_valid, scene.speed, lanes)
    res = score_plans(props, wm.rollout(scene, props.plans), scene.route, scene.route_valid)
    end_y = props.dense[0, :, -1, 1]
    own, other = end_y.abs() < 0.5, (end_y - 3.5).abs() < 0.5
    dep, u = dependent_score(res)[0], unsafety(res, ScorerConfig())[0]
    assert bool((u[own] == 1.0).all()) and bool((dep[own] <= 0.5).all())
    assert bool((u[other] < 0.5).all()) and bool((dep[other] > 0.5).any())
