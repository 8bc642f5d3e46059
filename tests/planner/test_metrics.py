"""Open-loop metrics on hand-computed cases; relevance metrics against scipy and plain loops."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from agents import EGO, AgentClass
from planner.open_loop_metrics import at_and_average, collisions_per_step, l2_per_step, open_loop_metrics
from planner.relevance_metrics import (
    auroc,
    false_accept_rate,
    kendall_tau,
    mean_ci,
    per_scene,
    relevance_summary,
    spearman_rho,
    top1_regret,
)


def _straight(v: float, y: float = 0.0) -> torch.Tensor:
    t = torch.arange(1, 7) * 0.5
    return torch.stack([v * t, torch.full_like(t, y), torch.zeros_like(t)], -1)


def test_l2_both_conventions_hand_computed():
    pred = torch.stack([_straight(5.0), _straight(5.0)])
    gt = torch.stack([_straight(5.0, y=1.0), _straight(4.0)])  # errors: 1 m constant; 0.5·t m
    per = l2_per_step(pred, gt)
    assert torch.allclose(per[1], torch.arange(1, 7) * 0.5 * 1.0)
    res = at_and_average(per)
    # at 1 s: mean(1, 1.0) = 1.0; avg up to 1 s: mean over steps 0.5, 1.0 of mean(1, 0.5t) = mean(0.75, 1.0)
    assert res["at"][1.0] == pytest.approx(1.0)
    assert res["avg"][1.0] == pytest.approx(0.875)
    assert res["at"][3.0] == pytest.approx((1.0 + 3.0) / 2)
    assert res["avg"][3.0] == pytest.approx(float(np.mean([(1 + 0.5 * k) / 2 for k in range(1, 7)])))


def test_collision_rate_conventions_and_exclusion():
    # sample 0: a parked car 14 m ahead (x ∈ [11.75, 16.25]); the plan (5 m/s) hits it from t = 2 s
    # (front bumper 10 + 3.42 > 11.75) to the end (rear 15 - 0.66 < 16.25); the logged plan (2 m/s) never does.
    # sample 1: the logged future itself collides (car on the logged path) → excluded.
    # sample 2: a pedestrian crossing only at t = 3 s; a barrier (not counted) on the path.
    b, t, m = 3, 6, 2
    boxes = torch.zeros(b, t, m, 5)
    boxes[..., 3:] = torch.tensor([4.5, 1.9])
    valid = torch.zeros(b, t, m, dtype=torch.bool)
    boxes[0, :, 0, :2] = torch.tensor([14.0, 0.0])
    valid[0, :, 0] = True
    boxes[1, :, 0, :2] = torch.tensor([3.0, 0.0])
    valid[1, :, 0] = True
    boxes[2, 5, 0] = torch.tensor([15.0 + EGO.rear_axle_to_center, 0.0, 0.0, 0.6, 0.6])
    valid[2, 5, 0] = True
    boxes[2, :, 1] = torch.tensor([6.0, 0.0, 0.0, 0.5, 0.5])
    valid[2, :, 1] = True
    cls = torch.tensor([[AgentClass.CAR, AgentClass.CAR]] * 2 + [[AgentClass.PEDESTRIAN, AgentClass.BARRIER]])
    pred = torch.stack([_straight(5.0)] * 3)
    gt = torch.stack([_straight(2.0), _straight(2.0), _straight(2.0, y=30.0)])
    hits = collisions_per_step(pred, boxes, valid, cls)
    assert hits[0].tolist() == [False, False, False, True, True, True]
    assert hits[2].tolist() == [False] * 5 + [True]
    # counting the barrier too (passed at t ≤ 1 s)
    assert collisions_per_step(pred, boxes, valid)[2].tolist() == [True, True, False, False, False, True]
    res = open_loop_metrics(pred, gt, boxes, valid, cls)
    assert res.num_excluded == 1 and res.num_samples == 3
    # kept samples 0 and 2: per-step rates [0, 0, 0, .5, .5, 1]
    assert res.collision["at"][1.0] == 0.0 and res.collision["at"][2.0] == 0.5 and res.collision["at"][3.0] == 1.0
    assert res.collision["avg"][2.0] == pytest.approx(0.125)
    assert res.collision["avg"][3.0] == pytest.approx(2.0 / 6)
    assert res.to_dict()["collision"]["at"]["3.0"] == 1.0


def test_open_loop_bad_inputs():
    with pytest.raises(ValueError, match="pred"):
        l2_per_step(torch.zeros(2, 6), torch.zeros(2, 6, 3))
    with pytest.raises(ValueError, match="gt contains NaN"):
        l2_per_step(torch.zeros(2, 6, 3), torch.full((2, 6, 3), math.nan))
    with pytest.raises(ValueError, match="horizon"):
        at_and_average(torch.zeros(2, 6), (3.5,))
    with pytest.raises(ValueError, match="boxes"):
        collisions_per_step(torch.zeros(2, 6, 3), torch.zeros(2, 5, 1, 5), torch.ones(2, 5, 1, dtype=torch.bool))


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


def test_mean_ci_matches_scipy_t_interval():
    v = np.array([0.2, 0.5, 0.4, math.nan, 0.9, 0.1])
    ci = mean_ci(v)
    ok = v[~np.isnan(v)]
    lo, hi = stats.t.interval(0.95, len(ok) - 1, loc=ok.mean(), scale=stats.sem(ok))
    assert ci["mean"] == pytest.approx(ok.mean()) and ci["lo"] == pytest.approx(lo) and ci["hi"] == pytest.approx(hi)
    assert ci["n"] == 5 and ci["n_undefined"] == 1


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
    assert auroc(scores, labels) == pytest.approx(_plain_auroc(scores, labels))
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
    assert s["num_scenes"] == 2 and 0.0 <= s["unsafe_auroc"] <= 1.0
    assert s["top1_regret"]["mean"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"\[S, N\]"):
        top1_regret(pred, true[:, :2])
