"""Action-relevance evaluation: does a world model's predicted future rank candidate plans like
their true outcome does?

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

Metrics per model (`planner.relevance_metrics`): Kendall τ-b and Spearman ρ per scene → mean with a
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

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents import EGO, ego_boxes
from occupancy import GridSpec
from planner import Observation, Prediction, PrivilegedState, SceneState
from planner.proposals import (
    ProposalConfig,
    Proposals,
    ProposalSource,
    feasibility,
    generate_proposals,
    project_on_polyline,
)
from planner.relevance_metrics import kendall_tau, mean_ci, per_scene, relevance_summary, spearman_rho
from planner.scorer import Gate, ScorerConfig, ScoreResult, Soft, score_plans
from planner.timebase import DENSE_DT, DENSE_PER_STEP, HORIZON_SECONDS, HORIZON_STEPS
from planner.world_models import rasterize_boxes

log = logging.getLogger("drivewm.relevance")

MODEL_NAMES = ("drivewm", "cv", "cv-gt", "empty", "oracle")
NO_PLAN = "drivewm-noplan"
"""Row name of the learned model with its plan pathway zeroed."""
LATENCY_PLANS = (16, 128)


@dataclass(frozen=True)
class RelevanceConfig:
    """One action-relevance run (frozen into results.json).

    Attributes:
        towns: town names (held-out ones for a learned model); scenes cycle through them.
        scenes: number of scenes; plans: candidate plans per scene (N ≥ 4).
        models: world models (`MODEL_NAMES`); `drivewm` gives two rows (with and without plan conditioning).
        ckpt: learned checkpoint (`drivewm`, `cv`).
        plan_conditioning: False = evaluate the learned model only with its plan pathway off.
        seed: global seed (scene i uses (seed, i)).
        warmup: (min, max) autopilot seconds before the planning moment; the moment is the first
            "interesting" time after min (an agent or a light within `interest_distance` ahead), else max.
        num_vehicles, num_pedestrians, num_parked, num_props: traffic of the lite world.
        unsafe_fraction: share of the N plans built to be unsafe.
        oracle_dt: branch step of the truth [s]; max_branch: branches stepped together.
        threshold: unsafety operating threshold (0.5 = the scorer's gates).
        latency_repeats: timed repeats per model and N (oracle: 1); latency_plans: the N timed.
        figures: BEV figures for the first that many scenes.
        device: torch device of the learned model.
    """

    towns: tuple[str, ...] = ("Town03",)
    scenes: int = 20
    plans: int = 32
    models: tuple[str, ...] = ("cv-gt", "empty", "oracle")
    ckpt: str | None = None
    plan_conditioning: bool = True
    seed: int = 0
    warmup: tuple[float, float] = (3.0, 20.0)
    interest_distance: float = 35.0
    num_vehicles: int = 40
    num_pedestrians: int = 20
    num_parked: int = 10
    num_props: int = 6
    unsafe_fraction: float = 0.3
    oracle_dt: float = 0.1
    max_branch: int = 32
    threshold: float = 0.5
    latency_repeats: int = 3
    latency_plans: tuple[int, ...] = LATENCY_PLANS
    figures: int = 4
    device: str = "cpu"
    scorer: ScorerConfig = field(default_factory=ScorerConfig)

    def validate(self) -> RelevanceConfig:
        if not self.towns:
            raise ValueError("towns must name at least one town")
        if self.scenes < 1:
            raise ValueError(f"scenes must be ≥ 1, got {self.scenes}")
        if self.plans < 4:
            raise ValueError(f"plans must be ≥ 4, got {self.plans}")
        bad = [m for m in self.models if m not in MODEL_NAMES]
        if bad or not self.models:
            raise ValueError(f"models must be among {', '.join(MODEL_NAMES)}, got {list(self.models)}")
        for m in ("drivewm", "cv"):
            if m in self.models and not self.ckpt:
                raise ValueError(f"model {m!r} needs a trained checkpoint: pass --ckpt PATH")
        if not 0.0 <= self.warmup[0] <= self.warmup[1]:
            raise ValueError(f"warmup must be (min, max) with 0 ≤ min ≤ max, got {self.warmup}")
        if not 0.0 <= self.unsafe_fraction <= 0.75:
            raise ValueError(f"unsafe_fraction must lie in [0, 0.75], got {self.unsafe_fraction}")
        return self

    def rows(self) -> list[str]:
        """Model rows of the report, in order."""
        out: list[str] = []
        for m in self.models:
            if m == "drivewm":
                out += ([m] if self.plan_conditioning else []) + [NO_PLAN]
            else:
                out.append(m)
        return out


# ----------------------------------------------------------------------------------------------- candidate plans


@dataclass(frozen=True)
class Candidates:
    """The N plans of one scene.

    Attributes:
        proposals: `Proposals` (B = 1).
        kinds: N names ("stop", "lattice", "no_brake", "accelerate", "swerve_left", …).
        constructed_unsafe: `[N]` bool, built to be unsafe (the truth decides whether they are).
    """

    proposals: Proposals
    kinds: list[str]
    constructed_unsafe: np.ndarray


def route_following_plan(route: Tensor, speed0: float, accel: float, v_max: float, lateral: float) -> Tensor:
    """A plan along the ego-frame route `[R, 2]`: speed from `speed0` with constant `accel` (clamped to
    [0, v_max]), lateral offset ramping smoothly to `lateral` [m] (left +) by t = 3 s. Returns the dense
    poses `[D, 3]` at t = 0.1·(1..D) s (the plan is `dense[4::5]`)."""
    line = route.double()
    seg = line[1:] - line[:-1]
    cum = torch.cat([torch.zeros(1, dtype=line.dtype), seg.norm(dim=-1).cumsum(0)])
    s0, _ = project_on_polyline(torch.zeros(1, 2, dtype=line.dtype), line)
    t = torch.arange(1, HORIZON_STEPS * DENSE_PER_STEP + 1, dtype=torch.float64) * DENSE_DT
    a = accel * (t / 0.5).clamp(max=1.0)  # jerk-limited onset
    v = (speed0 + torch.cumsum(a * DENSE_DT, 0)).clamp(0.0, max(v_max, speed0))
    s = float(s0.reshape(-1)[0]) + torch.cumsum(v * DENSE_DT, 0)
    u = (t / HORIZON_SECONDS).clamp(max=1.0)
    d = lateral * u**3 * (10.0 - 15.0 * u + 6.0 * u**2)  # quintic: no jump in lateral acceleration

    def centre(q: Tensor) -> Tensor:
        q = q.clamp(0.0, float(cum[-1]))
        i = torch.searchsorted(cum, q).clamp(1, len(cum) - 1)
        frac = ((q - cum[i - 1]) / (cum[i] - cum[i - 1]).clamp(min=1e-9)).clamp(0.0, 1.0)
        return line[i - 1] + frac[:, None] * seg[i - 1]

    tangent = centre(s + 1.0) - centre(s - 1.0)  # smooth tangent (no jumps at polyline vertices)
    tangent = tangent / tangent.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    normal = torch.stack([-tangent[:, 1], tangent[:, 0]], -1)
    xy = centre(s) + d[:, None] * normal
    pts = torch.cat([torch.zeros(1, 2, dtype=xy.dtype), xy])
    step = pts[1:] - pts[:-1]
    heading = torch.atan2(tangent[:, 1], tangent[:, 0])
    yaw = torch.where(step.norm(dim=-1) > 0.05, torch.atan2(step[:, 1], step[:, 0]), heading)
    return torch.cat([xy, yaw[:, None]], -1).float()


def _intercept(xy: Tensor, velocity: Tensor, v0: float) -> tuple[float, float] | None:
    """(acceleration, final lateral offset) of a route-following plan whose box centre meets a road user
    (ego-frame position `xy [2]`, velocity `[2]`, constant-velocity) at the earliest t ∈ {1, 1.5, …, 3} s
    that needs an acceleration in [-3, 4] m/s² and a lateral offset within 8 m; None if unreachable."""
    for t_hit in (1.0, 1.5, 2.0, 2.5, 3.0):
        target = xy + t_hit * velocity
        reach = float(target[0]) - EGO.rear_axle_to_center  # the box centre meets it, not the rear axle
        te = t_hit - 0.25  # the acceleration ramps up over 0.5 s
        accel = 2.0 * (reach - v0 * t_hit) / max(te, 0.5) ** 2
        u = t_hit / HORIZON_SECONDS
        lateral = float(target[1]) / (u**3 * (10.0 - 15.0 * u + 6.0 * u**2))
        if reach > 0.0 and -3.0 <= accel <= 4.0 and abs(lateral) <= 8.0:
            return accel, lateral
    return None


def build_candidates(
    obs: Observation, privileged: PrivilegedState, num_plans: int, unsafe_fraction: float, rng: np.random.Generator
) -> Candidates:
    """`num_plans` plans: the planner's proposals (stop first) plus plans that are unsafe on purpose,
    built from the scene (see the module docstring)."""
    route = obs.route[0][obs.route_valid[0]]
    if route.shape[0] < 2:
        raise ValueError("the observation's route has fewer than 2 valid points")
    v0 = float(obs.speed[0])
    cruise = max(v0, 8.0)
    plan = lambda accel, v_max, lateral: route_following_plan(route, v0, accel, v_max, lateral)  # noqa: E731
    unsafe: list[tuple[str, Tensor]] = []
    a = privileged.agents
    ok = a.valid[0] & (a.xy[0, :, 0] > 3.0) & (a.xy[0, :, 0] < 45.0) & (a.xy[0, :, 1].abs() < 12.0)
    dist = torch.where(ok, a.xy[0].norm(dim=-1), torch.full_like(a.xy[0, :, 0], math.inf))
    found = 0
    for j in dist.argsort()[: int(ok.sum())][:6].tolist():  # the nearest road users ahead we can reach: hit them
        hit = _intercept(a.xy[0, j], a.velocity[0, j], v0)
        if hit is None:
            continue
        kind = "into_lead" if abs(float(a.xy[0, j, 1])) < 1.5 else "toward_agent"
        unsafe.append((kind, plan(hit[0], 16.0, hit[1])))
        found += 1
        if found == 2:
            break
    if float(privileged.light_distance[0]) < 40.0 and int(privileged.light_state[0]) == 0:
        unsafe.append(("run_red_light", plan(2.0, cruise, 0.0)))
    unsafe += [
        ("no_brake", plan(0.0, max(v0, 3.0), 0.0)),
        ("swerve_left", plan(0.0, cruise, 3.5)),
        ("swerve_right", plan(0.0, cruise, -3.5)),
        ("accelerate", plan(3.0, 14.0, 0.0)),
        ("swerve_left_far", plan(1.0, cruise, 7.0)),
        ("swerve_right_far", plan(1.0, cruise, -7.0)),
    ]
    n_unsafe = min(len(unsafe), max(1, round(unsafe_fraction * num_plans)))
    unsafe = unsafe[:n_unsafe]
    n_prop = num_plans - n_unsafe
    pcfg = ProposalConfig(lateral_offsets=(-1.5, -0.75, 0.0, 0.75, 1.5), speed_fractions=(0.25, 0.5, 0.75, 1.0, 1.25))
    props = generate_proposals(obs.route, obs.route_valid, obs.speed, pcfg)
    m = props.num_plans
    if n_prop >= m:
        idx = np.concatenate([np.arange(m), rng.integers(1, m, n_prop - m)]) if n_prop > m else np.arange(m)
    else:  # the stop plan plus an even spread of the lattice
        idx = np.concatenate([[0], np.linspace(1, m - 1, n_prop - 1).round().astype(int)])
    idx_t = torch.as_tensor(idx, dtype=torch.int64)
    u_dense = torch.stack([d for _, d in unsafe])[None]  # [1, U, D, 3]
    dense = torch.cat([props.dense[:, idx_t], u_dense], 1)
    plans = torch.cat([props.plans[:, idx_t], u_dense[:, :, 4::5]], 1)
    source = torch.cat(
        [props.source[0, idx_t], torch.full((n_unsafe,), int(ProposalSource.LATTICE), dtype=torch.int64)]
    )[None]
    feasible = torch.cat([props.feasible[:, idx_t], feasibility(u_dense, obs.speed, ProposalConfig())], 1)
    proposals = Proposals(plans=plans, dense=dense, speed0=obs.speed.clone(), source=source, feasible=feasible)
    kinds = ["stop" if int(props.source[0, i]) == int(ProposalSource.STOP) else "lattice" for i in idx]
    kinds += [k for k, _ in unsafe]
    flags = np.array([False] * n_prop + [True] * n_unsafe)
    return Candidates(proposals, kinds, flags)


# ----------------------------------------------------------------------------------------------- plan scores


def dependent_score(
    res: ScoreResult,
    collision: Tensor | None = None,
    off_road: Tensor | None = None,
    collision_time: Tensor | None = None,
) -> Tensor:
    """The model-dependent part of the score `[B, N]`: 0 off the driveable area; t_c / (2·3 s) ∈ (0, 0.5]
    when the first collision is at t_c; 0.5 + 0.5·TTC term without a collision. Progress, comfort and
    lane centring (which rank plans without any world model) are left out. True outcome flags
    `collision`/`off_road` `[B, N]` and the true first-collision time `collision_time` `[B, N]` (inf if
    none) override the scorer's gates when given (a flagged collision without a time counts as t = 3 s)."""
    t_first = res.collision_time
    if collision_time is not None:
        t_first = torch.minimum(t_first, collision_time)
    collides = res.gates[:, Gate.NO_COLLISION] < 0.5
    if collision is not None:
        collides = collides | collision
    off = res.gates[:, Gate.DRIVABLE] < 0.5
    if off_road is not None:
        off = off | off_road
    clear = 0.5 + 0.5 * res.soft[:, Soft.TTC]
    t_c = t_first.clamp(max=HORIZON_SECONDS)
    early = torch.where(torch.isfinite(t_first), t_c / (2.0 * HORIZON_SECONDS), torch.full_like(t_c, 0.5))
    out = torch.where(collides, early, clear)
    return torch.where(off, torch.zeros_like(out), out) * res.finite[:, None]


def unsafety(res: ScoreResult, cfg: ScorerConfig) -> Tensor:
    """`[B, N]` in [0, 1]: the model's belief that a plan collides or leaves the road, scaled so that
    0.5 is exactly where the scorer's collision and drivable gates fail (accepted ⇔ < 0.5)."""
    obst = res.obstacle_risk * (0.5 / cfg.obstacle_threshold)
    agent = res.agent_risk * (0.5 / cfg.agent_threshold)
    off = 1.0 - res.gates[:, Gate.DRIVABLE]
    u = torch.maximum(torch.maximum(obst, agent), off).clamp(0.0, 1.0)
    return torch.where(res.finite[:, None], u, torch.ones_like(u))


def occupancy_counts(pred: Prediction, truth: Tensor, plans: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Intersection and union cell counts per horizon step `[T]` of the predicted obstacles (≥ 0.5) vs
    the true occupancy `truth [N, T, X, Y]` on the prediction's grid, cells under the ego footprint at
    plan k's pose at step t excluded from both."""
    n, t = truth.shape[:2]
    p = pred.obstacle_prob[0].expand(n, t, *truth.shape[2:]) >= 0.5
    ego = ego_boxes(plans[0])[:, :, None]  # [N, T, 1, 5]
    mask = rasterize_boxes(ego, torch.ones(n, 1, dtype=torch.bool), pred.grid) > 0
    tr = (truth > 0.5) & ~mask
    p = p & ~mask
    inter = (p & tr).sum((0, 2, 3)).numpy().astype(np.int64)
    union = (p | tr).sum((0, 2, 3)).numpy().astype(np.int64)
    return inter, union


# ----------------------------------------------------------------------------------------------- models


class ModelRunner:
    """A world model of the evaluation: encode (with privileged state where its name says so) → rollout."""

    def __init__(self, row: str, model: Any, privileged: bool) -> None:
        self.row = row
        self.model = model
        self.privileged = privileged

    def predict(self, obs: Observation, privileged: PrivilegedState, plans: Tensor) -> Prediction:
        with torch.no_grad():
            if self.privileged and hasattr(self.model, "encode_privileged"):
                scene = self.model.encode_privileged(obs, privileged)
            else:
                scene = self.model.encode(obs)
            return self.model.rollout(scene, plans)


def load_learned(cfg: RelevanceConfig) -> Any:
    """The learned model when a row needs it (`drivewm`, `drivewm-noplan`, `cv`), else None."""
    if not any(r in ("drivewm", NO_PLAN, "cv") for r in cfg.rows()):
        return None
    from drivewm.model.checkpoint import load_world_model

    return load_world_model(cfg.ckpt, cfg.device)


def build_runners(cfg: RelevanceConfig, backend: Any, learned: Any = None) -> list[ModelRunner]:
    """Runners for `cfg.rows()` (`learned`: the loaded learned model, shared by its rows)."""
    from carla_bridge.oracle import OracleWorldModel
    from planner.world_models import ConstantVelocityWorldModel, EmptyWorldModel

    runners: list[ModelRunner] = []
    for row in cfg.rows():
        if row in ("drivewm", NO_PLAN):
            runners.append(ModelRunner(row, _Conditioning(learned, row == "drivewm"), False))
        elif row == "oracle":
            oracle = OracleWorldModel(backend, dt=cfg.oracle_dt, max_branch=cfg.max_branch)
            runners.append(ModelRunner(row, oracle, True))
        elif row == "cv":
            runners.append(ModelRunner(row, ConstantVelocityWorldModel("cv", detector=_Detector(learned)), False))
        elif row == "cv-gt":
            runners.append(ModelRunner(row, ConstantVelocityWorldModel("cv-gt"), True))
        else:
            runners.append(ModelRunner(row, EmptyWorldModel(), False))
    return runners


class _Detector:
    """The learned model's agent estimates (`encode(obs).agents`) as the `cv` detector."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, obs: Observation) -> Any:
        with torch.no_grad():
            return self.model.encode(obs).agents


class _Conditioning:
    """The learned model with plan conditioning set for each call (one model shared by two rows)."""

    def __init__(self, model: Any, on: bool) -> None:
        self.model, self.on = model, on
        self.name = model.name if on else NO_PLAN

    def encode(self, obs: Observation, prev: SceneState | None = None) -> SceneState:
        return self.model.encode(obs, prev)

    def rollout(self, scene: SceneState, plans: Tensor) -> Prediction:
        old = self.model.plan_conditioning
        self.model.plan_conditioning = self.on
        try:
            return self.model.rollout(scene, plans)
        finally:
            self.model.plan_conditioning = old


# ----------------------------------------------------------------------------------------------- scenes


def _interesting(privileged: PrivilegedState, speed: float, distance: float) -> bool:
    """A road user close ahead that a plan could hit within the horizon (`_intercept`), or a red light
    close ahead."""
    a = privileged.agents
    near = a.valid[0] & (a.xy[0, :, 0] > 2.0) & (a.xy[0, :, 0] < distance) & (a.xy[0, :, 1].abs() < 8.0)
    for j in near.nonzero()[:, 0].tolist():
        if _intercept(a.xy[0, j], a.velocity[0, j], speed) is not None:
            return True
    return int(privileged.light_state[0]) == 0 and float(privileged.light_distance[0]) < distance


def prepare_scene(backend: Any, town: Any, cfg: RelevanceConfig, index: int, render: bool) -> dict:
    """Reset `backend` on a random route and drive the autopilot to the planning moment. Returns the
    scene's info (route seed, time, speed, why the moment was chosen)."""
    from agents import Control
    from carla_bridge.autopilot import Autopilot
    from carla_bridge.lite.random_route import random_route

    rng = np.random.default_rng([cfg.seed, index])
    route = random_route(town, rng, min_length=300.0)
    scene_seed = int(rng.integers(2**31))
    backend.reset(route, scene_seed)
    world = backend.world
    pilot = Autopilot()
    dt = float(world.cfg.dt)
    lo, hi = cfg.warmup
    start = float(rng.uniform(lo, max(lo, 0.5 * (lo + hi))))
    reason = "max_warmup"
    t = 0.0
    while t < hi - 1e-9 and not backend.done:
        c = pilot.controls(world)[0]
        backend.step(Control(float(c[0]), float(c[1]), float(c[2])), render=False)
        t += dt
        if t >= start and _interesting(world.privileged(), float(world.ego_speed()[0]), cfg.interest_distance):
            reason = "agent_or_light_ahead"
            break
        if float(world.route_completion()[0]) > 70.0:  # keep ≥ 90 m of route ahead for the plans
            reason = "route_end"
            break
    return {"index": index, "town": town.name, "seed": scene_seed, "time": world.time, "moment": reason}


def evaluate_scene(
    backend: Any, runners: list[ModelRunner], cfg: RelevanceConfig, info: dict, render: bool
) -> tuple[dict, dict]:
    """Candidates, truth and every model's scores of the current moment. Returns (json record,
    tensors kept for figures)."""
    from carla_bridge.oracle import OracleWorldModel

    rng = np.random.default_rng([cfg.seed, info["index"], 1])
    obs = backend.observation(render=render)
    priv = backend.privileged()
    cand = build_candidates(obs, priv, cfg.plans, cfg.unsafe_fraction, rng)
    props = cand.proposals
    oracle = OracleWorldModel(backend, dt=cfg.oracle_dt, max_branch=cfg.max_branch)
    before = backend.world.snapshot()
    outcome = oracle.simulate(oracle.encode_privileged(obs, priv), props.plans)
    if not backend.world.snapshot().equals(before):
        raise RuntimeError("the oracle changed the simulator state")
    truth_res = score_plans(props, outcome.prediction, obs.route, obs.route_valid, cfg.scorer)
    bad = outcome.collision | outcome.off_road | outcome.red_light
    true_score = truth_res.score[0] * (~bad).float()
    true_dep = dependent_score(
        truth_res, outcome.collision[None], outcome.off_road[None], outcome.collision_time[None]
    )[0]
    rec: dict[str, Any] = {
        **info,
        "speed": float(obs.speed[0]),
        "light": {"state": int(priv.light_state[0]), "distance": float(priv.light_distance[0])},
        "kinds": cand.kinds,
        "constructed_unsafe": cand.constructed_unsafe.tolist(),
        "truth": {
            "score": true_score.tolist(),
            "dependent": true_dep.tolist(),
            "collision": outcome.collision.tolist(),
            "off_road": outcome.off_road.tolist(),
            "red_light": outcome.red_light.tolist(),
            "unsafe": outcome.unsafe.tolist(),
        },
        "models": {},
    }
    keep = {"plans": props.plans[0], "true_score": true_score, "unsafe": outcome.unsafe, "pred": {}, "obs": obs}
    keep["drivable"] = outcome.prediction.drivable_prob[0]
    keep["boxes"] = outcome.boxes
    keep["agent_valid"] = outcome.agent_valid
    keep["grid"] = outcome.prediction.grid
    for r in runners:
        pred = outcome.prediction if r.row == "oracle" else r.predict(obs, priv, props.plans)
        res = score_plans(props, pred, obs.route, obs.route_valid, cfg.scorer)
        truth_occ = oracle.rasterize(outcome, pred.grid)
        inter, union = occupancy_counts(pred, truth_occ, props.plans)
        rec["models"][r.row] = {
            "score": res.score[0].tolist(),
            "dependent": dependent_score(res)[0].tolist(),
            "unsafety": unsafety(res, cfg.scorer)[0].tolist(),
            "best": int(res.best[0]),
            "finite": bool(res.finite[0]),
            "occ_intersection": inter.tolist(),
            "occ_union": union.tolist(),
        }
        keep["pred"][r.row] = res.score[0]
    return rec, keep


def measure_latency(backend: Any, runners: list[ModelRunner], cfg: RelevanceConfig, render: bool) -> dict:
    """Median wall time [ms] of encode + rollout + score per model at N = `cfg.latency_plans` (plans: the
    lattice tiled to N) at the current simulator moment."""
    obs = backend.observation(render=render)
    priv = backend.privileged()
    base = build_candidates(obs, priv, 16, 0.25, np.random.default_rng(cfg.seed)).proposals
    out: dict[str, dict[str, float]] = {}
    for r in runners:
        out[r.row] = {}
        for n in cfg.latency_plans:
            idx = torch.arange(n) % base.num_plans
            plans = base.plans[:, idx].contiguous()
            props = Proposals(plans, base.dense[:, idx], base.speed0, base.source[:, idx], base.feasible[:, idx])
            reps = 1 if r.row == "oracle" else max(1, cfg.latency_repeats)
            times = []
            for _k in range(reps + (0 if r.row == "oracle" else 1)):  # one warm-up call (not for the oracle)
                t0 = time.perf_counter()
                pred = r.predict(obs, priv, plans)
                score_plans(props, pred, obs.route, obs.route_valid, cfg.scorer)
                times.append(time.perf_counter() - t0)
            timed = times if r.row == "oracle" else times[1:]
            out[r.row][str(n)] = 1000.0 * float(np.median(timed))
    return out


# ----------------------------------------------------------------------------------------------- aggregation


def rank_per_scene(metric: Callable, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """`metric` (τ or ρ) per scene of `[S, N]` arrays. A scene whose truth is constant is undefined (NaN,
    left out of the mean and counted); a model that predicts the same value for every plan of a scene
    whose truth varies carries no ranking information and gets 0 there (τ-b itself is undefined)."""
    out = per_scene(metric, pred, true)
    flat_pred = np.ptp(pred, axis=1) == 0
    varied_true = np.ptp(true, axis=1) > 0
    return np.where(flat_pred & varied_true, 0.0, out)


def summarize(records: list[dict], rows: list[str], threshold: float) -> dict:
    """Per-model metrics over scenes (see the module docstring and `rank_per_scene`)."""
    true_score = np.array([r["truth"]["score"] for r in records], dtype=np.float64)
    true_dep = np.array([r["truth"]["dependent"] for r in records], dtype=np.float64)
    unsafe = np.array([r["truth"]["unsafe"] for r in records], dtype=bool)
    out: dict[str, dict] = {}
    for row in rows:
        m = [r["models"][row] for r in records]
        score = np.array([x["score"] for x in m], dtype=np.float64)
        dep = np.array([x["dependent"] for x in m], dtype=np.float64)
        uns = np.array([x["unsafety"] for x in m], dtype=np.float64)
        s = relevance_summary(score, true_score, uns, unsafe, threshold)
        s["kendall_tau"] = mean_ci(rank_per_scene(kendall_tau, score, true_score))
        s["spearman_rho"] = mean_ci(rank_per_scene(spearman_rho, score, true_score))
        s["dependent"] = {
            "kendall_tau": mean_ci(rank_per_scene(kendall_tau, dep, true_dep)),
            "spearman_rho": mean_ci(rank_per_scene(spearman_rho, dep, true_dep)),
        }
        inter = np.array([x["occ_intersection"] for x in m], dtype=np.float64)  # [S, T]
        union = np.array([x["occ_union"] for x in m], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.where(union.sum(1) > 0, inter.sum(1) / union.sum(1), np.nan)
            per_t = inter.sum(0) / union.sum(0)
        s["occupancy_iou"] = {
            "per_scene": mean_ci(per),
            "pooled": float(inter.sum() / union.sum()) if union.sum() > 0 else float("nan"),
            "per_horizon": [float(v) for v in per_t],
        }
        s["accepted_fraction"] = float((uns < threshold).mean())
        out[row] = s
    out["_truth"] = {
        "unsafe_fraction": float(unsafe.mean()),
        "collision_fraction": float(np.mean([r["truth"]["collision"] for r in records])),
        "off_road_fraction": float(np.mean([r["truth"]["off_road"] for r in records])),
        "constructed_unsafe_truly_unsafe": float(
            unsafe[np.array([r["constructed_unsafe"] for r in records], dtype=bool)].mean()
        ),
    }
    return out


# ----------------------------------------------------------------------------------------------- figures and reports


def write_figure(path: Path, keep: dict, rows: list[str]) -> Path:
    """One BEV panel per model (candidate plans coloured by the model's score, its choice in red) and a
    last panel with the true outcome (plans coloured by their true score, truly unsafe plans marked ×);
    the background is the true driveable area, the boxes are the agents at t = 3 s under the stop plan."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from occupancy.render import draw_boxes, draw_ego, draw_plans, save_figure

    grid: GridSpec = keep["grid"]
    plans = keep["plans"]
    panels = [(r, keep["pred"][r]) for r in rows] + [("truth", keep["true_score"])]
    fig = Figure(figsize=(3.2 * len(panels), 4.2))
    FigureCanvasAgg(fig)
    (x0, y0, _), (x1, y1, _) = grid.lower, grid.upper
    ok = keep["agent_valid"]
    boxes = keep["boxes"][0, -1][ok]  # [A', 5] agents at t = 3 s under the stop plan
    boxes = boxes[(boxes[:, 0] > x0) & (boxes[:, 0] < x1) & (boxes[:, 1] > y0) & (boxes[:, 1] < y1)]
    for j, (title, score) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), j + 1)
        ax.imshow(
            keep["drivable"].numpy()[::-1, ::-1],  # [X, Y] → image rows = x down, columns = y right-to-left
            extent=(y1, y0, x0, x1),
            origin="upper",
            cmap="Greys",
            vmin=0,
            vmax=3,
        )
        draw_boxes(ax, boxes, color="tab:blue", linewidth=0.6)
        draw_ego(ax, color="black", linewidth=0.8)
        draw_plans(ax, plans, score, best=int(torch.argmax(score)), colorbar=False)
        if title == "truth":
            u = keep["unsafe"]
            ends = plans[u, -1]
            ax.scatter(ends[:, 1], ends[:, 0], marker="x", color="red", s=25, zorder=5)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(min(y1, 25.0), max(y0, -25.0))
        ax.set_ylim(max(x0, -10.0), min(x1, 50.0))
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
    return save_figure(fig, path, dpi=90)


def _ci(d: dict) -> str:
    if not isinstance(d, dict) or d.get("mean") is None or not math.isfinite(d.get("mean", math.nan)):
        return "n/a"
    lo, hi = d.get("lo", math.nan), d.get("hi", math.nan)
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{d['mean']:.3f} [{lo:.3f}, {hi:.3f}]"
    return f"{d['mean']:.3f}"


def _f(v: Any, digits: int = 3) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def report_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """The side-by-side table of the report."""
    head = [
        "model",
        "τ full",
        "ρ full",
        "τ dependent",
        "ρ dependent",
        "top-1 regret",
        "unsafe AUROC",
        "false accept",
        "occ IoU",
    ]
    ns = [str(n) for n in results["config"].get("latency_plans", LATENCY_PLANS)]
    head += [f"ms N={n}" for n in ns]
    rows = []
    lat = results.get("latency_ms") or {}
    for name, m in results["models"].items():
        if name.startswith("_"):
            continue
        rows.append(
            [
                name,
                _ci(m["kendall_tau"]),
                _ci(m["spearman_rho"]),
                _ci(m["dependent"]["kendall_tau"]),
                _ci(m["dependent"]["spearman_rho"]),
                _ci(m["top1_regret"]),
                _f(m["unsafe_auroc"]),
                _f(m["false_accept_rate"]),
                _f(m["occupancy_iou"]["pooled"]),
            ]
            + [_f(lat.get(name, {}).get(n), 1) for n in ns]
        )
    return head, rows


def write_reports(out: Path, results: dict) -> None:
    """`report.md` and `report.html` beside `results.json`."""
    from drivewm.evaluation.report import html_page, html_table, md_table
    from occupancy.atomic import write_text_atomic

    cfg, truth = results["config"], results["models"]["_truth"]
    head, rows = report_table(results)
    meta = results["metadata"]
    intro = (
        f"towns {', '.join(cfg['towns'])}, {cfg['scenes']} scenes × {cfg['plans']} plans, seed {cfg['seed']}; "
        f"truth = lite simulator branches at dt {cfg['oracle_dt']} s with reactive traffic; "
        f"{100 * truth['unsafe_fraction']:.1f} % of plans truly unsafe (collision "
        f"{100 * truth['collision_fraction']:.1f} %, off road {100 * truth['off_road_fraction']:.1f} %); "
        f"{100 * truth['constructed_unsafe_truly_unsafe']:.1f} % of the plans built to be unsafe were. "
        f"git {meta.get('git_commit')}."
    )
    notes = (
        "τ/ρ: Kendall τ-b / Spearman ρ between the model's and the true plan scores per scene, mean "
        "[95 % CI] (a model that scores all plans of a scene alike gets 0 there; scenes with a constant "
        "truth are left out); 'dependent' = the model-dependent terms alone (collision time, TTC, drivable area). "
        "Top-1 regret: true score of the best plan minus that of the model's choice. Unsafe AUROC / false "
        f"accept at unsafety < {cfg['threshold']} (the scorer's gates). Occ IoU: "
        "pooled over scenes, plans and t = 0.5…3 s, obstacle ≥ 0.5 vs true boxes under the same plan, ego "
        "excluded. Latency: encode + rollout + score on this machine. The oracle row is the prediction the "
        "truth is scored from (upper bound)."
    )
    figs = [r["figure"] for r in results["scenes"] if r.get("figure")]
    md = [f"# Action relevance\n\n{intro}\n", md_table(head, rows), "", notes, ""]
    md += [f"![scene]({Path(f).relative_to(out)})" for f in figs]
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    body = f"<p>{intro}</p>" + html_table(head, rows) + f"<p class='note'>{notes}</p>"
    body += "".join(f"<img src='{Path(f).relative_to(out)}'>" for f in figs)
    write_text_atomic(out / "report.html", html_page("Action relevance", body))


# ----------------------------------------------------------------------------------------------- driver


PARTIAL = "scenes.partial.json"
"""Finished scenes of an interrupted run (deleted when the run completes)."""


def run_relevance(
    cfg: RelevanceConfig, out: str | Path, progress: Callable[[str], None] | None = None, resume: bool = False
) -> dict[str, Any]:
    """Run the evaluation and write `results.json`, `report.md`, `report.html` and figures to `out`.
    After every scene the finished ones are saved to `<out>/scenes.partial.json`; with `resume`, a run
    with the same config continues from there (scenes are seeded by (seed, index), so the result is the
    same). Returns the results dict."""
    from carla_bridge.lite.backend import LiteBackend
    from carla_bridge.lite.config import LiteConfig
    from carla_bridge.maps import load_town
    from carla_bridge.run_metadata import run_metadata
    from drivewm.evaluation.report import write_results

    cfg.validate()
    say = progress or log.info
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    towns = {name: load_town(name) for name in cfg.towns}
    lite_cfg = LiteConfig(
        num_vehicles=cfg.num_vehicles,
        num_pedestrians=cfg.num_pedestrians,
        num_parked=cfg.num_parked,
        num_props=cfg.num_props,
    )
    learned = load_learned(cfg)
    size = None if learned is None else (int(learned.config.image_size[1]), int(learned.config.image_size[0]))
    backends: dict[str, Any] = {}
    runners_by_town: dict[str, list[ModelRunner]] = {}
    records: list[dict] = []
    latency: dict | None = None
    config_json = _jsonable(asdict(cfg))
    partial = out / PARTIAL
    if resume and partial.exists():
        saved = json.loads(partial.read_text())
        if json.dumps(saved.get("config"), sort_keys=True) == json.dumps(config_json, sort_keys=True):
            records, latency = saved["records"], saved.get("latency")
            say(f"resuming after {len(records)} finished scenes")
        else:
            say(f"{partial} was written with another config: starting again")
    t_start = time.perf_counter()
    for i in range(len(records), cfg.scenes):
        name = cfg.towns[i % len(cfg.towns)]
        if name not in backends:
            backends[name] = _backend(LiteBackend, towns[name], lite_cfg, size)
            runners_by_town[name] = build_runners(cfg, backends[name], learned)
        backend, runners = backends[name], runners_by_town[name]
        render = backend.render != "none"
        info = prepare_scene(backend, towns[name], cfg, i, render)
        rec, keep = evaluate_scene(backend, runners, cfg, info, render)
        records.append(rec)
        if i < cfg.figures:
            rec["figure"] = str(write_figure(out / "figures" / f"scene_{i:03d}.png", keep, cfg.rows()))
        if latency is None:
            latency = measure_latency(backend, runners, cfg, render)
        write_results(partial, {"config": config_json, "records": records, "latency": latency})
        n_uns = int(np.sum(rec["truth"]["unsafe"]))
        say(
            f"scene {i + 1}/{cfg.scenes} ({name}, t={rec['time']:.1f} s, {rec['moment']}): "
            f"{n_uns}/{cfg.plans} plans truly unsafe [{time.perf_counter() - t_start:.0f} s]"
        )
    for b in backends.values():
        b.close()
    results = {
        "config": config_json,
        "seed": cfg.seed,
        "metadata": run_metadata(),
        "models": summarize(records, cfg.rows(), cfg.threshold),
        "latency_ms": latency,
        "scenes": records,
        "wall_seconds": time.perf_counter() - t_start,
    }
    write_results(out / "results.json", results)
    write_reports(out, results)
    partial.unlink(missing_ok=True)
    return results


def _backend(cls: Any, town: Any, lite_cfg: Any, size: tuple[int, int] | None) -> Any:
    if size is None:
        return cls(town, lite_cfg)
    return cls(town, lite_cfg, render="cameras", render_every=10**9, image_size=size)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


__all__ = [
    "LATENCY_PLANS",
    "MODEL_NAMES",
    "NO_PLAN",
    "Candidates",
    "RelevanceConfig",
    "build_candidates",
    "dependent_score",
    "evaluate_scene",
    "occupancy_counts",
    "rank_per_scene",
    "report_table",
    "route_following_plan",
    "run_relevance",
    "summarize",
    "unsafety",
]
