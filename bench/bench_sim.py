"""Lite-simulator speed: steps/s with 50 vehicles + 30 pedestrians and no cameras (budget ≥ 400,
DESIGN.md §8) — without scenarios, and with scenarios active (an oncoming flow, an accident, a crossing
pedestrian and a braking lead vehicle all running) side by side on the same route; W = 32 branched
worlds in one batched step vs 32 single worlds stepped one after another (the counterfactual-branch
use case), with their states compared bit for bit; and `run_plans` (follower + step) plans per second.

Run: `python bench/bench_sim.py [--town Town01] [--steps 400] [--threads 1]`.
"""

from __future__ import annotations

import argparse
import time

import torch


def _steps_per_second(world, steps: int, controls: torch.Tensor) -> tuple[float, float]:
    for _ in range(20):  # warm-up
        world.step(controls)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        world.step(controls)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return steps / wall, steps / max(cpu, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--town", default="Town01")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--worlds", type=int, default=32)
    ap.add_argument("--branch-steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from carla_bridge.lite.config import LiteConfig
    from carla_bridge.lite.random_route import random_route
    from carla_bridge.lite.world import LiteWorld
    from carla_bridge.maps import load_town

    town = load_town(args.town)
    cfg = LiteConfig(num_vehicles=50, num_pedestrians=30)
    world = LiteWorld(town, cfg)
    world.reset(random_route(town, 0, 400.0), seed=0)
    ctrl = torch.tensor([[0.4, 0.0, 0.0]])
    wall_sps, cpu_sps = _steps_per_second(world, args.steps, ctrl)
    print(f"town {args.town}, 50 vehicles + 30 pedestrians, no cameras, torch threads {args.threads}")
    print(f"  single world: {wall_sps:7.1f} steps/s wall   {cpu_sps:7.1f} steps/s per CPU-second   (budget >= 400)")
    _scenarios_side_by_side(town, cfg, args.steps)

    k, n = args.worlds, args.branch_steps
    controls = torch.stack([torch.tensor([0.2 + 0.6 * i / k, -0.3 + 0.6 * i / k, 0.0]) for i in range(k)])
    batched = world.branch(k)
    singles = [world.branch(1) for _ in range(k)]
    batched.step(controls)
    for i, s in enumerate(singles):
        s.step(controls[i : i + 1])
    t0 = time.perf_counter()
    for _ in range(n):
        batched.step(controls)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(n):
        for i, s in enumerate(singles):
            s.step(controls[i : i + 1])
    t_seq = time.perf_counter() - t0
    same = all(batched.state.select(torch.tensor([i])).equal(s.state) for i, s in enumerate(singles))
    print(
        f"  W={k} branches x {n} steps: batched {t_batched:6.2f} s   sequential {t_seq:6.2f} s   "
        f"speed-up x{t_seq / t_batched:5.1f}   ({k * n / t_batched:7.1f} world-steps/s batched; "
        f"bit-identical states: {same})"
    )
    from carla_bridge.autopilot import Autopilot
    from carla_bridge.lite.branching import run_plans

    plans = Autopilot().plan(world).expand(k, 6, 3).clone()
    plans[..., 1] += torch.linspace(-3.0, 3.0, k)[:, None] * torch.linspace(0.0, 1.0, 6)
    run_plans(world, plans[:2], 2)  # warm-up
    t0 = time.perf_counter()
    out = run_plans(world, plans, 60, max_worlds=k)
    t_plans = time.perf_counter() - t0
    print(
        f"  run_plans: {k} plans x 3 s (60 steps): {t_plans:6.2f} s   {k / t_plans * 3600:9.0f} plans/hour "
        f"({len(out.events)} events)"
    )
    print(f"  load average: {open('/proc/loadavg').read().split()[:3]}")


def _scenarios_side_by_side(town, cfg, steps: int) -> None:
    """The same route and ego with and without four running scenarios (ego held still inside them)."""
    import numpy as np

    from carla_bridge.lite.random_route import random_route
    from carla_bridge.lite.world import LiteWorld
    from carla_bridge.routes import ScenarioConfig

    lane = max((ln for ln in town.lanes if not ln.is_junction), key=lambda ln: ln.length if ln.length < 400 else 0.0).id
    plan = random_route(town, 0, 400.0, start_lane=lane, start_s=2.0)

    def at(s: float, typ: str, **params) -> ScenarioConfig:
        i = int(np.searchsorted(plan.s, s))
        p = {k: v if isinstance(v, dict) else {"value": str(v)} for k, v in params.items()}
        return ScenarioConfig(f"{typ}_1", typ, np.array([*plan.polyline[i], 0.0]), float(plan.yaw[i]), p)

    configs = [
        at(8.0, "AccidentTwoWays", distance=70, frequency={"from": "12", "to": "18"}),
        at(9.0, "DynamicObjectCrossing", distance=40),
        at(10.0, "HardBreakRoute"),
        at(11.0, "ControlLoss"),
    ]
    held = torch.tensor([[0.0, 0.0, 1.0]])
    rates = {}
    for label, scen in (("without scenarios", ()), ("with 4 scenarios", configs)):
        w = LiteWorld(town, cfg)
        w.reset(plan, seed=0, scenarios=scen)
        i = int(np.searchsorted(plan.s, 40.0))
        w.set_ego(float(plan.polyline[i][0]), float(plan.polyline[i][1]), float(plan.yaw[i]))
        for _ in range(200):  # the flow and the pedestrian start, the lead vehicle appears
            w.step(held)
        live = len(w.scenario_actors())
        rates[label] = _steps_per_second(w, steps, held)
        running = sum(v.phase == "running" for v in w.scenario_views())
        extra = f" ({running} running, {live} scenario actors)" if scen else ""
        print(f"  {label:18s}: {rates[label][0]:7.1f} steps/s wall   {rates[label][1]:7.1f} per CPU-second{extra}")
    with_cpu, without_cpu = rates["with 4 scenarios"][1], rates["without scenarios"][1]
    verdict = "met" if with_cpu >= 400 else "NOT met"
    print(f"  scenarios cost: x{without_cpu / with_cpu:4.2f} CPU time per step (budget >= 400 steps/s {verdict})")


if __name__ == "__main__":
    main()
