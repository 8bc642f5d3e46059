"""Shared report pieces: verdicts against targets, the intervals behind them (bootstrap over groups,
Wilson), the ROC curve and reliability bins behind the plots (against scikit-style hand computations
and our own AUROC), and the summary section."""

from __future__ import annotations

import html
import math

import numpy as np
import pytest
from scipy import stats

from drivewm.evaluation.common.plots import reliability_bins, roc_curve
from drivewm.evaluation.common.report import html_table, summary_html, summary_md
from drivewm.evaluation.common.stats import bootstrap_ci, mean_ci, wilson_ci
from drivewm.evaluation.common.targets import TARGETS, Estimate, Headline, Target, Verdict
from drivewm.evaluation.relevance.metrics import auroc

NAN = math.nan


@pytest.mark.parametrize(
    ("target", "value", "delta", "verdict"),
    [
        # beat the baseline (higher is better): judged on the paired difference's interval
        (Target("t", "s"), None, Estimate(0.05, 0.01, 0.09), Verdict.MET),
        (Target("t", "s"), None, Estimate(0.05, -0.01, 0.11), Verdict.NOT_SHOWN),
        (Target("t", "s"), None, Estimate(0.05), Verdict.NOT_SHOWN),  # one scene: no interval
        (Target("t", "s"), None, Estimate(-0.02, -0.05, 0.01), Verdict.NOT_MET),
        (Target("t", "s"), None, Estimate(0.0, -0.01, 0.01), Verdict.NOT_MET),  # a tie does not beat it
        (Target("t", "s"), None, None, Verdict.NO_DATA),
        # lower is better (minADE)
        (Target("t", "s", higher_is_better=False), None, Estimate(-0.4, -0.7, -0.1), Verdict.MET),
        (Target("t", "s", higher_is_better=False), None, Estimate(0.4, 0.1, 0.7), Verdict.NOT_MET),
        # an absolute bound on the value: DS ≥ 85
        (Target("t", "s", bound=85.0), Estimate(90.0, 86.0, 94.0), None, Verdict.MET),
        (Target("t", "s", bound=85.0), Estimate(90.0, 80.0, 100.0), None, Verdict.NOT_SHOWN),
        (Target("t", "s", bound=85.0), Estimate(84.0, 80.0, 88.0), None, Verdict.NOT_MET),
        (Target("t", "s", bound=85.0), Estimate(85.0, 85.0, 85.0), None, Verdict.MET),  # "≥" includes it
        # a budget judged on the measured value: ≤ 300 ms
        (Target("t", "s", False, 300.0, interval=False), Estimate(250.0), None, Verdict.MET),
        (Target("t", "s", False, 300.0, interval=False), Estimate(301.0), None, Verdict.NOT_MET),
    ],
)
def test_verdicts(target, value, delta, verdict):
    assert target.judge(value, delta) is verdict


def test_estimates_from_every_results_shape():
    assert Estimate.of({"mean": 2.0, "lo": 1.0, "hi": 3.0, "n": 4}) == Estimate(2.0, 1.0, 3.0, 4)
    assert Estimate.of({"mean": 60.0, "ci95": 5.0}) == Estimate(60.0, 55.0, 65.0)  # closed-loop aggregate
    assert Estimate.of({"mean": NAN}) is None and Estimate.of(None) is None and Estimate.of(NAN) is None
    assert not Estimate.of({"mean": 60.0, "ci95": None}).has_interval  # one run
    assert Estimate(0.41234, 0.4, 0.5).text(2) == "0.41 [0.40, 0.50]" and Estimate(3.0).text(1, "ms") == "3.0 ms"


def test_bootstrap_over_groups():
    groups = [np.array([1.0, 2.0]), np.array([3.0]), np.array([10.0, 0.0, 2.0])]

    def pooled_mean(gs) -> float:
        return float(np.concatenate(gs).mean())

    ci = bootstrap_ci(pooled_mean, groups, samples=4000)
    assert ci["mean"] == pytest.approx(18.0 / 6) and ci["n"] == 3
    assert ci["lo"] < ci["mean"] < ci["hi"]
    # every resample holds whole groups: the pooled mean can only be one of these values
    assert min(1.5, 3.0, 4.0) <= ci["lo"] and ci["hi"] <= 4.0
    one = bootstrap_ci(pooled_mean, groups[:1])
    assert math.isnan(one["lo"]) and one["mean"] == 1.5
    flaky = bootstrap_ci(lambda gs: NAN if len({id(g) for g in gs}) == 1 else 1.0, groups, samples=300)
    assert flaky["n_undefined"] > 0 and flaky["lo"] == 1.0  # undefined resamples dropped and counted


