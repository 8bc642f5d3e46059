"""Pieces every evaluation shares: confidence intervals, frozen versioned protocols, report tables."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from importlib import resources

import numpy as np
import pytest
from scipy import stats

from drivewm.evaluation.closed_loop import ClosedLoopConfig
from drivewm.evaluation.common.report import html_table, md_table
from drivewm.evaluation.common.stats import mean_ci
from drivewm.evaluation.open_loop import OpenLoopConfig
from drivewm.evaluation.relevance import RelevanceConfig
from planner.scorer import ScorerConfig

CONFIGS = (OpenLoopConfig, RelevanceConfig, ClosedLoopConfig)

FROZEN = {
    "closed_loop/closed-loop-v1.json": "7a5154384eeef5037e77283a81f6eefef35fc2ae6795494b44656a18a4aece1a",
    "open_loop/open-loop-v1.json": "5f859021efca2542e58ebeb46f0c8362fc50546df327b52b9f920a5f643dd253",
    "relevance/relevance-v1.json": "2173bad62524115922cfd7e35b734d994bd133a7d14b2ef43d4351a5fb1a2656",
}
"""sha256 of every protocol file. A frozen protocol is never edited: a change is a new file with a new
name (add its hash here); editing an old one fails this table."""


def test_mean_ci_matches_scipy_t_interval():
    v = np.array([0.2, 0.5, 0.4, math.nan, 0.9, 0.1])
    ci = mean_ci(v)
    ok = v[~np.isnan(v)]
    lo, hi = stats.t.interval(0.95, len(ok) - 1, loc=ok.mean(), scale=stats.sem(ok))
    assert ci["mean"] == pytest.approx(ok.mean()) and ci["lo"] == pytest.approx(lo) and ci["hi"] == pytest.approx(hi)
    assert ci["half"] == pytest.approx((hi - lo) / 2) and ci["n"] == 5 and ci["n_undefined"] == 1


def test_mean_ci_by_the_table_and_when_undefined():
    # t(0.975, 2) = 4.302652730 (tables); sd of (60, 80, 100) = 20
    ci = mean_ci([60.0, 80.0, 100.0, None])
    assert ci["mean"] == 80.0 and ci["half"] == pytest.approx(4.302652730 * 20.0 / math.sqrt(3), rel=1e-9)
    assert ci["n"] == 3 and ci["n_undefined"] == 1
    one = mean_ci([5.0])
    assert one["mean"] == 5.0 and math.isnan(one["half"]) and math.isnan(one["lo"])  # no interval from one run
    assert math.isnan(mean_ci([])["mean"]) and mean_ci([])["n"] == 0
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 2.0], level=95)


def test_protocol_files_are_frozen():
    root = resources.files("drivewm.evaluation")
    found = {
        f"{cls.TASK}/{name}.json": hashlib.sha256(
            root.joinpath(cls.TASK, "configs", f"{name}.json").read_bytes()
        ).hexdigest()
        for cls in CONFIGS
        for name in cls.protocols()
    }
    assert found == FROZEN


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_protocol_loads_and_round_trips(cls):
    for name in cls.protocols():
        cfg = cls.from_protocol(name)
        assert cfg.protocol == name and cfg.overrides() == {} and cfg.protocol_label() == name
        raw = json.loads(
            resources.files("drivewm.evaluation").joinpath(cls.TASK, "configs", f"{name}.json").read_text()
        )
        assert cfg.protocol_json() == raw  # the file holds exactly the protocol fields, nothing else
        assert cfg.validate() is cfg


def test_overrides_are_named_and_unknown_protocols_refused():
    cfg = RelevanceConfig.from_protocol("relevance-v1", plans=16, scenes=3, towns=("Town05",))
    assert cfg.overrides() == {"plans": 16}  # scenes and towns are run options, not protocol
    assert cfg.protocol_label() == 'relevance-v1 with overrides {"plans": 16}'
    assert cfg.to_dict()["protocol_overrides"] == {"plans": 16} and cfg.to_dict()["scorer"]["weights"] == [5, 5, 2, 2]
    assert isinstance(cfg.scorer, ScorerConfig) and cfg.scorer == ScorerConfig()  # the planner's scorer as frozen
    stricter = dataclasses.replace(cfg.scorer, agent_threshold=0.2)
    assert RelevanceConfig.from_protocol("relevance-v1", scorer=stricter).overrides() == {
        "scorer": {**json.loads(json.dumps(dataclasses.asdict(stricter)))}
    }
    assert ClosedLoopConfig.from_protocol("closed-loop-v1", max_route_length=150.0).overrides() == {
        "max_route_length": 150.0
    }
    with pytest.raises(ValueError, match=r"unknown relevance protocol 'relevance-v9'; known: relevance-v1"):
        RelevanceConfig.from_protocol("relevance-v9")


def test_tables_escape_and_align():
    head, rows = ["model", "τ"], [["a<b", "0.5"]]
    assert md_table(head, rows).splitlines() == ["| model | τ |", "|---|---|", "| a<b | 0.5 |"]
    assert "<td>a&lt;b</td>" in html_table(head, rows) and html_table(head, rows).count("<tr>") == 2
