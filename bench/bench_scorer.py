"""Benchmark: the vectorized plan scorer vs the shapely references, identical gates asserted.

Scenes come from `tests/planner/synthetic_scenes.py` `random_scenes` (hard on purpose: obstacle cells, agent modes and
non-drivable cells placed within ±0.3 m of the ego boxes of random plans; a red light ahead), with
8 agents × 3 modes, and the planner's own scene (the cv-gt replan step of `bench_planner_step.py`). For
N = 16 and N = 128 plans per scene the three implementations score the same scenes one at a time
(B = 1, as in closed loop):
- vectorized: `planner.scorer.score_plans` (torch, one pass over all N plans);
- plain reference: `tests/planner/reference_scorer.py` `reference_gates` (shapely polygons, per plan, per step);
- vectorized shapely: `reference_gates_vectorized` (shapely 2 array predicates per scene).
Their gate matrices are asserted equal before any timing is trusted. Then an equivalence sweep over
`--sweep` scenes × 4 plans reports the mismatch count, the share of plans failing a gate and the share
of placements that are near misses (0 < gap ≤ 0.2 m).

Times are process CPU times (medians), robust to other jobs on the shared cores; use `--threads 1` for
a like-for-like comparison with single-threaded shapely.

Run: `python bench/bench_scorer.py [--scenes 5] [--sweep 3000] [--threads 1]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from planner.scorer import Gate, score_plans

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: the test-only scene builders

from tests.planner.reference_scorer import reference_gates, reference_gates_vectorized
from tests.planner.synthetic_scenes import random_scenes


def _time(fn, repeats: int, warmup: bool = True) -> tuple[float, object]:
    """Median process CPU time [s] of `repeats` calls (after one warm-up call if `warmup`) and the last
    output. CPU time, not wall time: the 2 shared cores are usually oversubscribed, and waiting for a
    core would otherwise count against whichever side happened to run during a busy moment."""
    out = fn() if warmup else None
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return statistics.median(times), out


def _one(sc, i: int):
    from dataclasses import replace

    p = sc.proposals
    pr = sc.prediction
    props = replace(
        p,
        plans=p.plans[i : i + 1],
        dense=p.dense[i : i + 1],
        speed0=p.speed0[i : i + 1],
        source=p.source[i : i + 1],
        feasible=p.feasible[i : i + 1],
    )
    pred = replace(
        pr,
        obstacle_prob=pr.obstacle_prob[i : i + 1],
        drivable_prob=pr.drivable_prob[i : i + 1],
        light_probs=pr.light_probs[i : i + 1],
        light_distance=pr.light_distance[i : i + 1],
        agent_trajs=pr.agent_trajs[i : i + 1],
        agent_mode_probs=pr.agent_mode_probs[i : i + 1],
        agent_valid=pr.agent_valid[i : i + 1],
        agent_size=pr.agent_size[i : i + 1],
        agent_cls=pr.agent_cls[i : i + 1],
    )
    return props, pred, sc.route[i : i + 1], sc.route_valid[i : i + 1]


def _planner_scene_row(n: int, repeats: int) -> None:
    """The planner's own use: the cv-gt scene of `bench_planner_step.py` (32 agents, a red light, the
    route lattice + previous-plan proposals), scored as one replan step."""
    from bench_planner_step import _config, _scene

    from planner.proposals import generate_proposals, previous_plan_proposals
    from planner.world_models import ConstantVelocityWorldModel

    obs, priv = _scene()
    cfg = _config(n)
    wm = ConstantVelocityWorldModel("cv-gt")
    scene = wm.encode_privileged(obs, priv)
    t = torch.arange(1, 7) * 0.5
    prev_plan = torch.stack([8.0 * t, torch.zeros_like(t), torch.zeros_like(t)], -1)[None]
    previous = previous_plan_proposals(prev_plan, torch.tensor([[-4.0, 0.0, 0.0]]), 0.5, cfg.proposals)
    props = generate_proposals(scene.route, scene.route_valid, scene.speed, cfg.proposals, previous=previous)
    pred = wm.rollout(scene, props.plans)
    args = (props, pred, scene.route, scene.route_valid)
    tv, res = _time(lambda: score_plans(*args), repeats)
    tr, ref = _time(lambda: reference_gates(*args), 1, warmup=False)
    tvr, vref = _time(lambda: reference_gates_vectorized(*args), 1, warmup=False)
    gates = res.gates.numpy() > 0.5
    assert (gates == ref).all() and (gates == vref).all(), f"gate mismatch in the planner scene at N={n}"
    v, r, vr = tv * 1e3, tr * 1e3, tvr * 1e3
    print(f"| planner (cv-gt) | {n} | 1 | {v:.1f} | {r:.0f} | {vr:.0f} | {r / v:.0f}× | {vr / v:.1f}× |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=int, default=5, help="scenes per N for the timing")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats of the vectorized scorer per scene")
    ap.add_argument("--sweep", type=int, default=3000, help="scenes of the equivalence sweep (0 = skip)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cpu = platform.processor() or platform.machine()
    print(
        f"# bench_scorer: torch {torch.__version__}, {args.threads} threads, {cpu}, "
        f"{os.cpu_count()} cpus, load avg {os.getloadavg()[0]:.1f}"
    )
    print("| scenes | N | count | vectorized | plain shapely | shapely arrays | plain / vec | arrays / vec |")
    print("|---|---|---|---|---|---|---|---|")  # CPU ms per scene (median)
    for n in (16, 128):
        _planner_scene_row(n, args.repeats)
    for n in (16, 128):
        sc = random_scenes(args.scenes, num_plans=n, num_agents=8, num_modes=3, seed=100 + n)
        t_vec, t_ref, t_vref = [], [], []
        for i in range(args.scenes):
            props, pred, route, valid = _one(sc, i)
            tv, res = _time(lambda: score_plans(props, pred, route, valid), args.repeats)  # noqa: B023
            tr, ref = _time(lambda: reference_gates(props, pred, route, valid), 1, warmup=False)  # noqa: B023
            tvr, vref = _time(lambda: reference_gates_vectorized(props, pred, route, valid), 1, warmup=False)  # noqa: B023
            gates = res.gates.numpy() > 0.5
            assert (gates == ref).all() and (gates == vref).all(), f"gate mismatch at N={n}, scene {i}"
            t_vec.append(tv)
            t_ref.append(tr)
            t_vref.append(tvr)
        v, r, vr = (statistics.median(x) * 1e3 for x in (t_vec, t_ref, t_vref))
        print(f"| hard synthetic | {n} | {args.scenes} | {v:.1f} | {r:.0f} | {vr:.0f} | {r / v:.0f}× | {vr / v:.1f}× |")
    if args.sweep:
        t0 = time.perf_counter()
        chunk, mismatches, gates_ref, gaps = 500, 0, [], []
        for k, first in enumerate(range(0, args.sweep, chunk)):
            sc = random_scenes(min(chunk, args.sweep - first), num_plans=4, seed=7 + k, per_plan_obstacles=k % 2 == 1)
            gates = score_plans(sc.proposals, sc.prediction, sc.route, sc.route_valid).gates.numpy() > 0.5
            ref = reference_gates_vectorized(sc.proposals, sc.prediction, sc.route, sc.route_valid)
            mismatches += int((gates != ref).sum())
            gates_ref.append(ref)
            gaps.append(sc.gaps)
        ref, gap = np.concatenate(gates_ref), np.concatenate(gaps)
        fail = 1.0 - ref.all(1).mean()
        near = ((gap > 0) & (gap <= 0.2)).mean()
        per_gate = ", ".join(f"{g.name} {1 - ref[:, g].mean():.0%}" for g in Gate)
        print(
            f"\nequivalence sweep: {args.sweep} scenes × 4 plans vs the shapely-array reference, gate mismatches "
            f"{mismatches}, plans failing a gate {fail:.0%} ({per_gate}), near-miss placements {near:.0%} "
            f"(overlapping {(gap == 0).mean():.0%}), {time.perf_counter() - t0:.0f} s"
        )
        assert mismatches == 0


if __name__ == "__main__":
    main()
