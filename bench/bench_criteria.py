"""What judging the closed-loop criteria costs inside a lite-simulator step: the physics step
(`step.advance`) and the criteria (`criteria.judge`) timed side by side, per step, in one run, for one
world and for W batched worlds, while the egos follow their route (the blind autopilot, so every
criterion keeps running; 50 vehicles + 30 pedestrians).

Run: `python bench/bench_criteria.py [--town Town01] [--steps 600] [--worlds 32] [--rules leaderboard-2.0]`.
"""

from __future__ import annotations

import argparse
import time

import torch


def measure(world, steps: int) -> tuple[float, float, int]:
    """Mean ms per step of advance and of judge over `steps` steps (the egos driven blind along the route)."""
    from carla_bridge.autopilot import Autopilot, AutopilotParams
    from carla_bridge.lite import criteria
    from carla_bridge.lite.step import advance

    pilot = Autopilot(AutopilotParams(blind=True))
    t_step = t_judge = 0.0
    done = 0
    for _ in range(steps):
        controls = pilot.controls(world).double()
        st = world.state
        t0 = time.perf_counter()
        new, info = advance(st, controls, world.md, world.cfg)
        t1 = time.perf_counter()
        world.state, _ = criteria.judge(st, new, info, world.route, world.cfg, world.town)
        t2 = time.perf_counter()
        t_step += t1 - t0
        t_judge += t2 - t1
        done = int(world.state.route.done.sum())
    return 1000.0 * t_step / steps, 1000.0 * t_judge / steps, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--town", default="Town01")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--worlds", type=int, default=32)
    ap.add_argument("--rules", default="leaderboard-2.0")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from carla_bridge.lite.config import LiteConfig
    from carla_bridge.lite.random_route import random_route
    from carla_bridge.lite.world import LiteWorld
    from carla_bridge.maps import load_town
    from carla_bridge.rules import load_rules

    town = load_town(args.town)
    cfg = LiteConfig(num_vehicles=50, num_pedestrians=30, rules=load_rules(args.rules))
    base = LiteWorld(town, cfg)
    base.reset(random_route(town, 0, 600.0), seed=0)
    measure(base.branch(1), 20)  # warm-up (compiled kernels)
    print(
        f"town {args.town}, 50 vehicles + 30 pedestrians, rules {args.rules}, {args.steps} steps, egos on their route"
    )
    for w in (1, args.worlds):
        step_ms, judge_ms, done = measure(base.branch(w), args.steps)
        print(
            f"  W={w:3d}: step {step_ms:6.3f} ms   criteria {judge_ms:6.3f} ms   "
            f"criteria/step x{judge_ms / step_ms:4.2f}   per world {(step_ms + judge_ms) / w:6.3f} ms   "
            f"routes ended {done}/{w}"
        )
    print(f"  load average: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
