"""Lite-simulator speed: steps/s with 50 vehicles + 30 pedestrians and no cameras (budget ≥ 400,
DESIGN.md §8), and W = 32 branched worlds in one vectorized step vs 32 single worlds stepped one
after another (the counterfactual-branch use case).

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
    same = all(torch.allclose(singles[i].state["ego"][0], batched.state["ego"][i], atol=1e-4) for i in range(k))
    print(
        f"  W={k} branches x {n} steps: batched {t_batched:6.2f} s   sequential {t_seq:6.2f} s   "
        f"speed-up x{t_seq / t_batched:5.1f}   ({k * n / t_batched:7.1f} world-steps/s batched; identical ego: {same})"
    )


if __name__ == "__main__":
    main()
