"""The targets a report marks met / not met, and the headline figures judged against them.

A `Headline` is one figure of an evaluation — a subject (the model or agent under test), its value
with a 95 % interval, the baseline it must beat (with its own interval), the paired difference and,
for context, a reference (the oracle's ceiling) — and the `Target` it answers to, quoted from
DESIGN.md §7 (evaluation) and §8 (budgets) or from the issue that set it. Each evaluation's
`render.headlines(results)` builds its headlines; the summary atop each report and the front page of
a `drivewm demo` run (`drivewm.evaluation.summary`) print them.

The verdict is honest about uncertainty:
- `met`: the whole 95 % interval is on the right side (of the baseline: the interval of the paired
  difference; of an absolute bound: the interval of the value; a budget measured without an interval,
  such as a median latency, by its value);
- `not met`: the estimate itself is on the wrong side;
- `not shown`: the estimate is on the right side but its interval crosses the line (too few scenes,
  routes or seeds to be sure), or there is no interval (a single run);
- `no data`: the results do not hold the figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    MET = "met"
    NOT_MET = "not met"
    NOT_SHOWN = "not shown"
    NO_DATA = "no data"


@dataclass(frozen=True)
class Estimate:
    """A value with its 95 % interval (`lo`/`hi` NaN when undefined) over `n` units (scenes, routes × seeds)."""

    mean: float
    lo: float = math.nan
    hi: float = math.nan
    n: int | None = None

    @classmethod
    def of(cls, d: Any) -> Estimate | None:
        """From a `mean_ci`/`bootstrap_ci` dict (`mean`, `lo`, `hi`, `n`), a `{mean, ci95}` dict (the
        closed-loop aggregate: half width), a plain number, or None (→ None)."""
        if d is None:
            return None
        if isinstance(d, (int, float)):
            return None if not math.isfinite(float(d)) else cls(float(d))
        mean = _num(d.get("mean"))
        if not math.isfinite(mean):
            return None
        n = d.get("n")
        if "ci95" in d:
            half = _num(d["ci95"])
            return cls(mean, mean - half, mean + half, n)
        return cls(mean, _num(d.get("lo")), _num(d.get("hi")), n)

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    def text(self, digits: int = 3, unit: str = "") -> str:
        """`0.412 [0.380, 0.444]` (or `0.412` without an interval)."""
        u = f" {unit}" if unit else ""
        if not self.has_interval:
            return f"{self.mean:.{digits}f}{u}"
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]{u}"


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class Target:
    """What a headline figure must reach.

    Attributes:
        text: the target, short ("> copy-last").
        source: where it is set ("DESIGN.md §7 open loop").
        higher_is_better: the direction of the figure.
        bound: an absolute bound (at least / at most); None = beat the headline's baseline.
        interval: judge by the 95 % interval (False: a budget judged by the measured value).
        detail: the target in words (a report shows it with the source on the short text).
    """

    text: str
    source: str
    higher_is_better: bool = True
    bound: float | None = None
    interval: bool = True
    detail: str = ""

    def judge(self, value: Estimate | None, delta: Estimate | None) -> Verdict:
        """The verdict for `value` (absolute bound) or the paired difference `delta` = value − baseline."""
        if self.bound is None:
            x, line = delta, 0.0
        else:
            x, line = value, self.bound
        if x is None or not math.isfinite(x.mean):
            return Verdict.NO_DATA
        sign = 1.0 if self.higher_is_better else -1.0
        if sign * (x.mean - line) < 0 or (self.bound is None and x.mean == line):
            return Verdict.NOT_MET
        if not self.interval:
            return Verdict.MET
        if not x.has_interval:
            return Verdict.NOT_SHOWN
        worst = x.lo if self.higher_is_better else x.hi
        beyond = sign * (worst - line)
        return Verdict.MET if beyond > 0 or (self.bound is not None and beyond == 0) else Verdict.NOT_SHOWN


TARGETS: dict[str, Target] = {
    "occupancy_iou_1s": Target(
        "> copy-last",
        "DESIGN.md §7 open loop",
        detail="above copy-last of the model's own t = 0 estimate",
    ),
    "agent_min_ade": Target(
        "< constant velocity",
        "DESIGN.md §7 open loop",
        higher_is_better=False,
        detail="below constant velocity on the model's own detections",
    ),
    "relevance_tau_dependent": Target(
        "> cv-gt",
        "DESIGN.md §7 action relevance",
        detail="above cv-gt (constant velocity on ground-truth agents, privileged)",
    ),
    "relevance_unsafe_auroc": Target(
        "> cv-gt",
        "DESIGN.md §7 action relevance",
        detail="above cv-gt (constant velocity on ground-truth agents, privileged)",
    ),
    "planner_step_ms": Target(
        "≤ 300 ms",
        "DESIGN.md §8 budgets",
        higher_is_better=False,
        bound=300.0,
        interval=False,
        detail="encode + rollout N = 128 + score, tiny config, 2 CPU cores",
    ),
    "closed_loop_ds_vs_cv": Target(
        "> cv-gt",
        "DESIGN.md §1, §7 closed loop",
        detail="above the same planner on cv-gt's world model, paired by route and seed",
    ),
    "closed_loop_expert_ds": Target(
        "≥ 85",
        "issue 13, DESIGN.md §7 closed loop",
        bound=85.0,
        detail="the expert's driving score on the devtest routes under leaderboard-2.0 rules",
    ),
    "closed_loop_resolution": Target(
        "≤ 5",
        "DESIGN.md §7 closed loop",
        higher_is_better=False,
        bound=5.0,
        interval=False,
        detail="95 % half width of every agent's DS ≤ 5 points, so that a 10-point difference is visible",
    ),
}
"""Every target a report judges, by key."""


BASELINES = frozenset({"cv", "cv-gt", "empty", "oracle"})
"""Reference world models (never the subject of a headline)."""
EXPERTS = frozenset({"autopilot", "expert"})
"""Privileged rule-based drivers (closed loop: judged against the expert bound)."""
REFERENCE_AGENTS = EXPERTS | BASELINES | {"blind"}
"""Closed-loop agents that are references, not subjects under test."""


def is_ablation(name: str) -> bool:
    """A model row that is an ablation of another (`drivewm-noplan`): in a report's summary, not on the
    front page."""
    return name.endswith("-noplan")


@dataclass(frozen=True)
class Headline:
    """One headline figure (see the module docstring).

    Attributes:
        section: the evaluation ("Open loop", "Action relevance", "Closed loop").
        figure: what is measured ("occupancy IoU at 1 s").
        subject: the model or agent under test.
        value: its estimate.
        target: the key of its `Target` in `TARGETS` (None: shown without a verdict).
        baseline / baseline_value: the name and estimate of what it is compared with.
        delta: the paired difference value − baseline (units matched: scenes, routes × seeds).
        reference / reference_value: a bound for context (e.g. the oracle's ceiling).
        digits, unit: how to print the numbers.
        link: a relative link to the report (and section) it comes from.
    """

    section: str
    figure: str
    subject: str
    value: Estimate | None
    target: str | None = None
    baseline: str | None = None
    baseline_value: Estimate | None = None
    delta: Estimate | None = None
    reference: str | None = None
    reference_value: Estimate | None = None
    digits: int = 3
    unit: str = ""
    link: str | None = None

    @property
    def verdict(self) -> Verdict | None:
        if self.target is None:
            return None
        return TARGETS[self.target].judge(self.value, self.delta)

    def with_link(self, prefix: str) -> Headline:
        """The same headline with its link under the folder `prefix` (the front page links into reports)."""
        return replace(self, link=None if self.link is None else f"{prefix.rstrip('/')}/{self.link}")


__all__ = [
    "BASELINES",
    "EXPERTS",
    "REFERENCE_AGENTS",
    "TARGETS",
    "Estimate",
    "Headline",
    "Target",
    "Verdict",
    "is_ablation",
]
