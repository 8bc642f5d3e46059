"""Action-relevance evaluation: does a world model's predicted future rank candidate plans like
their true outcome does?

Layout (as the nuScenes devkit's tasks): `config` (the frozen, versioned protocol `relevance-v1` and
the run options), `scenes` (the planning moments), `candidates` (the plans), `metrics` (pure
functions), `evaluate` (the entry point `evaluate_relevance`), `render` (figures and reports).

For every scene a lite world is populated around a random route in a (held-out) town, the privileged
autopilot drives it for a few seconds to a non-trivial moment (another road user or a light close
ahead), and N candidate plans are drawn: `planner.proposals` (stop + route lattice) PLUS plans that
are unsafe on purpose, built from the scene — swerves into the adjacent / oncoming lane and off the
road, keeping speed or accelerating behind a slow or stopped car, running a red light that is close,
steering at the nearest road user. The **truth** of each plan comes from simulating it
(`OracleWorldModel.simulate`: branch the world, execute the plan with the plan-tracking controller,
traffic reacts): the same planner scorer fed the true future, times the true outcome flags
(collision, leaving the driveable surface, red-light entry). Each world model scores the same plans
through the same scorer (`planner.scorer.score_plans`).

Metrics per model (`metrics`): Kendall τ-b and Spearman ρ per scene → mean with a
95 % Student-t interval, for the full score and for the model-dependent terms alone (`dependent_score`:
drivable gate × (time to the first predicted collision, or TTC when none)); top-1 regret; unsafe-plan
AUROC and the false-accept rate at the scorer's own gate thresholds (`unsafety`); plan-conditioned
occupancy IoU (obstacle cells ≥ 0.5 under plan k vs the true boxes under plan k, on the model's own
grid, the ego footprint along plan k excluded); planner step latency (encode + rollout + score) at
N = 16 and 128.

The `oracle` row is the oracle's own prediction (`OracleWorldModel.rollout` returns exactly the
prediction the truth is scored from), so its ranking of the full score is perfect except for the true
outcome flags that the scorer cannot see in a `Prediction` (collisions of the *executed* plan rather
than the planned one, off-road corners between 0.5 m cells); it is the upper bound, not a check.
"""

from drivewm.evaluation.relevance.candidates import Candidates, build_candidates, intercept, route_following_plan
from drivewm.evaluation.relevance.config import DEFAULT_PROTOCOL, MODEL_NAMES, RelevanceConfig
from drivewm.evaluation.relevance.evaluate import ModelRow, build_rows, evaluate_relevance, evaluate_scene
from drivewm.evaluation.relevance.render import report_table

__all__ = [
    "DEFAULT_PROTOCOL",
    "MODEL_NAMES",
    "Candidates",
    "ModelRow",
    "RelevanceConfig",
    "build_candidates",
    "build_rows",
    "evaluate_relevance",
    "evaluate_scene",
    "intercept",
    "report_table",
    "route_following_plan",
]
