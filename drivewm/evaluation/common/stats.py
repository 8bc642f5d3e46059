"""Confidence intervals shared by every evaluation: a mean over runs (scenes, routes × seeds) with a
Student-t interval (`mean_ci`), and a percentile bootstrap over whole groups (`bootstrap_ci`) for a
statistic that is not a mean over runs (an AUROC pooled over the plans of many scenes), and the
Wilson score interval of a success rate (`wilson_ci`).

Undefined values (NaN, None: a scene whose truth is constant, a run with no number) are left out of
the mean and counted, never silently taken as zero. With fewer than two defined values the interval
is undefined (NaN), not zero width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
from scipy import stats


def mean_ci(values: Iterable[float | None], level: float = 0.95) -> dict[str, float]:
    """Mean of the defined `values` with a Student-t `level` interval.

    Returns:
        `{"mean", "lo", "hi", "half", "n", "n_undefined"}`; mean NaN when nothing is defined, lo/hi/half
        NaN with fewer than two defined values.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    v = np.array([math.nan if x is None else float(x) for x in values], dtype=np.float64)
    ok = v[np.isfinite(v)]
    out = {"n": len(ok), "n_undefined": int(len(v) - len(ok))}
    if len(ok) == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "half": math.nan, **out}
    mean = float(ok.mean())
    if len(ok) == 1:
        return {"mean": mean, "lo": math.nan, "hi": math.nan, "half": math.nan, **out}
    half = float(stats.t.ppf(0.5 + level / 2, len(ok) - 1) * ok.std(ddof=1) / math.sqrt(len(ok)))
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "half": half, **out}


def wilson_ci(successes: int, n: int, level: float = 0.95) -> dict[str, float]:
    """A success rate with its Wilson score `level` interval (a proportion's interval that stays in
    [0, 1] and is not zero-width at 0 or n successes, unlike a Student t over 0/1 values).

    Returns:
        `{"mean", "lo", "hi", "n"}`; all NaN for n = 0.
    """
    if n <= 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, {n}], got {successes}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends (no rounding residue)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return {"mean": p, "lo": lo, "hi": hi, "n": n}


G = TypeVar("G")


def bootstrap_ci(
    statistic: Callable[[Sequence[G]], float],
    groups: Sequence[G],
    level: float = 0.95,
    samples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """`statistic(groups)` with a percentile-bootstrap `level` interval, resampling whole groups (e.g.
    the scenes whose plans an AUROC pools) with replacement. Resamples on which the statistic is
    undefined (NaN: one class missing) are dropped and counted in `n_undefined`.

    Returns:
        `{"mean", "lo", "hi", "n", "n_undefined"}` — `mean` is the statistic of the data itself; lo/hi
        NaN with fewer than two groups or when no resample is defined.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    point = float(statistic(groups))
    out = {"mean": point, "lo": math.nan, "hi": math.nan, "n": len(groups), "n_undefined": 0}
    if len(groups) < 2:
        return out
    rng = np.random.default_rng(seed)
    picks = (rng.integers(0, len(groups), len(groups)) for _ in range(samples))
    values = np.array([statistic([groups[i] for i in pick]) for pick in picks])
    ok = values[np.isfinite(values)]
    out["n_undefined"] = int(len(values) - len(ok))
    if len(ok):
        out["lo"], out["hi"] = (float(q) for q in np.quantile(ok, [0.5 - level / 2, 0.5 + level / 2]))
    return out


__all__ = ["bootstrap_ci", "mean_ci", "wilson_ci"]