def test_wilson_interval_by_hand():
    # p = 4/5, z = 1.96: centre (0.8 + 1.9208/5) / (1 + 3.8415/5), half 1.96·sqrt(0.032 + 0.0384)/1.7683
    z = stats.norm.ppf(0.975)
    ci = wilson_ci(4, 5)
    centre = (0.8 + z * z / 10) / (1 + z * z / 5)
    half = z * math.sqrt(0.8 * 0.2 / 5 + z * z / 100) / (1 + z * z / 5)
    assert (ci["lo"], ci["hi"]) == pytest.approx((centre - half, centre + half))
    assert wilson_ci(0, 3)["lo"] == 0.0 and wilson_ci(0, 3)["hi"] > 0.4  # not zero width at 0/n
    assert math.isnan(wilson_ci(0, 0)["mean"])
    with pytest.raises(ValueError, match="successes"):
        wilson_ci(4, 3)


def test_roc_curve_area_is_the_auroc_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 200) / 4.0  # many ties
    labels = rng.uniform(size=200) < 0.2 + 0.5 * scores
    fpr, tpr = roc_curve(scores, labels)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids: a tie is a diagonal step
    assert area == pytest.approx(auroc(scores, labels))
    # by hand: scores 0.9 (+), 0.5 (-), 0.5 (+), 0.1 (-) → points (0,0) (0,½) (½,1) (1,1)
    fpr, tpr = roc_curve(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 0, 1, 0]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 0.5, 1.0, 1.0]


def test_reliability_bins_by_hand():
    p = np.array([0.05, 0.05, 0.15, 0.95, 1.0])
    y = np.array([0, 1, 0, 1, 1])
    r = reliability_bins(p, y, bins=10)
    assert r["count"][[0, 1, 9]].tolist() == [2, 1, 2] and r["count"].sum() == 5  # 1.0 lands in the last bin
    assert r["confidence"][9] == pytest.approx(0.975) and r["frequency"][0] == 0.5
    # ECE = 2/5·|0.05 − 0.5| + 1/5·|0.15 − 0| + 2/5·|0.975 − 1|
    assert float(r["ece"]) == pytest.approx(0.4 * 0.45 + 0.2 * 0.15 + 0.4 * 0.025)
    with pytest.raises(ValueError, match="probabilities"):
        reliability_bins(np.array([1.2]), np.array([1]))


def test_summary_section_marks_and_escapes():
    good = Headline(
        "Open loop",
        "occupancy IoU at 1 s",
        "drivewm",
        Estimate(0.40, 0.35, 0.45),
        target="occupancy_iou_1s",
        baseline="copy-last",
        baseline_value=Estimate(0.30, 0.25, 0.35),
        delta=Estimate(0.10, 0.05, 0.15),
        link="report.html#occupancy",
    )
    unsure = Headline("Closed loop", "driving score", "<script>", Estimate(90.0), target="closed_loop_expert_ds")
    page = summary_html([good, unsure], context="commit abc")
    assert "<span class='v met'>✓ met</span>" in page and "<span class='v not_shown'>? not shown</span>" in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "href='report.html#occupancy'" in page and "+0.100 [+0.050, +0.150]" in page
    t = TARGETS["occupancy_iou_1s"]
    assert f"title='{html.escape(f'{t.detail} ({t.source})')}'>{html.escape(t.text)}</span>" in page
    md = "\n".join(summary_md([good]))
    assert "| occupancy IoU at 1 s | drivewm | 0.400 [0.350, 0.450] | copy-last 0.300 [0.250, 0.350] |" in md
    assert "DESIGN.md §7" in md
    assert html_table(["a"], [["<b>x</b>"]], html_cells=True).count("<b>x</b>") == 1


def test_mean_ci_matches_what_the_summary_prints():
    ci = mean_ci([1.0, 2.0, 4.0])
    e = Estimate.of(ci)
    assert e.text(3) == f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"
