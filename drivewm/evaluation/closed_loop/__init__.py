"""Closed-loop evaluation (DESIGN.md §7): drive routes × seeds with an agent and report.

Layout (as the nuScenes devkit's tasks): `config` (the frozen, versioned protocol `closed-loop-v1` —
traffic, replan rate, cameras, route length — and the run options), `evaluate` (the entry point
`evaluate_closed_loop` and the executors: in this process, a process pool or Ray tasks via
`ray_runner`), `checkpoint` (the resumable results file), `metrics` (aggregation over routes ×
seeds), `render` (report, results.json, videos). The route runner that drives one agent on one route
is the simulator side, `carla_bridge.closed_loop.runner.run_route`; its infraction rules are
`carla_bridge.scoring` (leaderboard 2.0).
"""

from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint
from drivewm.evaluation.closed_loop.config import DEFAULT_PROTOCOL, ClosedLoopConfig
from drivewm.evaluation.closed_loop.evaluate import (
    CHECKPOINT_NAME,
    EvalSummary,
    check_towns,
    evaluate_closed_loop,
    parse_seeds,
    run_evaluation,
    select_routes,
)
from drivewm.evaluation.closed_loop.metrics import aggregate_agent
from drivewm.evaluation.closed_loop.render import render_route_gif, write_report

__all__ = [
    "CHECKPOINT_NAME",
    "DEFAULT_PROTOCOL",
    "ClosedLoopConfig",
    "EvalSummary",
    "ResultsCheckpoint",
    "aggregate_agent",
    "check_towns",
    "evaluate_closed_loop",
    "parse_seeds",
    "render_route_gif",
    "run_evaluation",
    "select_routes",
    "write_report",
]
