"""Run (routes × seeds) for one agent and land every route record in `<out>/checkpoint.json`.

Three executors, one result: in this process (`workers=1`), in `workers` processes on this machine
(a spawn-context process pool; each worker builds its agent once and drives routes in its main
thread, so the SIGALRM watchdog works there), or as tasks on a Ray cluster (`ray_address`, see
`ray_runner.py`). The parent appends each finished record to the checkpoint through
`ResultsCheckpoint` (locked, atomic, merged by key), so results from all workers land once. A
record's key is everything that defines its run (`run_identity`: the agent, its checkpoint's content
hash, the protocol and every result-changing setting; the route's id and content; the seed), so
`resume=True` reuses exactly the runs asked for again and nothing else, and a report shows only the
runs of each agent's latest request. A worker that dies takes only its current route with it: that
route is recorded as failed ("Simulation", retried by the next `--resume`), and the remaining routes
go to a fresh pool.

The agent is built once in this process before any route runs: an agent that cannot be built (a
truncated, unsafe or NaN-weight checkpoint) stops the evaluation with `AgentInitError`, one line
naming the reason, and nothing is scored; so does an agent whose `setup` fails on a route (the
runner's "Agent_init" failure is not a result, and is not recorded).

Agents and backends are built from picklable factories (`agent_factory()` → `Agent`,
`BackendSpec(town)` → `Backend`), so the same spec works in every executor. The route runner itself
(`carla_bridge.closed_loop.runner.run_route`) is the simulator side; this module is the evaluation
around it. `evaluate_closed_loop` is the entry point: a `ClosedLoopConfig` in, records and a report out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from carla_bridge.closed_loop.backend_spec import BackendSpec
from carla_bridge.closed_loop.runner import FAILURE_MESSAGES, RunLimits, run_route
from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint, record_key
from drivewm.evaluation.closed_loop.config import ClosedLoopConfig
from occupancy.atomic import check_output_dir, write_json_atomic

CHECKPOINT_NAME = "checkpoint.json"

RETRIED_ON_RESUME = frozenset({"Simulation"})
"""Failure statuses that are not a result of the agent (the simulator or a worker died): `--resume`
runs those routes again instead of reusing the failed record."""

EXECUTION_ONLY = frozenset(
    {"routes", "route_ids", "seeds", "workers", "ray", "host", "port", "carla_timeout", "timeout_s"}
    | {"frames_every", "render", "protocol_label"}
)
"""Settings that change how or where runs execute, not their results: left out of the run identity
(a route's content and its seed are keyed per record; CARLA's address is not the CARLA world)."""


class AgentInitError(ValueError):
    """The agent could not be built or set up: the evaluation stops before any route is scored."""


def _canonical(obj: Any) -> Any:
    """A JSON-ready, deterministic form of settings and routes (dataclasses, arrays, tuples, paths)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, np.ndarray):
        return _canonical(obj.tolist())
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 9)
    if isinstance(obj, np.generic):
        return _canonical(obj.item())
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    return str(obj)


def digest(obj: Any) -> str:
    """Short SHA-256 of the canonical JSON of `obj`."""
    return hashlib.sha256(json.dumps(_canonical(obj), sort_keys=True).encode()).hexdigest()[:20]


def route_digest(route: Any) -> str:
    """Digest of a route's content (town, waypoints, headings, scenarios, ...; not the file it came from)."""
    fields = _canonical(route)
    if isinstance(fields, dict):
        fields.pop("source", None)
    return digest(fields)


