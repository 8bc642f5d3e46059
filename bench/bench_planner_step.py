"""Benchmark: one planner step (encode + proposals + rollout + score + select) with the
constant-velocity world model on CPU, N = 16 and N = 128 plans.

Scene: the ego at 8 m/s on a gently curving route (1 m spacing, 150 m), 24 vehicles and 8
pedestrians around it (cv-gt: ground-truth agents through `encode_privileged`), a red light 40 m
ahead. N = 16: the stop + 3 lateral offsets × 4 speed fractions + the previous plan and 2
perturbations; N = 128: the stop + 8 offsets × 15 speed fractions + the previous plan and 6
perturbations. Each stage is timed separately; the step total is the median over repeats.

Stage times are process CPU times (robust to other jobs on shared cores); the whole `plan()` call is
also given as wall time.

Run: `python bench/bench_planner_step.py [--repeats 20] [--threads 2]`.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import statistics
import time

import torch

from agents import AgentClass, AgentStates
from planner import LightState, Observation, PrivilegedState
from planner.plan import PlannerConfig, plan
from planner.proposals import ProposalConfig, generate_proposals, previous_plan_proposals
from planner.scorer import score_plans
from planner.selection import select_plan
from planner.world_models import ConstantVelocityWorldModel


def _scene(seed: int = 0) -> tuple[Observation, PrivilegedState]:
    g = torch.Generator().manual_seed(seed)
    s = torch.arange(-20.0, 131.0)
    kappa = 0.01
    route = torch.stack([torch.sin(s * kappa) / kappa, (1 - torch.cos(s * kappa)) / kappa], -1)[None]
    obs = Observation(
        images=torch.zeros(1, 6, 3, 8, 16, dtype=torch.uint8),
        intrinsics=torch.eye(3).expand(1, 6, 3, 3).clone(),
        cam_to_ego=torch.eye(4).expand(1, 6, 4, 4).clone(),
        ego_history=torch.zeros(1, 5, 3),
        speed=torch.tensor([8.0]),
        ego_pose=torch.zeros(1, 3),
        route=route,
        route_valid=torch.ones(1, route.shape[1], dtype=torch.bool),
        timestamp=torch.tensor([10.0]),
    ).validate()
    # 24 vehicles in the neighbouring lanes (both directions) and ahead in the ego lane, 8 pedestrians
    # on the sidewalks; all clear of the ego now, their constant-velocity futures crossing some plans
    a_veh, a_ped = 24, 8
    lane = torch.tensor([-3.5, 3.5, 7.0, 0.0])[torch.randint(0, 4, (a_veh,), generator=g)]
    x = torch.rand(a_veh, generator=g) * 100.0 - 10.0
    x = torch.where((lane == 0.0) | (x.abs() < 8.0), x.abs() + 25.0, x)
    forward = (lane <= 3.5) & (torch.rand(a_veh, generator=g) < 0.7)
    yaw_v = torch.where(forward, 0.0, math.pi)
    px = torch.rand(a_ped, generator=g) * 60.0
    py = torch.where(torch.rand(a_ped, generator=g) < 0.5, -10.0, 10.0)
    xy_v = torch.stack([x, lane], -1)
    # bend everything onto the curved route (s, d) -> world
    xy_v = torch.stack(
        [
            torch.sin(xy_v[:, 0] * kappa) / kappa - xy_v[:, 1] * torch.sin(xy_v[:, 0] * kappa),
            (1 - torch.cos(xy_v[:, 0] * kappa)) / kappa + xy_v[:, 1] * torch.cos(xy_v[:, 0] * kappa),
        ],
        -1,
    )
    xy = torch.cat([xy_v, torch.stack([px, py], -1)])
    yaw = torch.cat([yaw_v + x * kappa, torch.where(py < 0, math.pi / 2, -math.pi / 2)])
    speed = torch.cat([torch.rand(a_veh, generator=g) * 10.0, torch.rand(a_ped, generator=g) * 1.5])
    size = torch.tensor([[4.5, 1.9, 1.5]] * a_veh + [[0.6, 0.6, 1.7]] * a_ped)
    cls = torch.tensor([int(AgentClass.CAR)] * a_veh + [int(AgentClass.PEDESTRIAN)] * a_ped)
    agents = AgentStates.create(xy=xy[None], yaw=yaw[None], speed=speed[None], size=size[None], cls=cls[None])
    priv = PrivilegedState(agents, torch.tensor([int(LightState.RED)]), torch.tensor([40.0])).validate()
    return obs, priv


def _config(n: int) -> PlannerConfig:
    if n == 16:
        p = ProposalConfig(lateral_offsets=(-1.0, 0.0, 1.0), speed_fractions=(0.25, 0.5, 0.75, 1.0), num_previous=2)
    elif n == 128:
        offsets = tuple(-1.75 + 0.5 * i for i in range(8))
        fractions = tuple(round(0.1 + 0.0643 * i, 4) for i in range(15))
        p = ProposalConfig(lateral_offsets=offsets, speed_fractions=fractions, num_previous=6)
    else:
        raise ValueError(f"N must be 16 or 128, got {n}")
    return PlannerConfig(proposals=p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("planner.selection").setLevel(logging.ERROR)  # rejections are expected in this busy scene
    cpu = platform.processor() or platform.machine()
    print(
        f"# bench_planner_step: cv-gt, torch {torch.__version__}, {args.threads} threads, {cpu}, "
        f"{os.cpu_count()} cpus, load avg {os.getloadavg()[0]:.1f}"
    )
    print("CPU ms per stage (process time, median); plan() also as wall time")
    print(
        "| N | encode | proposals | rollout | score | select | step | plan() CPU | plan() wall | plans passing gates |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    obs, priv = _scene()
    wm = ConstantVelocityWorldModel("cv-gt")
    for n in (16, 128):
        cfg = _config(n)
        prev = plan(wm, obs, cfg=cfg, privileged=priv)
        later_obs = Observation(
            **{**obs.__dict__, "timestamp": obs.timestamp + 0.5, "ego_pose": torch.tensor([[4.0, 0.0, 0.0]])}
        )
        stages: dict[str, list[float]] = {
            k: [] for k in ("encode", "proposals", "rollout", "score", "select", "step", "plan")
        }
        wall_plan: list[float] = []
        for _ in range(args.repeats + 1):
            t0 = time.process_time()
            scene = wm.encode_privileged(later_obs, priv, prev.scene)
            t1 = time.process_time()
            previous = previous_plan_proposals(
                prev.selection.plan, torch.tensor([[-4.0, 0.0, 0.0]]), 0.5, cfg.proposals
            )
            props = generate_proposals(scene.route, scene.route_valid, scene.speed, cfg.proposals, previous=previous)
            t2 = time.process_time()
            pred = wm.rollout(scene, props.plans)
            t3 = time.process_time()
            scores = score_plans(props, pred, scene.route, scene.route_valid, cfg.scorer)
            t4 = time.process_time()
            select_plan(props, scores, cfg.selection)
            t5 = time.process_time()
            w0 = time.perf_counter()
            plan(wm, later_obs, prev=prev, cfg=cfg, privileged=priv)
            wall_plan.append((time.perf_counter() - w0) * 1e3)
            t6 = time.process_time()
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0, t6 - t5)):
                stages[k].append(v * 1e3)
        assert props.num_plans == n, props.num_plans
        passing = int(scores.passes.sum())
        med = {k: statistics.median(v[1:]) for k, v in stages.items()}
        print(
            f"| {n} | {med['encode']:.1f} | {med['proposals']:.1f} | {med['rollout']:.1f} | {med['score']:.1f} | "
            f"{med['select']:.1f} | {med['step']:.1f} | {med['plan']:.1f} | {statistics.median(wall_plan[1:]):.1f} | "
            f"{passing} |"
        )


if __name__ == "__main__":
    main()
