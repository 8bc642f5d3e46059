"""Route runs as tasks on a Ray cluster (the optional `ray` extra: `pip install -e .[ray]`).

Evaluation suites of hundreds of routes outgrow one machine: each (route, seed) becomes one Ray
task (one CPU) that builds the agent, drives the route and returns its record — and its video
frames as bytes, since cluster nodes need not share a filesystem. The driver lands every record in
the checkpoint as it arrives (`land`), so a killed driver loses only routes still in flight and
`--resume` picks up from there. A task that raises (its node died, the actor was killed) is recorded
as a failed route ("Simulation", run again by the next `--resume`), not retried silently; an agent
that cannot be built stops the whole run (`AgentInitError`).

`ray_address="local"` starts a local instance (`ray.init(num_cpus=workers)`); any other string is
passed to `ray.init(address=...)` (e.g. "auto" or "ray://head:10001").
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carla_bridge.closed_loop.runner import RunLimits, run_route
from occupancy.atomic import write_bytes_atomic


def ray_available() -> bool:
    """Whether the optional `ray` package can be imported."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _ray_task(agent_factory: Callable[[], Any], backend: Any, route: Any, seed: int, limits: RunLimits, frames: bool):
    """Body of one Ray task: (record, frame file bytes or None)."""
    import torch

    from drivewm.evaluation.closed_loop.evaluate import AgentInitError, build_agent_or_stop

    torch.set_num_threads(1)
    try:
        agent = build_agent_or_stop(agent_factory, "agent")
    except AgentInitError as err:
        return {"agent_init_error": str(err)}, None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npz" if frames else None
        rec = run_route(backend, agent, route, seed, limits, path)
        blob = path.read_bytes() if path is not None and path.exists() else None
    rec.pop("frames", None)
    return rec, blob


def run_on_ray(
    agent_factory: Callable[[], Any],
    agent_name: str,
    backend: Any,
    tasks: list[Any],
    limits: RunLimits,
    address: str,
    land: Callable[[dict[str, Any]], None],
    workers: int = 1,
) -> None:
    """Run `tasks` (harness `Task`s) on Ray and `land` each record as it finishes."""
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs the optional 'ray' package: pip install -e .[ray]") from None
    from drivewm.evaluation.closed_loop.evaluate import AgentInitError, failed_record

    started_here = False
    if not ray.is_initialized():
        if address == "local":
            # local workers see the driver's import path (scripts and test helpers outside the package)
            path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
            ray.init(
                num_cpus=max(1, workers),
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
            )
        else:
            ray.init(address=address, log_to_driver=False)
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        refs = {
            remote.remote(agent_factory, backend, t.route, t.seed, limits, t.frames_path is not None): t for t in tasks
        }
        remaining = list(refs)
        while remaining:
            ready, remaining = ray.wait(remaining, num_returns=1)
            for ref in ready:
                task = refs[ref]
                try:
                    rec, blob = ray.get(ref)
                except Exception as err:
                    land(failed_record(agent_name, task, "Simulation", f"Ray task failed: {type(err).__name__}: {err}"))
                    continue
                if "agent_init_error" in rec:  # stop: every other task would fail the same way
                    for other in remaining:
                        ray.cancel(other, force=True)
                    raise AgentInitError(rec["agent_init_error"].replace("'agent'", repr(agent_name), 1))
                if blob is not None and task.frames_path is not None:
                    rec["frames"] = str(write_bytes_atomic(task.frames_path, blob))
                land(rec)
    finally:
        if started_here:
            ray.shutdown()
