import numpy as np
import pytest
import torch
from nuscenes.eval.prediction import metrics as devkit

from agents.metrics import (
    aggregate,
    forecast_metrics,
    min_ade_k,
    min_fde_k,
    miss_rate_k,
    mode_distances,
    rank_over_top_k,
)


def _random_case(seed: int, B: int = 3, A: int = 5, K: int = 6, T: int = 12):
    g = torch.Generator().manual_seed(seed)
    gt = torch.cumsum(torch.randn(B, A, T, 2, generator=g, dtype=torch.float64), dim=-2)
    scale = torch.rand(B, A, K, 1, 1, generator=g, dtype=torch.float64) * 1.2 + 0.05  # good and bad modes
    pred = gt[:, :, None] + torch.randn(B, A, K, T, 2, generator=g, dtype=torch.float64) * scale
    probs = torch.softmax(torch.randn(B, A, K, generator=g, dtype=torch.float64), -1)  # distinct a.s.
    return pred, probs, gt, torch.ones(B, A, T, dtype=torch.bool)


def _devkit_per_agent(pred, probs, gt):
    """The devkit's own functions, called per agent as its Metric classes do: [B, A, K] for k = 1..K."""
    B, A, K = probs.shape
    out = {"ade": np.zeros((B, A, K)), "fde": np.zeros((B, A, K)), "mr": np.zeros((B, A, K))}
    for b in range(B):
        for a in range(A):
            p, pr = pred[b, a].numpy(), probs[b, a].numpy()
            stacked = devkit.stack_ground_truth(gt[b, a].numpy(), K)
            out["ade"][b, a] = devkit.min_ade_k(p, stacked, pr)[0]
            out["fde"][b, a] = devkit.min_fde_k(p, stacked, pr)[0]
            out["mr"][b, a] = devkit.miss_rate_top_k(p, stacked, pr, 2.0)[0]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_devkit_on_random_cases(seed):
    pred, probs, gt, valid = _random_case(seed)
    ref = _devkit_per_agent(pred, probs, gt)
    K = probs.shape[-1]
    for k in range(1, K + 1):
        np.testing.assert_allclose(
            min_ade_k(pred, probs, gt, valid, k).value.numpy(), ref["ade"][..., k - 1], rtol=1e-12
        )
        np.testing.assert_allclose(
            min_fde_k(pred, probs, gt, valid, k).value.numpy(), ref["fde"][..., k - 1], rtol=1e-12
        )
        mr = miss_rate_k(pred, probs, gt, valid, k)
        np.testing.assert_array_equal(mr.value.numpy(), ref["mr"][..., k - 1])
        # aggregation is the devkit's RowMean over agents
        rows = ref["mr"].reshape(-1, K)
        assert mr.mean() == pytest.approx(devkit.RowMean()(rows)[k - 1], abs=1e-12)
    assert 0.0 < ref["mr"].mean() < 1.0  # the case exercises both outcomes
    # k beyond K uses all modes, like the devkit's desired_number_of_modes pads with the last value
    torch.testing.assert_close(
        min_ade_k(pred, probs, gt, valid, K + 4).value, min_ade_k(pred, probs, gt, valid, K).value
    )


def test_pairwise_layer_matches_devkit_distances():
    pred, _, gt, valid = _random_case(4, B=2, A=2, K=3, T=5)
    md = mode_distances(pred, gt, valid)
    for b in range(2):
        for a in range(2):
            stacked = devkit.stack_ground_truth(gt[b, a].numpy(), 3)
            np.testing.assert_allclose(md.ade[b, a].numpy(), devkit.mean_distances(pred[b, a].numpy(), stacked)[0])
            np.testing.assert_allclose(md.fde[b, a].numpy(), devkit.final_distances(pred[b, a].numpy(), stacked)[0])
            np.testing.assert_allclose(md.max[b, a].numpy(), devkit.max_distances(pred[b, a].numpy(), stacked)[0])


