"""Run (routes × seeds) for one agent and land every route record in `<out>/checkpoint.json`.

Three executors, one result: in this process (`workers=1`), in `workers` processes on this machine
(a spawn-context process pool; each worker builds its agent once and drives routes in its main
thread, so the SIGALRM watchdog works there), or as tasks on a Ray cluster (`ray_address`, see
`ray_runner.py`). The parent appends each finished record to the checkpoint through
`ResultsCheckpoint` (locked, atomic, merged by (agent, route id, seed)), so results from all
workers land once, and `resume=True` skips every (agent, route, seed) already there. A worker that
dies takes only its current route with it: that route is recorded as failed ("Simulation"), and
the remaining routes go to a fresh pool.

Agents and backends are built from picklable factories (`agent_factory()` → `Agent`,
`BackendSpec(town)` → `Backend`), so the same spec works in every executor. The route runner itself
(`carla_bridge.closed_loop.runner.run_route`) is the simulator side; this module is the evaluation
around it. `evaluate_closed_loop` is the entry point: a `ClosedLoopConfig` in, records and a report out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from carla_bridge.closed_loop.backend_spec import BackendSpec
from carla_bridge.closed_loop.runner import FAILURE_MESSAGES, RunLimits, run_route
from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint
from drivewm.evaluation.closed_loop.config import ClosedLoopConfig
from occupancy.atomic import write_json_atomic

CHECKPOINT_NAME = "checkpoint.json"


@dataclass(frozen=True)
class Task:
    """One route run: the route, its seed, and where its video frames go (None: no frames)."""

    route: Any
    seed: int
    frames_path: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (str(self.route.id), int(self.seed))


@dataclass
class EvalSummary:
    """What an evaluation did: records written now, keys skipped by resume, wall time [s]."""

    agent: str
    ran: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)
    wall_seconds: float = 0.0


def check_towns(routes: Iterable[Any]) -> None:
    """`FileNotFoundError` naming every route whose town's map is not vendored (and the available ones)."""
    from carla_bridge.maps.xodr import available_towns

    have = set(available_towns())
    missing: dict[str, list[str]] = {}
    for r in routes:
        if r.town not in have:
            missing.setdefault(r.town, []).append(str(r.id))
    if missing:
        what = "; ".join(f"map {t} (routes {', '.join(ids)})" for t, ids in sorted(missing.items()))
        raise FileNotFoundError(
            f"missing map: {what} — not vendored in carla_bridge/data/towns (available: {', '.join(sorted(have))}); "
            "choose other routes with --route-ids"
        )


def parse_seeds(text: str | int) -> list[int]:
    """`--seeds`: a count ("3" → 0, 1, 2) or an explicit comma list ("0,5,7")."""
    s = str(text).strip()
    try:
        if "," in s:
            seeds = [int(x) for x in s.split(",") if x.strip()]
            if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
                raise ValueError
            return seeds
        n = int(s)
    except ValueError:
        raise ValueError(f"--seeds must be a count (3) or distinct non-negative seeds (0,5,7), got {text!r}") from None
    if n < 1:
        raise ValueError(f"--seeds must be at least 1, got {n}")
    return list(range(n))


def select_routes(routes: list[Any], route_ids: str | Iterable[str] | None) -> list[Any]:
    """The routes with the given ids in the given order (None: all); `ValueError` naming unknown ids."""
    if route_ids is None:
        return list(routes)
    ids = [x.strip() for x in route_ids.split(",")] if isinstance(route_ids, str) else [str(x) for x in route_ids]
    ids = [x for x in ids if x]
    by_id = {str(r.id): r for r in routes}
    unknown = [x for x in ids if x not in by_id]
    if unknown:
        raise ValueError(f"--route-ids: unknown route ids {unknown} (the file has {sorted(by_id, key=_id_order)})")
    return [by_id[x] for x in ids]


def _id_order(x: str) -> tuple[int, str]:
    return (int(x), "") if x.isdigit() else (1 << 30, x)


def failed_record(agent: str, task: Task, status: str, message: str) -> dict[str, Any]:
    """A record for a route whose run never produced one (its worker process died)."""
    from carla_bridge.scoring import InfractionKind

    zero = {k.value: 0 for k in InfractionKind}
    return {
        "agent": agent,
        "route_id": str(task.route.id),
        "town": task.route.town,
        "seed": int(task.seed),
        "status": f"Failed - {status}",
        "failure": {
            "status": status,
            "message": message,
            "description": FAILURE_MESSAGES[status],
            "watchdog": False,
        },
        "route_completion": 0.0,
        "infraction_penalty": 1.0,
        "driving_score": 0.0,
        "km_driven": 0.0,
        "counts": zero,
        "infractions_per_km": dict(zero),
        "events": [],
        "sim_seconds": 0.0,
        "steps": 0,
        "timing": {"wall_seconds": None, "wall_per_sim_second": None, "agent_step_ms": None},
    }


