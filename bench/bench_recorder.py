"""Recorder benchmark: wall time per recorded keyframe (cameras + lidar + Occ3D labels + files) at
400×225 and 1600×900, branch cost, dataset size per scene, and the branch signal figure (share of
branch pairs in which some other agent's future differs by > 0.5 m).

    python bench/bench_recorder.py [--out /tmp/bench_recorder] [--quick]

Prints a markdown table (the figures for bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def run(
    out: Path, resolution: tuple[int, int], seconds: float, branches: int, scenes: int, towns: tuple[str, ...]
) -> dict:
    """Generate one dataset, timing keyframes and branch points separately."""
    from carla_bridge.recorder import scene as scene_mod
    from carla_bridge.recorder.branches import pair_divergence
    from carla_bridge.recorder.config import GeneratorConfig
    from carla_bridge.recorder.dataset import generate

    timings: dict[str, list[float]] = {"keyframe": [], "branch": []}
    orig_kf, orig_br = scene_mod.record_keyframe, scene_mod.record_branch_point

    def timed(name, fn):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            r = fn(*a, **kw)
            timings[name].append(time.perf_counter() - t0)
            return r

        return wrapper

    scene_mod.record_keyframe = timed("keyframe", orig_kf)
    scene_mod.record_branch_point = timed("branch", orig_br)
    try:
        shutil.rmtree(out, ignore_errors=True)
        cfg = GeneratorConfig(
            version="v1.0-sim-bench", towns=towns, scenes=scenes, scene_seconds=seconds, branches=branches,
            resolution=resolution, seed=0,
        )  # fmt: skip
        t0 = time.perf_counter()
        generate(out, cfg, workers=1, progress=False)
        total = time.perf_counter() - t0
    finally:
        scene_mod.record_keyframe, scene_mod.record_branch_point = orig_kf, orig_br
    pairs = differ = 0
    for path in (out / "drivewm" / cfg.version / "branches").glob("*.npz"):
        with np.load(path) as z:
            p, d = pair_divergence(z["agent_pose"], z["agent_valid"])
            pairs, differ = pairs + p, differ + d
    maps_mb = _dir_mb(out / "maps")
    return {
        "resolution": f"{resolution[0]}x{resolution[1]}",
        "keyframes": len(timings["keyframe"]),
        "s_per_keyframe": float(np.mean(timings["keyframe"])),
        "s_per_branch_point": float(np.mean(timings["branch"])) if timings["branch"] else float("nan"),
        "branch_points": len(timings["branch"]),
        "total_s": total,
        "mb_per_scene": (_dir_mb(out) - maps_mb) / scenes,
        "maps_mb": maps_mb,
        "pairs": pairs,
        "differ": differ,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_recorder"))
    ap.add_argument("--quick", action="store_true", help="shorter scenes")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    secs = 4.0 if args.quick else 10.0
    rows = [
        run(args.out / "r400", (400, 225), secs, 4, 2, ("Town01", "Town02")),
        run(args.out / "r1600", (1600, 900), 1.0, 0, 1, ("Town01",)),
    ]
    print(
        "| cameras | keyframes | s / keyframe (render + lidar + labels + files) | s / branch point (K=4, 3 s) "
        "| MB / scene | branch pairs with an agent differing > 0.5 m |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        sig = f"{r['differ']}/{r['pairs']} ({100 * r['differ'] / r['pairs']:.0f} %)" if r["pairs"] else "–"
        print(
            f"| {r['resolution']} | {r['keyframes']} | {r['s_per_keyframe']:.2f} | {r['s_per_branch_point']:.2f} "
            f"| {r['mb_per_scene']:.1f} | {sig} |"
        )
    print(f"(maps: {rows[0]['maps_mb']:.1f} MB for two towns, once per dataset)")


if __name__ == "__main__":
    main()
