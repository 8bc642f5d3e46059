"""Open-loop metrics (`drivewm.evaluation.open_loop.metrics`) on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from agents import EGO, AgentClass
from drivewm.evaluation.open_loop.metrics import (
    at_and_average,
    collisions_per_step,
    detection_scores,
    l2_per_step,
    light_metrics,
    match_agents,
    open_loop_metrics,
    plan_dependent_cells,
)
from occupancy import GridSpec


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


def test_match_agents_gates_and_assigns_one_to_one():
    det = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [10.5, 0.0], [50.0, 0.0]]])
    dv = torch.tensor([[True, True, True, True]])
    gt = torch.tensor([[[10.2, 0.0], [0.5, 0.0], [30.0, 0.0]]])
    gv = torch.tensor([[True, True, True]])
    m = match_agents(det, dv, gt, gv, radius=2.0)
    assert m.tolist() == [[1, 0, -1]]


def test_plan_dependent_cells_are_where_valid_branches_disagree():
    occ = torch.zeros(1, 3, 1, 2, 2, dtype=torch.bool)
    occ[0, :, 0, 0, 0] = True  # all branches agree: occupied
    occ[0, 0, 0, 0, 1] = True  # only branch 0 occupies (0, 1)
    occ[0, 2, 0, 1, 1] = True  # only the invalid branch 2 occupies (1, 1)
    valid = torch.tensor([[True, True, False]])
    dep = plan_dependent_cells(occ, valid)
    expected = torch.tensor([[False, True], [False, False]])
    for k in range(3):
        assert torch.equal(dep[0, k, 0], expected)
    assert not plan_dependent_cells(occ, torch.tensor([[True, False, False]])).any()  # one branch: nothing depends


def test_detection_scores_read_the_heatmap_at_centres_and_away_from_agents():
    from types import SimpleNamespace

    grid = GridSpec((-8.0, -8.0, -1.0), (8.0, 8.0, 3.0), (1.6, 1.6, 0.8))  # 10 x 10 BEV
    box = torch.zeros(1, 2, 7)
    box[0, 0] = torch.tensor([0.8, 0.8, 0.0, 0.0, 4.0, 2.0, 1.5])  # centre cell (5, 5)
    tg = SimpleNamespace(
        agent_box=box,
        agent_cls=torch.zeros(1, 2, dtype=torch.int64),
        agent_valid=torch.tensor([[True, False]]),
        agent_velocity=torch.zeros(1, 2, 2),
    )
    logits = torch.full((1, 3, 10, 10), -10.0)
    logits[0, 1, 5, 5] = 0.0  # 0.5 at the agent (class channel 1: the max over classes counts)
    logits[0, 0, 5, 6] = 5.0  # next to the agent: inside its Gaussian, not background
    logits[0, 2, 0, 9] = math.log(0.2 / 0.8)  # 0.2 far away
    out = detection_scores(logits, tg, grid)
    assert math.isclose(float(out["score_at_gt"][0, 0]), 0.5, rel_tol=1e-6)
    assert math.isnan(float(out["score_at_gt"][0, 1]))  # padding slot
    assert math.isclose(float(out["background_peak"][0]), 0.2, rel_tol=1e-5)


def test_light_metrics_count_a_hand_made_confusion():
    # true: red, red, green, none, unknown; predicted: red, green, green, red, red
    out = light_metrics(torch.tensor([0, 1, 1, 0, 0]), torch.tensor([0, 0, 1, 2, -1]))
    assert out["samples"] == 4
    assert out["confusion_true_by_pred"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert math.isclose(out["accuracy"], 0.5)
    assert math.isclose(out["red_recall"], 0.5) and math.isclose(out["red_precision"], 0.5)
    assert out["green_recall"] == 1.0 and out["none_recall"] == 0.0 and out["none_precision"] is None
