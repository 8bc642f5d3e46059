"""Drive one route with one agent: the closed-loop runner.

`run_route(backend_factory, agent, route, seed, limits, rules=...)` builds the backend for the route's
town, sets the agent up, resets the simulator and loops agent → control → simulator step until the
route ends (completed, route deviation, agent blocked, route timeout) or fails. The criteria are those
of a rule set (`carla_bridge.rules`: `leaderboard-2.0` or `bench2drive`): a backend that judges the
route (the lite simulator) must judge by the same rule set, and its final events (the last min-speed
checkpoint, outside route lanes, the route completion) are collected when the route ends; for a
backend that does not (a CARLA server), the runner's own `RouteTracker` measures the completion and
the route timeout. It returns one JSON-ready route record: status, route completion, penalty and
driving score as the leaderboard's `compute_route_statistics` (`carla_bridge.scoring`), every
infraction with its time, place and other actor, infractions per km, the route's scenario types, and
under Bench2Drive rules success, efficiency, smoothness and abilities; plus the agent's planner
statistics and wall time per simulated second.

Nothing an agent or simulator does crashes the evaluation: exceptions and watchdog timeouts become
a named failure status (as the leaderboard's `FAILURE_MESSAGES`), a non-finite or out-of-range
control is never sent to the simulator, and the route is scored with what happened up to there.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from carla_bridge.backend import Backend, Event
from carla_bridge.closed_loop.agent import SIM_DT, Agent, RunContext, check_control, validate_sensors
from carla_bridge.closed_loop.watchdog import WatchdogTimeout, watchdog
from carla_bridge.comfort import route_comfort
from carla_bridge.infractions.route_points import RoutePoints, ego_centre, route_points
from carla_bridge.progress import RouteTracker
from carla_bridge.rules import RuleSet, load_rules
from carla_bridge.scoring import ROUTE_COMPLETION, TERMINAL, InfractionKind, score_route

FAILURE_MESSAGES: dict[str, str] = {
    "Agent_init": "Agent couldn't be set up",
    "Agent_runtime": "Agent crashed",
    "Agent_control": "Agent sent a non-finite or out-of-range control (not sent to the simulator)",
    "Simulation": "Simulation crashed",
    "Sensors": "Agent's sensors were invalid",
    "Route_timeout": "Route exceeded its wall-clock budget",
}
"""Named failure statuses of a route (record["failure"]["status"])."""

_TERMINAL_VALUES = frozenset(k.value for k in TERMINAL)


class RouteFailure(Exception):
    """A route failed with a named status (a key of `FAILURE_MESSAGES`)."""

    def __init__(self, status: str, message: str) -> None:
        if status not in FAILURE_MESSAGES:
            raise ValueError(f"unknown failure status {status!r}; known: {sorted(FAILURE_MESSAGES)}")
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RunLimits:
    """Budgets and options of one route run.

    Attributes:
        max_route_length: drive only the route's first metres (None: the whole route) [m].
        setup_timeout: watchdog on `agent.setup` and the backend's construction / reset [s].
        step_timeout: watchdog on one `agent.run_step` [s].
        sim_timeout: watchdog on one simulator step (incl. privileged state) [s].
        route_timeout: wall-clock budget of the whole route (None: none) [s].
        max_sim_seconds: simulated-time cap (None: none besides the rule set's route timeout) [s].
        replan_hz: replan rate handed to the agent [Hz].
        camera_size: (width, height) of rendered cameras [px].
        frames_every: capture a video frame every this many simulated seconds (0: no frames).
    """

    max_route_length: float | None = None
    setup_timeout: float = 120.0
    step_timeout: float = 30.0
    sim_timeout: float = 30.0
    route_timeout: float | None = None
    max_sim_seconds: float | None = None
    replan_hz: float = 2.0
    camera_size: tuple[int, int] = (400, 225)
    frames_every: float = 0.0

    def __post_init__(self) -> None:
        if self.max_route_length is not None and not self.max_route_length > 0:
            raise ValueError(f"max_route_length must be positive, got {self.max_route_length}")
        for name in ("setup_timeout", "step_timeout", "sim_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RunLimits.{name} must be positive, got {getattr(self, name)}")


def cut_route(route: Any, plan: Any, max_length: float, spacing: float = 5.0) -> Any:
    """The first `max_length` metres of `route` as a new `Route` with dense waypoints (every
    `spacing` metres along the planned polyline, with headings), so any backend re-plans exactly
    that segment; its other fields (scenarios, weathers) are kept. Returns `route` itself when it is
    not longer than `max_length`.

    Args:
        route: a `carla_bridge.routes.Route`.
        plan: its `RoutePlan` (polyline, s, yaw, waypoint_s).
        max_length: [m] > 0.
    """
    if not max_length > 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    if plan.length <= max_length:
        return route
    s = np.append(np.arange(0.0, max_length, spacing), max_length)
    poly = np.asarray(plan.polyline, dtype=np.float64)
    ps = np.asarray(plan.s, dtype=np.float64)
    xy = np.stack([np.interp(s, ps, poly[:, 0]), np.interp(s, ps, poly[:, 1])], -1)
    yaw_u = np.unwrap(np.asarray(plan.yaw, dtype=np.float64))
    yaw = (np.interp(s, ps, yaw_u) + np.pi) % (2 * np.pi) - np.pi
    wz = np.asarray(route.waypoints_world, dtype=np.float64)[:, 2]
    ws = np.asarray(plan.waypoint_s, dtype=np.float64)
    z = np.interp(s, ws, wz) if len(ws) == len(wz) and len(ws) > 1 else np.full(len(s), float(wz[0]))
    return dataclasses.replace(route, waypoints_world=np.concatenate([xy, z[:, None]], -1), yaw=yaw)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None, "count": 0}
    a = np.asarray(values, dtype=np.float64) * 1000.0
    return {
        "mean": round(float(a.mean()), 3),
        "p50": round(float(np.percentile(a, 50)), 3),
        "p90": round(float(np.percentile(a, 90)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
        "count": len(values),
    }


class FrameLog:
    """Compact frames of a run for the report's videos: the front camera, the true agents around
    the ego (evaluation-side ground truth, never given to a non-privileged agent), the route and the
    agent's candidate plans with scores, every `every` simulated seconds."""

    def __init__(self, every: float, max_width: int = 192) -> None:
        self.every = every
        self.max_width = max_width
        self.frames: list[dict[str, np.ndarray]] = []
        self._next = 0.0
        self._last_image: np.ndarray | None = None

    def due(self, t: float) -> bool:
        return self.every > 0 and t + 1e-6 >= self._next

    def capture(self, t: float, obs: Any, agent: Any, backend: Any) -> None:
        self._next = t + self.every
        frame: dict[str, np.ndarray] = {"time": np.array(t, dtype=np.float32)}
        images = obs.images
        if images.shape[1] > 0 and images.shape[-1] > 0:
            img = images[0, 0].permute(1, 2, 0).numpy()  # [h, w, 3] CAM_FRONT
            stride = max(1, math.ceil(img.shape[1] / self.max_width))
            self._last_image = np.ascontiguousarray(img[::stride, ::stride])
        if self._last_image is not None:
            frame["camera"] = self._last_image
        frame["speed"] = np.array(float(obs.speed[0]), dtype=np.float32)
        valid = obs.route_valid[0].numpy()
        frame["route"] = obs.route[0].numpy()[valid].astype(np.float32)
        try:
            a = backend.privileged().agents
            ok = a.valid[0] & (a.xy[0].norm(dim=-1) < 60.0)
            boxes = np.concatenate(
                [a.xy[0][ok].numpy(), a.yaw[0][ok].numpy()[:, None], a.size[0][ok][:, :2].numpy()], -1
            )
            frame["boxes"] = boxes.astype(np.float32)
        except (NotImplementedError, RuntimeError):  # no ground truth from this backend: no boxes in the video
            pass
        v = agent.debug_view()
        if v and v.get("plans") is not None:
            frame["plans"] = np.asarray(v["plans"], dtype=np.float32)
            frame["scores"] = np.asarray(v["scores"], dtype=np.float32)
            frame["best"] = np.array(int(v.get("best", -1)))
        self.frames.append(frame)

    def save(self, path: Path) -> Path:
        """Write the frames as one compressed npz (keys `<i>/<field>`), atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{i:05d}/{k}": v for i, f in enumerate(self.frames) for k, v in f.items()}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp.npz")
        os.close(fd)
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def load_frames(path: str | os.PathLike) -> list[dict[str, np.ndarray]]:
    """Frames written by `FrameLog.save`, in order."""
    with np.load(path) as z:
        frames: dict[int, dict[str, np.ndarray]] = {}
        for key in z.files:
            i, name = key.split("/", 1)
            frames.setdefault(int(i), {})[name] = z[key]
    return [frames[i] for i in sorted(frames)]


def scenario_types(route: Any) -> list[str]:
    """The scenario types of a route, in file order (empty for a route without scenarios)."""
    return [str(sc.type) for sc in route.scenarios]


def junction_completion(points: RoutePoints, rules: RuleSet) -> float | None:
    """Bench2Drive's junction completion of a route: the share of its waypoints up to the first junction
    waypoint plus `traffic_signs_junction_waypoints` (None without a junction or a benchmark)."""
    k = points.first_junction_index()
    if k is None or rules.benchmark is None:
        return None
    return (k + 1 + rules.benchmark.traffic_signs_junction_waypoints) / len(points)


def run_route(
    backend_factory: Callable[[str], Backend],
    agent: Agent,
    route: Any,
    seed: int,
    limits: RunLimits | None = None,
    frames_path: str | os.PathLike | None = None,
    rules: RuleSet | str | None = None,
) -> dict[str, Any]:
    """Drive `route` with `agent` once (see the module docstring).

    Args:
        backend_factory: town name → a fresh `Backend` (e.g. `LiteBackend`); called once per route.
        agent: any `Agent`.
        route: a `carla_bridge.routes.Route`.
        seed: the simulator seed of this run.
        limits: budgets and options.
        frames_path: where to write the run's video frames (with `limits.frames_every > 0`).
        rules: the rule set (a `RuleSet` or its name; default leaderboard-2.0).

    Returns:
        The JSON-ready route record: agent, route_id, town, seed, privileged, limits, rules (name,
        version, digest), route_length_m, full_route, scenario_types, scenario_type (the first),
        status ("Perfect" / "Completed" / "Failed[ - reason]"), failure (None or {status, message,
        description, watchdog[, traceback]}), route_completion [%], infraction_penalty, driving_score
        [%], km_driven, counts and infractions_per_km per `InfractionKind`, infractions (key → events,
        the leaderboard's record order), events (every event: kind, time, location (ego box centre),
        other_ids, details such as other_class / light_xy / percentage), outside_lanes_m; success,
        efficiency, comfort, abilities and junction_completion (None under rules without a benchmark);
        sim_seconds, steps, timing (wall seconds, wall per simulated second, agent step latency
        percentiles [ms], mean simulator step [ms]), planner (the agent's `stats()`), frames (path
        of the video frames, if captured), stopped_by ("max_sim_seconds" when `limits.max_sim_seconds`
        cut the run: then the route is unfinished, not timed out).
    """
    from carla_bridge.maps import load_town
    from carla_bridge.routes import plan_route_for

    limits = limits or RunLimits()
    rules = load_rules(rules or "leaderboard-2.0")
    name = str(agent.name)
    types = scenario_types(route)
    record: dict[str, Any] = {
        "agent": name,
        "route_id": str(route.id),
        "town": route.town,
        "seed": int(seed),
        "privileged": bool(agent.privileged),
        "limits": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(limits).items()},
        "rules": {"name": rules.name, "version": rules.version, "digest": rules.digest},
        "scenario_types": types,
        "scenario_type": types[0] if types else None,
    }
    t_wall0 = time.perf_counter()
    events: list[Event] = []
    failure: dict[str, Any] | None = None
    tracker: RouteTracker | None = None
    points: RoutePoints | None = None
    backend: Any = None
    judged = False
    agent_set_up = False
    sim_time = 0.0
    steps = 0
    trace: list[list[float]] = []
    agent_seconds: list[float] = []
    sim_seconds_wall = 0.0
    frames = FrameLog(limits.frames_every) if frames_path is not None and limits.frames_every > 0 else None
    route_length = float("nan")
    try:
        # --- the route (possibly cut) and its criteria waypoints -------------------------------------
        try:
            town = load_town(route.town)
        except FileNotFoundError as err:
            raise RouteFailure("Simulation", f"the map of route {route.id} is missing: {err}") from None
        plan = plan_route_for(route, town)
        record["full_route"] = limits.max_route_length is None or plan.length <= limits.max_route_length
        if limits.max_route_length is not None and plan.length > limits.max_route_length:
            route = cut_route(route, plan, limits.max_route_length)
            plan = plan_route_for(route, town)
        points = route_points(town, plan, rules.route_spacing)
        route_length = points.length
        record["route_length_m"] = round(route_length, 2)
        tracker = RouteTracker(points, rules)
        # --- backend, sensors, agent setup, reset ----------------------------------------------------
        try:
            with watchdog(limits.setup_timeout, "backend construction"):
                backend = backend_factory(route.town)
        except Exception as err:
            raise RouteFailure("Simulation", f"backend construction failed: {_describe(err)}") from err
        judged = backend.rules is not None
        if judged and backend.rules != rules:
            raise RouteFailure(
                "Simulation",
                f"the backend judges by rule set {backend.rules.label}, this run scores by {rules.label}: "
                "build the backend with the same rules",
            )
        try:
            with watchdog(limits.setup_timeout, "agent.sensors"):
                validate_sensors(agent.sensors())
        except Exception as err:
            raise RouteFailure("Sensors", _describe(err)) from err
        context = RunContext(
            route=route,
            route_xy=plan.polyline,
            town=town,
            backend=backend,
            seed=int(seed),
            replan_hz=limits.replan_hz,
            dt=SIM_DT,
            camera_size=tuple(limits.camera_size),
        )
        try:
            with watchdog(limits.setup_timeout, "agent.setup"):
                agent.setup(context)
            agent_set_up = True
        except Exception as err:
            raise RouteFailure("Agent_init", _describe(err)) from err
        try:
            with watchdog(limits.setup_timeout, "backend.reset"):
                obs = backend.reset(route, int(seed))
        except Exception as err:
            raise RouteFailure(_sim_status(err), f"reset failed: {_describe(err)}") from err
        privileged = bool(agent.privileged)
        # --- the loop ---------------------------------------------------------------------------------
        while True:
            pose = obs.ego_pose[0].double().numpy()
            trace.append([float(pose[0]), float(pose[1]), float(pose[2]), float(obs.speed[0])])
            if frames is not None and frames.due(sim_time):
                frames.capture(sim_time, obs, agent, backend)
            priv = None
            if privileged:
                try:
                    with watchdog(limits.sim_timeout, "backend.privileged"):
                        priv = backend.privileged()
                except Exception as err:
                    raise RouteFailure(_sim_status(err), f"privileged state failed: {_describe(err)}") from err
            t0 = time.perf_counter()
            try:
                with watchdog(limits.step_timeout, "agent.run_step"):
                    control = agent.run_step(obs, sim_time, priv)
            except Exception as err:
                raise RouteFailure("Agent_runtime", _describe(err)) from err
            agent_seconds.append(time.perf_counter() - t0)
            try:
                control = check_control(control)
            except ValueError as err:
                raise RouteFailure("Agent_control", f"at t={sim_time:.2f} s: {err}") from None
            t_next = sim_time + SIM_DT
            render = bool(agent.needs_cameras(t_next)) or (frames is not None and frames.due(t_next))
            t1 = time.perf_counter()
            try:
                with watchdog(limits.sim_timeout, "backend.step"):
                    obs, new_events = backend.step(control, render=render)
            except Exception as err:
                raise RouteFailure(_sim_status(err), f"step failed at t={sim_time:.2f} s: {_describe(err)}") from err
            sim_seconds_wall += time.perf_counter() - t1
            steps += 1
            sim_time = round(steps * SIM_DT, 6)
            events.extend(e for e in new_events if e.world == 0)
            if judged:
                if backend.done:
                    break
            else:
                tracker.update(obs.ego_pose[0].double().numpy(), sim_time)
                if tracker.timed_out:
                    x, y = _centre(obs.ego_pose[0].double().numpy())
                    events.append(Event(InfractionKind.ROUTE_TIMEOUT.value, sim_time, (x, y), (), {}))
                if any(e.kind in _TERMINAL_VALUES for e in new_events if e.world == 0) or tracker.completed:
                    break
                if tracker.timed_out:
                    break
            if limits.max_sim_seconds is not None and sim_time >= limits.max_sim_seconds:
                record["stopped_by"] = "max_sim_seconds"  # a cap of the user's, not the rule set's route timeout
                break
            if limits.route_timeout is not None and time.perf_counter() - t_wall0 > limits.route_timeout:
                raise RouteFailure(
                    "Route_timeout",
                    f"the route took more than {limits.route_timeout:g} s of wall time (at t={sim_time:.1f} s)",
                )
    except RouteFailure as err:
        failure = {"status": err.status, "message": err.message, "description": FAILURE_MESSAGES[err.status]}
        if err.__cause__ is not None and not isinstance(err.__cause__, WatchdogTimeout):
            failure["traceback"] = "".join(traceback.format_exception(err.__cause__))[-4000:]
        failure["watchdog"] = isinstance(err.__cause__, WatchdogTimeout)
    except Exception as err:  # the runner's own bookkeeping (route planning): still a record, not a crash
        failure = {
            "status": "Simulation",
            "message": _describe(err),
            "description": FAILURE_MESSAGES["Simulation"],
            "traceback": "".join(traceback.format_exception(err))[-4000:],
            "watchdog": False,
        }
    finally:
        if judged and backend is not None:
            try:
                events.extend(e for e in backend.finish() if e.world == 0)
            except Exception as err:
                record["finish_error"] = _describe(err)
        if agent_set_up:
            try:
                with watchdog(limits.setup_timeout, "agent.destroy"):
                    agent.destroy()
            except Exception as err:
                record["destroy_error"] = _describe(err)
        if backend is not None:
            try:
                with watchdog(limits.setup_timeout, "backend.close"):
                    backend.close()
            except Exception as err:
                record["close_error"] = _describe(err)
    wall = time.perf_counter() - t_wall0
    # --- scores -----------------------------------------------------------------------------------------
    reported = [float(e.details["percentage"]) for e in events if e.kind == ROUTE_COMPLETION]
    completion = reported[-1] if reported else (tracker.completion if tracker is not None else 0.0)
    known = math.isfinite(route_length) and route_length > 0
    reason = failure["description"] if failure else ""
    score = score_route(events, completion, route_length if known else 0.0, rules, failure_message=reason).to_dict()
    record.setdefault("route_length_m", None)
    km = max(float(score["km_driven"]), 0.001)
    bench = rules.benchmark
    record.update(
        status=score["status"],
        failure=failure,
        route_completion=score["route_completion"],
        infraction_penalty=score["infraction_penalty"],
        driving_score=score["driving_score"],
        km_driven=score["km_driven"],
        counts=score["counts"],
        infractions_per_km={k: round(v / km, 4) for k, v in score["counts"].items()},
        infractions=score["infractions"],
        outside_lanes_m=score["outside_lanes_m"],
        events=[e.to_dict() for e in events],
        success=score["success"],
        efficiency=score["efficiency"],
        comfort=route_comfort(np.asarray(trace), SIM_DT, bench.comfort) if bench is not None and trace else None,
        abilities=bench.abilities_of(record["scenario_type"]) if bench is not None else None,
        junction_completion=junction_completion(points, rules) if points is not None else None,
        sim_seconds=round(sim_time, 3),
        steps=steps,
        timing={
            "wall_seconds": round(wall, 3),
            "wall_per_sim_second": round(wall / sim_time, 4) if sim_time > 0 else None,
            "agent_step_ms": _percentiles(agent_seconds),
            "sim_step_ms_mean": round(1000.0 * sim_seconds_wall / steps, 3) if steps else None,
        },
    )
    try:
        record["planner"] = agent.stats()
    except Exception as err:
        record["planner"] = {"error": _describe(err)}
    if frames is not None and frames.frames:
        try:
            record["frames"] = str(frames.save(Path(frames_path)))
        except OSError as err:
            record["frames_error"] = _describe(err)
    return record


def _centre(pose: np.ndarray) -> tuple[float, float]:
    """The ego's box centre (x, y) of a rear-axle pose `[3]`."""
    x, y = ego_centre(np.asarray(pose, dtype=np.float64)[None, :3])[0]
    return round(float(x), 3), round(float(y), 3)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _sim_status(err: BaseException) -> str:
    """Sensor timeouts of a live server are `Sensors` failures; everything else is `Simulation`."""
    return "Sensors" if isinstance(err, TimeoutError) and "sensor" in str(err) else "Simulation"
