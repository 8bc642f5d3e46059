"""Benchmark: vectorized box overlap (`agents.boxes.boxes_overlap`) vs shapely 2's vectorized predicates.

Both sides answer the same 128 × 256 all-pairs question on the same boxes; the answers are asserted
equal before any timing is trusted. `boxes_overlap` on the CPU runs the compiled kernel
(`agents.box_kernel`, numba: axis-aligned-bounds broad phase, then the exact separating-axis test on
the surviving pairs only); the pure-torch exact test on every pair (`_overlap_all_pairs`, the path GPU
tensors take and the fallback without numba) is timed too, as "torch". The first call's cost (numba
loading the cached machine code, or compiling it after a fresh clone) is printed apart and not in the
medians. The shapely reference is its own vectorized `shapely.intersects`
on arrays of polygons (built once, outside the timed region), plain and with `shapely.prepare` on the
first operand (its fastest mode). Two layouts: "dense" (boxes of all headings packed into 20 m ×
20 m, a few % of pairs overlap) and "scene" (128 ego boxes along candidate plans vs 256 agents in an
80 m × 80 m scene, like the planner's collision check; shapely's envelope test rejects most pairs).

Run: `python bench/bench_box_overlap.py [--repeats 30] [--threads 1]`. Prints median wall-clock and
process-CPU times and their ratios (on a busy machine trust the CPU-time rows with `--threads 1`), and
whether the budget (≥ 50× `shapely.intersects` on arrays, DESIGN.md §8) is met on both layouts.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import shapely
import torch

from agents.boxes import _overlap_all_pairs, box_corners, boxes_overlap, ego_boxes


def _median_ms(fn, repeats: int) -> tuple[float, float]:
    """Median (wall, process-CPU) time of `fn` [ms]. CPU time is robust to other processes on a busy
    machine (with one torch thread and single-threaded shapely both measure the same work)."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return 1e3 * float(np.median(wall)), 1e3 * float(np.median(cpu))


def _dense(rng: np.random.Generator, n: int) -> torch.Tensor:
    return torch.tensor(
        np.c_[
            rng.uniform(-10, 10, (n, 2)),
            rng.uniform(-math.pi, math.pi, n),
            rng.uniform(0.5, 5.0, n),
            rng.uniform(0.5, 2.5, n),
        ],
        dtype=torch.float32,
    )


def _scene(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # 128 ego poses: 16 plans (lateral offsets × curvatures) × 8 steps ahead, in the ego frame
    s = np.linspace(2.0, 30.0, 8)
    kappa = np.linspace(-0.02, 0.02, 16)[:, None]  # [1/m], 16 values, none zero
    yaw = kappa * s[None, :]
    x, y = np.sin(yaw) / kappa, (1.0 - np.cos(yaw)) / kappa  # arcs of length s
    poses = torch.tensor(np.stack([x, y, yaw], -1).reshape(-1, 3), dtype=torch.float32)
    ego = ego_boxes(poses)
    agents = torch.tensor(
        np.c_[
            rng.uniform(-40, 40, (256, 2)),
            rng.uniform(-math.pi, math.pi, 256),
            rng.choice([0.8, 4.5, 10.0], 256),
            rng.choice([0.8, 1.9, 2.6], 256),
        ],
        dtype=torch.float32,
    )
    return ego, agents


BUDGET = 50.0  # × faster than shapely.intersects on arrays


def first_call_seconds() -> float:
    """Wall time of this process's first `boxes_overlap` call: importing numba and loading the cached
    kernel (or compiling it, after a fresh clone)."""
    t0 = time.perf_counter()
    boxes_overlap(torch.zeros(1, 5), torch.zeros(1, 5))
    return time.perf_counter() - t0


def run(repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    layouts = {"dense": (_dense(rng, 128), _dense(rng, 256)), "scene": _scene(rng)}
    rows = []
    for name, (a, b) in layouts.items():
        assert a.shape == (128, 5) and b.shape == (256, 5)
        pa = shapely.polygons(box_corners(a.double()).numpy())  # same float32 boxes, exact corners
        pb = shapely.polygons(box_corners(b.double()).numpy())
        pa_prep = shapely.polygons(box_corners(a.double()).numpy())  # distinct objects: prepare() is in place
        shapely.prepare(pa_prep)
        ours = boxes_overlap(a, b).numpy()
        ref = shapely.intersects(pa[:, None], pb[None, :])
        np.testing.assert_array_equal(ours, ref)  # same answers on all 32768 pairs
        np.testing.assert_array_equal(_overlap_all_pairs(a, b).numpy(), ref)
        np.testing.assert_array_equal(shapely.intersects(pa_prep[:, None], pb[None, :]), ref)
        t_ours = _median_ms(lambda a=a, b=b: boxes_overlap(a, b), repeats * 3)
        t_all = _median_ms(lambda a=a, b=b: _overlap_all_pairs(a, b), repeats * 3)
        t_plain = _median_ms(lambda pa=pa, pb=pb: shapely.intersects(pa[:, None], pb[None, :]), repeats)
        t_prep = _median_ms(lambda pa=pa_prep, pb=pb: shapely.intersects(pa[:, None], pb[None, :]), repeats)
        for clock, i in (("wall", 0), ("cpu", 1)):
            rows.append(
                {
                    "layout": name,
                    "clock": clock,
                    "overlap_fraction": float(ref.mean()),
                    "ours_ms": t_ours[i],
                    "all_pairs_ms": t_all[i],
                    "ratio_all_pairs": t_plain[i] / t_all[i],
                    "shapely_ms": t_plain[i],
                    "shapely_prepared_ms": t_prep[i],
                    "ratio": t_plain[i] / t_ours[i],
                    "ratio_prepared": t_prep[i] / t_ours[i],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    first = first_call_seconds()
    print(
        f"box overlap, 128 x 256 boxes (32768 pairs), float32 torch {torch.__version__} "
        f"({torch.get_num_threads()} threads) vs shapely {shapely.__version__} (GEOS {shapely.geos_version_string}), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"first call (numba import + kernel load or compile): {first:.2f} s, not in the medians below")
    head = (
        "layout",
        "clock",
        "overlap",
        "ours ms",
        "shapely ms",
        "ratio",
        "prepared ms",
        "ratio",
        "torch ms",
        "ratio",
    )
    print("{:8s} {:5s} {:>8s} {:>9s} {:>11s} {:>7s} {:>12s} {:>7s} {:>13s} {:>7s}".format(*head))
    rows = run(args.repeats)
    for r in rows:
        print(
            f"{r['layout']:8s} {r['clock']:5s} {r['overlap_fraction']:8.3f} {r['ours_ms']:9.3f} "
            f"{r['shapely_ms']:11.3f} {r['ratio']:6.1f}x {r['shapely_prepared_ms']:12.3f} {r['ratio_prepared']:6.1f}x "
            f"{r['all_pairs_ms']:13.3f} {r['ratio_all_pairs']:6.1f}x"
        )
    for clock in ("wall", "cpu"):
        worst = min(rows, key=lambda r: r["ratio"] if r["clock"] == clock else math.inf)
        met = "met" if worst["ratio"] >= BUDGET else "NOT met"
        print(f"{clock}: slowest layout {worst['layout']} at {worst['ratio']:.1f}x: budget {BUDGET:.0f}x {met}")


if __name__ == "__main__":
    main()
