"""Confidence intervals shared by every evaluation: a mean over runs (scenes, routes × seeds) with a
Student-t interval.

Undefined values (NaN, None: a scene whose truth is constant, a run with no number) are left out of
the mean and counted, never silently taken as zero. With fewer than two defined values the interval
is undefined (NaN), not zero width.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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


__all__ = ["mean_ci"]