# --------------------------------------------------------------------------------------------- workers
_WORKER: dict[str, Any] = {}


def _init_worker(agent_factory: Callable[[], Any], threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
    _WORKER["agent_factory"] = agent_factory
    _WORKER["agent"] = None


def _worker_run(backend: BackendSpec, task: Task, limits: RunLimits, agent_name: str) -> dict[str, Any]:
    if _WORKER.get("agent") is None:
        try:
            _WORKER["agent"] = _WORKER["agent_factory"]()
        except Exception as err:
            rec = failed_record(agent_name, task, "Agent_init", f"{type(err).__name__}: {err}")
            return rec
    return run_route(backend, _WORKER["agent"], task.route, task.seed, limits, task.frames_path)


def run_task_in_process(
    agent: Any, backend: BackendSpec, task: Task, limits: RunLimits, agent_name: str
) -> dict[str, Any]:
    rec = run_route(backend, agent, task.route, task.seed, limits, task.frames_path)
    rec["agent"] = agent_name
    return rec


# --------------------------------------------------------------------------------------------- harness
def run_evaluation(
    agent_factory: Callable[[], Any],
    agent_name: str,
    routes: list[Any],
    seeds: list[int],
    out: str | os.PathLike,
    backend: BackendSpec | None = None,
    limits: RunLimits | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    resume: bool = False,
    config: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> EvalSummary:
    """Run every (route, seed) for one agent; see the module docstring.

    Args:
        agent_factory: picklable `() -> Agent` (called once per worker).
        agent_name: the name records are keyed by (`Agent.name`).
        routes: parsed `Route`s (their maps must be vendored).
        seeds: simulator seeds, each route runs once per seed.
        out: output folder (`checkpoint.json`, `frames/`, `config_<agent>.json`).
        backend: backend factory (default: lite).
        limits: per-route budgets and options.
        workers: parallel processes on this machine (1: in this process).
        ray_address: run on Ray instead ("local" starts a local instance; else a cluster address).
        resume: skip (agent, route, seed) already in the checkpoint.
        config: the command's configuration, written to `config_<agent>.json` for the report.
        log: progress lines.
    """
    if not routes:
        raise ValueError("no routes to run")
    if not seeds:
        raise ValueError("no seeds to run")
    if workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    check_towns(routes)
    backend = backend or BackendSpec()
    if backend.kind == "carla" and workers > 1 and ray_address is None:
        raise ValueError("--backend carla drives one route at a time on its server: use --workers 1")
    limits = limits or RunLimits()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = ResultsCheckpoint(out / CHECKPOINT_NAME)
    done = {(r, s) for a, r, s in ckpt.finished_keys() if a == agent_name} if resume else set()
    frames_dir = out / "frames" / file_safe(agent_name)
    tasks, skipped = [], []
    for route in routes:
        for seed in seeds:
            frames = str(frames_dir / f"{file_safe(str(route.id))}_s{seed}.npz") if limits.frames_every > 0 else None
            t = Task(route, int(seed), frames)
            (skipped if t.key in done else tasks).append(t)
    summary = EvalSummary(agent_name, skipped=[t.key for t in skipped])
    _write_config(out, agent_name, config, backend, limits, routes, seeds)
    if skipped:
        log(f"[{agent_name}] resume: {len(skipped)} finished route runs skipped, {len(tasks)} to go")
    t0 = time.perf_counter()
    counter = {"n": 0}

    def land(rec: dict[str, Any]) -> None:
        rec["agent"] = agent_name
        ckpt.append([rec])
        summary.ran.append(rec)
        counter["n"] += 1
        log(
            f"[{agent_name}] {counter['n']}/{len(tasks)} route {rec['route_id']} seed {rec['seed']}: "
            f"{rec['status']}, DS {rec['driving_score']:.1f}, RC {rec['route_completion']:.1f} %, "
            f"{rec.get('sim_seconds', 0):.1f} s simulated in {(rec.get('timing') or {}).get('wall_seconds') or 0:.1f} s"
        )

    if tasks:
        if ray_address is not None:
            from drivewm.evaluation.closed_loop.ray_runner import run_on_ray

            run_on_ray(agent_factory, agent_name, backend, tasks, limits, ray_address, land, workers)
        elif workers == 1:
            agent = None
            for task in tasks:
                if agent is None:
                    try:
                        agent = agent_factory()
                    except Exception as err:
                        land(failed_record(agent_name, task, "Agent_init", f"{type(err).__name__}: {err}"))
                        continue
                land(run_task_in_process(agent, backend, task, limits, agent_name))
        else:
            _run_pool(agent_factory, agent_name, backend, tasks, limits, workers, land, log)
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def evaluate_closed_loop(
    cfg: ClosedLoopConfig, out: str | os.PathLike, resume: bool = False, log: Callable[[str], None] = print
) -> EvalSummary:
    """The entry point: drive `cfg.agent` on the selected routes × seeds into `out` (records land in
    `<out>/checkpoint.json`, the run's config in `<out>/config_<agent>.json`). Bad input (unknown
    agent, route ids or maps, a missing checkpoint, no CARLA server) raises before any route runs."""
    from carla_bridge.routes import parse_routes

    cfg.validate()
    spec = cfg.agent_spec()
    if cfg.ckpt and not Path(cfg.ckpt).is_file():
        raise FileNotFoundError(f"--ckpt {cfg.ckpt} does not exist")
    routes = select_routes(parse_routes(cfg.routes), cfg.route_ids)
    if cfg.backend == "carla":
        from carla_bridge.live.backend import CarlaServerUnavailable, connect

        try:
            connect(cfg.host, cfg.port, cfg.carla_timeout)  # one clear line now if no server answers
        except CarlaServerUnavailable as err:
            raise ValueError(str(err)) from None
    return run_evaluation(
        spec,
        cfg.agent,
        routes,
        list(cfg.seeds),
        out,
        backend=cfg.backend_spec(spec.needs_images),
        limits=cfg.limits(),
        workers=cfg.workers,
        ray_address=cfg.ray,
        resume=resume,
        config={**cfg.to_dict(), "protocol_label": cfg.protocol_label()},
        log=log,
    )


def _run_pool(
    agent_factory: Callable[[], Any],
    agent_name: str,
    backend: BackendSpec,
    tasks: list[Task],
    limits: RunLimits,
    workers: int,
    land: Callable[[dict[str, Any]], None],
    log: Callable[[str], None],
) -> None:
    import multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // workers)
    pending = list(tasks)
    while pending:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(pending)),
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(agent_factory, threads),
        ) as pool:
            futures = {pool.submit(_worker_run, backend, t, limits, agent_name): t for t in pending}
            pending = []
            broken = False
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in finished:
                    task = futures[fut]
                    try:
                        land(fut.result())
                    except BrokenProcessPool:
                        broken = True
                        pending.append(task)
                    except Exception as err:
                        land(
                            failed_record(agent_name, task, "Simulation", f"worker error: {type(err).__name__}: {err}")
                        )
            if broken:
                # every task of a broken pool fails; the one that killed it cannot be told apart, so each is
                # retried once in a fresh pool and recorded as failed if it breaks a pool again
                retry = [t for t in pending if not getattr(t, "_retried", False)]
                for t in pending:
                    if getattr(t, "_retried", False):
                        land(failed_record(agent_name, t, "Simulation", "the worker process running it died"))
                for t in retry:
                    object.__setattr__(t, "_retried", True)
                log(f"[{agent_name}] a worker process died; retrying {len(retry)} route runs in a fresh pool")
                pending = retry


def file_safe(text: str) -> str:
    """`text` with every character but letters, digits and `-_.` replaced by `_` (a file name part)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def config_path(out: Path, agent: str) -> Path:
    """Where an agent's run config lies in an output folder."""
    return Path(out) / f"config_{file_safe(agent)}.json"


def _write_config(
    out: Path,
    agent: str,
    config: dict[str, Any] | None,
    backend: BackendSpec,
    limits: RunLimits,
    routes: list[Any],
    seeds: list[int],
) -> None:
    payload = {
        "agent": agent,
        "command": config or {},
        "backend": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(backend).items()},
        "limits": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(limits).items()},
        "routes": [{"id": str(r.id), "town": r.town, "source": str(r.source) if r.source else None} for r in routes],
        "seeds": list(seeds),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomic(config_path(out, agent), payload, indent=1)
