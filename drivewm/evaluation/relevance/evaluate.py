"""The action-relevance evaluation: scenes → candidate plans → simulated truth → every model's scores
→ metrics, figures and the report (see the package docstring).

    results = evaluate_relevance(RelevanceConfig.from_protocol("relevance-v1", models=(...)), out)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from drivewm.evaluation.relevance.candidates import build_candidates
from drivewm.evaluation.relevance.config import RelevanceConfig
from drivewm.evaluation.relevance.metrics import (
    dependent_score,
    gated_probabilities,
    occupancy_counts,
    summarize,
    unsafety,
)
from drivewm.evaluation.relevance.render import write_figure, write_reports
from drivewm.evaluation.relevance.scenes import prepare_scene
from drivewm.factory import NEEDS_CKPT, PRIVILEGED, build_world_model, load_learned
from occupancy.atomic import check_output_dir
from planner import LightState, Observation, Prediction, PrivilegedState, PrivilegedWorldModel, WorldModel
from planner.proposals import Proposals
from planner.scorer import score_plans

log = logging.getLogger("drivewm.relevance")

PARTIAL = "scenes.partial.json"
"""Finished scenes of an interrupted run (deleted when the run completes)."""


@dataclass(frozen=True)
class ModelRow:
    """One row of the evaluation: a world model and whether it reads privileged state (its name says so)."""

    row: str
    model: WorldModel

    @property
    def privileged(self) -> bool:
        return self.row in PRIVILEGED

    def predict(self, obs: Observation, privileged: PrivilegedState, plans: Tensor) -> Prediction:
        """encode (privileged state only for privileged rows) → rollout of `plans` `[1, N, T, 3]`."""
        with torch.no_grad():
            if self.privileged and isinstance(self.model, PrivilegedWorldModel):
                scene = self.model.encode_privileged(obs, privileged)
            else:
                scene = self.model.encode(obs)
            return self.model.rollout(scene, plans)


def build_rows(cfg: RelevanceConfig, backend: Any, learned: Any = None) -> list[ModelRow]:
    """The rows of `cfg.rows()` from the one factory (`learned`: the loaded learned model they share)."""
    return [
        ModelRow(
            row,
            build_world_model(
                row,
                backend=backend,
                learned=learned,
                oracle_dt=cfg.oracle_dt,
                oracle_max_branch=cfg.max_branch,
            ),
        )
        for row in cfg.rows()
    ]


def evaluate_scene(
    backend: Any, rows: list[ModelRow], cfg: RelevanceConfig, info: dict, render: bool
) -> tuple[dict, dict]:
    """Candidates, truth and every model's scores at the backend's current moment. Returns (json
    record, tensors kept for the figure)."""
    from carla_bridge.oracle import OracleWorldModel

    rng = np.random.default_rng([cfg.seed, info["index"], 1])
    obs = backend.observation(render=render)
    priv = backend.privileged()
    cand = build_candidates(obs, priv, cfg.plans, cfg.unsafe_fraction, rng)
    props = cand.proposals
    oracle = OracleWorldModel(backend, dt=cfg.oracle_dt, max_branch=cfg.max_branch)
    before = backend.world.snapshot()  # the simulator state (the backend's snapshot adds numpy history)
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
            "light_red": int(priv.light_state[0]) == LightState.RED,
        },
        "models": {},
    }
    keep = {
        "plans": props.plans[0],
        "true_score": true_score,
        "unsafe": outcome.unsafe,
        "pred": {},
        "drivable": outcome.prediction.drivable_prob[0],
        "boxes": outcome.boxes,
        "agent_valid": outcome.agent_valid,
        "grid": outcome.prediction.grid,
    }
    for r in rows:
        pred = outcome.prediction if r.row == "oracle" else r.predict(obs, priv, props.plans)
        res = score_plans(props, pred, obs.route, obs.route_valid, cfg.scorer)
        inter, union = occupancy_counts(pred, oracle.rasterize(outcome, pred.grid), props.plans)
        rec["models"][r.row] = {
            "score": res.score[0].tolist(),
            "dependent": dependent_score(res)[0].tolist(),
            "unsafety": unsafety(res, cfg.scorer)[0].tolist(),
            "best": int(res.best[0]),
            "finite": bool(res.finite[0]),
            "occ_intersection": inter.tolist(),
            "occ_union": union.tolist(),
            "probabilities": gated_probabilities(res, pred),
        }
        keep["pred"][r.row] = res.score[0]
    return rec, keep


def measure_latency(backend: Any, rows: list[ModelRow], cfg: RelevanceConfig, render: bool) -> dict:
    """Median wall time [ms] of encode + rollout + score per model at N = `cfg.latency_plans` (plans: the
    lattice tiled to N) at the current simulator moment."""
    obs = backend.observation(render=render)
    priv = backend.privileged()
    base = build_candidates(obs, priv, 16, 0.25, np.random.default_rng(cfg.seed)).proposals
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        out[r.row] = {}
        for n in cfg.latency_plans:
            idx = torch.arange(n) % base.num_plans
            plans = base.plans[:, idx].contiguous()
            props = Proposals(plans, base.dense[:, idx], base.speed0, base.source[:, idx], base.feasible[:, idx])
            warmup = 0 if r.row == "oracle" else 1  # one untimed call first (not for the slow oracle)
            reps = 1 if r.row == "oracle" else max(1, cfg.latency_repeats)
            times = []
            for _ in range(warmup + reps):
                t0 = time.perf_counter()
                pred = r.predict(obs, priv, plans)
                score_plans(props, pred, obs.route, obs.route_valid, cfg.scorer)
                times.append(time.perf_counter() - t0)
            out[r.row][str(n)] = 1000.0 * float(np.median(times[warmup:]))
    return out


def _lite_backend(town: Any, cfg: RelevanceConfig, image_size: tuple[int, int] | None) -> Any:
    """A lite backend with the protocol's traffic; cameras (rendered on demand) only for a learned model."""
    from carla_bridge.lite.backend import LiteBackend
    from carla_bridge.lite.config import LiteConfig

    lite = LiteConfig(
        num_vehicles=cfg.num_vehicles,
        num_pedestrians=cfg.num_pedestrians,
        num_parked=cfg.num_parked,
        num_props=cfg.num_props,
    )
    if image_size is None:
        return LiteBackend(town, lite)
    return LiteBackend(town, lite, render="cameras", render_every=10**9, image_size=image_size)


