"""Closed-loop cost per agent, side by side in one run: wall time per simulated second and the
planner's step latency inside the loop (lite backend, one devtest route segment, one seed).

    python bench/bench_closed_loop.py [--ckpt CKPT] [--length 80] [--agents autopilot,cv-gt,empty,drivewm]

`drivewm` without `--ckpt` runs the tiny model with untrained weights (its latency is the deployed
path's; its driving is meaningless and labelled so). `oracle` is opt-in (it steps one simulator
branch per candidate plan at every replan).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from carla_bridge.closed_loop.backend_spec import BackendSpec
from carla_bridge.closed_loop.runner import RunLimits, run_route
from carla_bridge.routes import parse_routes


def build(name: str, ckpt: str | None, camera: tuple[int, int]):
    from drivewm.factory import build_agent

    if name == "drivewm" and ckpt is None:
        from drivewm.driving_agent import DrivingAgent, DrivingAgentConfig
        from drivewm.model import DriveWorldModel, ModelConfig

        model = DriveWorldModel(ModelConfig()).eval()
        return DrivingAgent(model, name="drivewm", config=DrivingAgentConfig(camera_size=camera)), "untrained tiny"
    return build_agent(name, ckpt, camera_size=camera), ("ckpt" if ckpt else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", default="autopilot,cv-gt,empty,drivewm")
    p.add_argument("--ckpt", default=None)
    p.add_argument("--route", default="0")
    p.add_argument("--length", type=float, default=80.0, help="route segment [m]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-sim-seconds", type=float, default=25.0, help="simulated-time cap per agent [s]")
    p.add_argument("--camera", default="400x225")
    p.add_argument("--vehicles", type=int, default=30)
    p.add_argument("--pedestrians", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    w, h = (int(v) for v in args.camera.split("x"))
    route = next(r for r in parse_routes("routes_devtest") if r.id == args.route)
    limits = RunLimits(
        max_route_length=args.length, replan_hz=2.0, camera_size=(w, h), max_sim_seconds=args.max_sim_seconds
    )
    rows = []
    for name in args.agents.split(","):
        agent, note = build(name, args.ckpt, (w, h))
        backend = BackendSpec(
            num_vehicles=args.vehicles,
            num_pedestrians=args.pedestrians,
            camera_size=(w, h),
            render=bool(getattr(agent, "needs_images", False)),
        )
        t0, c0 = time.perf_counter(), time.process_time()
        rec = run_route(backend, agent, route, args.seed, limits)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        lat = (rec.get("planner") or {}).get("latency_ms") or {}
        rows.append(
            (
                name + (f" ({note})" if note else ""),
                rec["status"],
                rec["route_completion"],
                rec["driving_score"],
                rec["sim_seconds"],
                wall,
                rec["timing"]["wall_per_sim_second"],
                rec["timing"]["agent_step_ms"]["mean"],
                rec["timing"]["sim_step_ms_mean"],
                lat.get("p50"),
                lat.get("p90"),
                (rec.get("planner") or {}).get("replans"),
                cpu / rec["sim_seconds"] if rec["sim_seconds"] else None,
            )
        )
        print(f"{name}: {rec['status']} in {wall:.1f} s", flush=True)
    print(
        f"\nroute {args.route} first {args.length:g} m (at most {args.max_sim_seconds:g} s simulated), "
        f"seed {args.seed}, {args.vehicles} vehicles, "
        f"{args.pedestrians} pedestrians, cameras {w}x{h} (rendered at 2 Hz for camera agents), "
        f"torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} "
        "(CPU s / sim s = this process's CPU time, less sensitive to a shared machine than wall time)"
    )
    head = (
        "| agent | status | RC % | DS | sim s | wall s | wall s / sim s | agent step mean ms | sim step mean ms "
        "| replan p50 ms | replan p90 ms | replans | CPU s / sim s |"
    )
    print(head)
    print("|" + "---|" * 13)
    for r in rows:
        cells = [
            r[0],
            r[1],
            f"{r[2]:.1f}",
            f"{r[3]:.1f}",
            f"{r[4]:.1f}",
            f"{r[5]:.1f}",
            "-" if r[6] is None else f"{r[6]:.2f}",
            "-" if r[7] is None else f"{r[7]:.1f}",
            "-" if r[8] is None else f"{r[8]:.1f}",
            "-" if r[9] is None else f"{r[9]:.0f}",
            "-" if r[10] is None else f"{r[10]:.0f}",
            "-" if r[11] is None else str(r[11]),
            "-" if r[12] is None else f"{r[12]:.2f}",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