def run_identity(
    agent_name: str,
    agent_factory: Any,
    backend: BackendSpec,
    limits: RunLimits,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything that defines the result of an agent's route runs besides the route and the seed: the
    agent's recipe (its checkpoint by the SHA-256 of its content, not its path), the backend's world
    (traffic, cameras), the runner's limits (route length, timeouts, replan rate) and the command's
    config (protocol, rule set, any setting added later), minus `EXECUTION_ONLY`."""
    from drivewm.model.checkpoint import checkpoint_digest

    hashed: dict[str, str] = {}

    def settings(obj: Any) -> dict[str, Any]:
        raw = _canonical(obj) if isinstance(obj, dict) or dataclasses.is_dataclass(obj) else {}
        out = {k: v for k, v in raw.items() if k not in EXECUTION_ONLY}
        ckpt = out.pop("ckpt", None)
        if ckpt:
            if ckpt not in hashed:
                hashed[ckpt] = checkpoint_digest(ckpt) if Path(ckpt).is_file() else f"missing:{ckpt}"
            out["ckpt_sha256"] = hashed[ckpt]
        return out

    plain = isinstance(agent_factory, type) or inspect.isfunction(agent_factory)
    kind = agent_factory if plain else type(agent_factory)  # a class or function, or a recipe object
    return {
        "agent": agent_name,
        "agent_recipe": {"type": f"{kind.__module__}.{kind.__qualname__}", **settings(agent_factory)},
        "backend": settings(backend),
        "limits": settings(limits),
        "command": settings(config or {}),
    }


@dataclass(frozen=True)
class Task:
    """One route run: the route, its seed, and where its video frames go (None: no frames)."""

    route: Any
    seed: int
    frames_path: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        """(route id, seed): how progress lines and summaries name the run."""
        return (str(self.route.id), int(self.seed))

    def full_key(self, run_id: str) -> tuple[str, str, str, int]:
        """(run id, route id, route digest, seed): the record key without the agent."""
        return (run_id, str(self.route.id), route_digest(self.route), int(self.seed))


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


def build_agent_or_stop(agent_factory: Callable[[], Any], agent_name: str) -> Any:
    """`agent_factory()`, or `AgentInitError` naming the agent and the reason."""
    try:
        return agent_factory()
    except Exception as err:
        raise AgentInitError(f"agent {agent_name!r} could not be built: {_describe(err)}") from err


def _describe(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if isinstance(err, ValueError | OSError) else f"{type(err).__name__}: {text}"


def _worker_run(backend: BackendSpec, task: Task, limits: RunLimits, agent_name: str) -> dict[str, Any]:
    if _WORKER.get("agent") is None:
        _WORKER["agent"] = build_agent_or_stop(_WORKER["agent_factory"], agent_name)
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
    out = check_output_dir(out)
    identity = run_identity(agent_name, agent_factory, backend, limits, config)
    run_id = digest(identity)
    # the agent is built before anything is written or scored: a bad checkpoint stops here
    agent = build_agent_or_stop(agent_factory, agent_name)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = ResultsCheckpoint(out / CHECKPOINT_NAME)
    reusable = (
        {record_key(r) for r in ckpt.load_all() if _reusable(r) and r.get("agent") == agent_name} if resume else set()
    )
    frames_dir = out / "frames" / file_safe(agent_name)
    tasks, skipped = [], []
    for route in routes:
        for seed in seeds:
            frames = str(frames_dir / f"{file_safe(str(route.id))}_s{seed}.npz") if limits.frames_every > 0 else None
            t = Task(route, int(seed), frames)
            (skipped if (agent_name, *t.full_key(run_id)) in reusable else tasks).append(t)
    summary = EvalSummary(agent_name, skipped=[t.key for t in skipped])
    ckpt.set_request(agent_name, [t.full_key(run_id) for t in (*skipped, *tasks)])
    _write_config(out, agent_name, config, backend, limits, routes, seeds, identity, run_id)
    if skipped:
        log(f"[{agent_name}] resume: {len(skipped)} finished route runs skipped, {len(tasks)} to go")
    t0 = time.perf_counter()
    counter = {"n": 0}
    digests = {str(t.route.id): route_digest(t.route) for t in tasks}

    def land(rec: dict[str, Any]) -> None:
        failure = rec.get("failure") or {}
        if failure.get("status") == "Agent_init":  # not a result: the agent could not be set up at all
            raise AgentInitError(
                f"agent {agent_name!r} could not be set up for route {rec.get('route_id')}: {failure.get('message')}"
            )
        rec["agent"] = agent_name
        rec["run_id"] = run_id
        rec["route_digest"] = digests[str(rec["route_id"])]
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

            del agent  # each task builds its own
            run_on_ray(agent_factory, agent_name, backend, tasks, limits, ray_address, land, workers)
        elif workers == 1:
            for task in tasks:
                land(run_task_in_process(agent, backend, task, limits, agent_name))
        else:
            del agent  # each worker process builds its own
            _run_pool(agent_factory, agent_name, backend, tasks, limits, workers, land, log)
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def _reusable(record: dict[str, Any]) -> bool:
    """Whether `--resume` may reuse a record: not a failure of the infrastructure (`RETRIED_ON_RESUME`)."""
    failure = record.get("failure") or {}
    return failure.get("status") not in RETRIED_ON_RESUME


def evaluate_closed_loop(
    cfg: ClosedLoopConfig, out: str | os.PathLike, resume: bool = False, log: Callable[[str], None] = print
) -> EvalSummary:
    """The entry point: drive `cfg.agent` on the selected routes × seeds into `out` (records land in
    `<out>/checkpoint.json`, the run's config in `<out>/config_<agent>.json`). Bad input (unknown
    agent, route ids or maps, a missing checkpoint, no CARLA server) raises before any route runs."""
    from carla_bridge.routes import parse_routes

    cfg.validate()
    out = check_output_dir(out)
    spec = cfg.agent_spec()
    if cfg.ckpt and Path(cfg.ckpt).is_dir():
        raise IsADirectoryError(f"--ckpt {cfg.ckpt} is a directory, expected a checkpoint file")
    if cfg.ckpt and not Path(cfg.ckpt).is_file():
        raise FileNotFoundError(f"--ckpt {cfg.ckpt} does not exist")
    routes = select_routes(parse_routes(cfg.routes), cfg.route_ids)
    if cfg.backend == "carla":
        from carla_bridge.live.backend import connect

        connect(cfg.host, cfg.port, cfg.carla_timeout)  # one clear line now if no CARLA server answers
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
                    except AgentInitError:
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise
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
    identity: dict[str, Any],
    run_id: str,
) -> None:
    payload = {
        "agent": agent,
        "run_id": run_id,
        "identity": identity,
        "command": config or {},
        "backend": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(backend).items()},
        "limits": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(limits).items()},
        "routes": [
            {"id": str(r.id), "town": r.town, "source": str(r.source) if r.source else None, "digest": route_digest(r)}
            for r in routes
        ],
        "seeds": list(seeds),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomic(config_path(out, agent), payload, indent=1)
