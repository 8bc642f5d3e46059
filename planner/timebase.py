"""The one time base of plans, predictions and datasets (DESIGN.md §3), defined once.

nuScenes keyframes come every `STEP_SECONDS` (0.5 s): a plan or forecast has `HORIZON_STEPS`
(T = 6) future keyframes at t = 0.5 … 3.0 s, and the history `HISTORY_STEPS` (H = 4) past ones.
Between keyframes the planner works on a dense grid of `DENSE_DT` (0.1 s), `DENSE_PER_STEP` dense
steps per keyframe (the scorer's collision checks, the controller's reference, the proposals'
speed profiles).
"""

from __future__ import annotations

STEP_SECONDS = 0.5
"""Keyframe step [s] (nuScenes samples at 2 Hz)."""

HORIZON_STEPS = 6
"""Future keyframes T of a plan or a forecast (t = 0.5 … 3.0 s)."""

HISTORY_STEPS = 4
"""Past keyframes H of the ego history (t = -2.0 … -0.5 s; the current one makes H + 1)."""

DENSE_DT = 0.1
"""Dense plan step [s]: `DENSE_PER_STEP` of them per keyframe."""

DENSE_PER_STEP = round(STEP_SECONDS / DENSE_DT)
"""Dense steps per keyframe (5)."""

HORIZON_SECONDS = HORIZON_STEPS * STEP_SECONDS
"""Length of a plan [s] (3.0)."""

__all__ = ["DENSE_DT", "DENSE_PER_STEP", "HISTORY_STEPS", "HORIZON_SECONDS", "HORIZON_STEPS", "STEP_SECONDS"]