def test_hand_made_case():
    # one agent, 2 steps, 3 modes; gt at (0,0),(0,0)
    gt = torch.zeros(1, 1, 2, 2)
    pred = torch.tensor([[[[[3.0, 4.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 1.0]]]]])
    probs = torch.tensor([[[0.5, 0.3, 0.2]]])
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    m = forecast_metrics(pred, probs, gt, valid, ks=(1, 2, 3))
    # mode ADEs: 5, 1.5, 0.5; FDEs: 5, 2, 1; max: 5, 2, 1 (miss iff >= 2)
    assert float(m["minADE_1"].value) == 5.0 and float(m["minADE_2"].value) == 1.5 and float(m["minADE_3"].value) == 0.5
    assert float(m["minFDE_1"].value) == 5.0 and float(m["minFDE_2"].value) == 2.0 and float(m["minFDE_3"].value) == 1.0
    assert float(m["MR_1"].value) == 1.0 and float(m["MR_2"].value) == 1.0 and float(m["MR_3"].value) == 0.0
    ref = devkit.min_ade_k(pred[0, 0].numpy(), devkit.stack_ground_truth(gt[0, 0].numpy(), 3), probs[0, 0].numpy())
    np.testing.assert_allclose(ref[0], [5.0, 1.5, 0.5])
    agg = aggregate(m)
    assert agg["num_agents"] == 1.0 and agg["MR_3"] == 0.0


def test_partial_validity_matches_plain_loop():
    pred, probs, gt, _ = _random_case(7, B=2, A=4, K=5, T=8)
    g = torch.Generator().manual_seed(8)
    valid = torch.rand(2, 4, 8, generator=g) > 0.4
    valid[1, 3] = False  # an agent with no valid future
    m = forecast_metrics(pred, probs, gt, valid, ks=(1, 3))
    assert not bool(m["minADE_1"].valid[1, 3]) and float(m["minADE_1"].value[1, 3]) == 0.0
    for b in range(2):
        for a in range(4):
            steps = [t for t in range(8) if valid[b, a, t]]
            if not steps:
                continue
            order = sorted(range(5), key=lambda i: -float(probs[b, a, i]))
            for k in (1, 3):
                ades, fdes, misses = [], [], []
                for i in order[:k]:
                    d = [float(torch.dist(pred[b, a, i, t], gt[b, a, t])) for t in steps]
                    ades.append(sum(d) / len(d))
                    fdes.append(d[-1])
                    misses.append(max(d) >= 2.0)
                assert float(m[f"minADE_{k}"].value[b, a]) == pytest.approx(min(ades), rel=1e-12)
                assert float(m[f"minFDE_{k}"].value[b, a]) == pytest.approx(min(fdes), rel=1e-12)
                assert float(m[f"MR_{k}"].value[b, a]) == float(all(misses))
    valid_ade = m["minADE_1"].value[m["minADE_1"].valid]
    assert m["minADE_1"].mean() == pytest.approx(float(valid_ade.mean()), rel=1e-12)


def test_rank_over_top_k_ties_and_max():
    v = torch.tensor([[3.0, 1.0, 2.0]])
    p = torch.tensor([[0.4, 0.2, 0.4]])  # tie between mode 0 and 2: mode 0 first
    assert float(rank_over_top_k(v, p, 1)) == 3.0
    assert float(rank_over_top_k(v, p, 2)) == 2.0
    assert float(rank_over_top_k(v, p, 2, "max")) == 3.0


@pytest.mark.parametrize(
    ("mutate", "msg"),
    [
        (lambda c: {**c, "pred": c["pred"][..., 0]}, "pred must be"),
        (lambda c: {**c, "gt": c["gt"][:, :, :-1]}, "gt must be"),
        (lambda c: {**c, "valid": c["valid"].float()}, "valid must be a bool"),
        (lambda c: {**c, "probs": c["probs"][..., :-1]}, "probs must be"),
        (lambda c: {**c, "pred": c["pred"].clone().fill_(float("nan"))}, "pred contains NaN"),
        (lambda c: {**c, "gt": c["gt"].clone().fill_(float("inf"))}, "gt contains NaN"),
        (lambda c: {**c, "probs": c["probs"].clone().fill_(float("nan"))}, "probs contains NaN"),
        (lambda c: {**c, "k": 0}, "k must be a positive int"),
    ],
)
def test_bad_input_names_the_field(mutate, msg):
    pred, probs, gt, valid = _random_case(9, B=1, A=2, K=3, T=4)
    c = mutate({"pred": pred, "probs": probs, "gt": gt, "valid": valid, "k": 1})
    with pytest.raises(ValueError, match=msg):
        min_ade_k(c["pred"], c["probs"], c["gt"], c["valid"], c["k"])