def _load_partial(partial: Path, config_json: dict, say: Callable[[str], None]) -> tuple[list[dict], dict | None]:
    """Finished scenes and latency of an interrupted run with the same config (else nothing)."""
    if not partial.exists():
        return [], None
    try:
        saved = json.loads(partial.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{partial} is corrupt ({err}); delete it to start again") from None
    if json.dumps(saved.get("config"), sort_keys=True) != json.dumps(config_json, sort_keys=True):
        say(f"{partial} was written with another config: starting again")
        return [], None
    say(f"resuming after {len(saved['records'])} finished scenes")
    return saved["records"], saved.get("latency")


def evaluate_relevance(
    cfg: RelevanceConfig, out: str | Path, progress: Callable[[str], None] | None = None, resume: bool = False
) -> dict[str, Any]:
    """Run the evaluation and write `results.json`, `report.md`, `report.html` and figures to `out`.
    After every scene the finished ones are saved to `<out>/scenes.partial.json`; with `resume`, a run
    with the same config continues from there (scenes are seeded by (seed, index), so the result is the
    same). Returns the results dict."""
    from carla_bridge.maps import load_town
    from carla_bridge.run_metadata import run_metadata
    from drivewm.evaluation.common.report import write_results

    cfg.validate()
    say = progress or log.info
    out = check_output_dir(out)  # an output folder, not a file: refused before any work
    towns = {name: load_town(name) for name in cfg.towns}
    learned = load_learned(cfg.ckpt, cfg.device) if set(cfg.models) & NEEDS_CKPT else None  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs loaded: a bad one leaves nothing behind
    size = None if learned is None else (int(learned.config.image_size[1]), int(learned.config.image_size[0]))
    config_json = cfg.to_dict()
    partial = out / PARTIAL
    records, latency = _load_partial(partial, config_json, say) if resume else ([], None)
    backends: dict[str, Any] = {}
    rows_by_town: dict[str, list[ModelRow]] = {}
    t_start = time.perf_counter()
    try:
        for i in range(len(records), cfg.scenes):
            name = cfg.towns[i % len(cfg.towns)]
            if name not in backends:
                backends[name] = _lite_backend(towns[name], cfg, size)
                rows_by_town[name] = build_rows(cfg, backends[name], learned)
            backend, rows = backends[name], rows_by_town[name]
            render = backend.render != "none"
            info = prepare_scene(backend, towns[name], cfg, i)
            rec, keep = evaluate_scene(backend, rows, cfg, info, render)
            records.append(rec)
            if i < cfg.figures:
                rec["figure"] = str(write_figure(out / "figures" / f"scene_{i:03d}.png", keep, cfg.rows()))
            if latency is None:
                latency = measure_latency(backend, rows, cfg, render)
            write_results(partial, {"config": config_json, "records": records, "latency": latency})
            n_uns = int(np.sum(rec["truth"]["unsafe"]))
            say(
                f"scene {i + 1}/{cfg.scenes} ({name}, t={rec['time']:.1f} s, {rec['moment']}): "
                f"{n_uns}/{cfg.plans} plans truly unsafe [{time.perf_counter() - t_start:.0f} s]"
            )
    finally:
        for b in backends.values():
            b.close()
    results = {
        "config": config_json,
        "protocol": cfg.protocol_label(),
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


__all__ = ["PARTIAL", "ModelRow", "build_rows", "evaluate_relevance", "evaluate_scene", "measure_latency"]
