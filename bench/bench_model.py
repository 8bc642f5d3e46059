"""World-model benchmark: encode + rollout latency for N = 1, 16, 128 plans (and with plan
conditioning off), peak memory, training throughput, loader vs model time per step.

    python bench/bench_model.py [--config configs/tiny.yaml] [--threads 2] [--device cpu|cuda]
                                [--dataroot DIR --version V]   # loader timing on a real dataset

CPU figures use the tiny config on `--threads` intra-op threads (the planner budget: encode +
rollout N = 128 + score ≤ 300 ms on 2 cores). With `--device cuda` the same runs on the GPU
(base config: ≤ 50 ms). Prints one table; numbers go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivewm.model import DriveWorldModel, ModelConfig
from tests.drivewm.synthetic_batches import synthetic_batch


def load_config(path: str) -> ModelConfig:
    cfg = yaml.safe_load(Path(path).read_text())
    return ModelConfig(**cfg["model"]["config"])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str, repeats: int) -> tuple[float, float]:
    """Median (wall ms, process CPU ms). On a shared machine, single-threaded CPU time is about the
    wall time the same run takes on an idle core."""
    fn()
    _sync(device)
    times, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(times), statistics.median(cpu)


def _peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def plans_for(n: int, t: int, device: str) -> torch.Tensor:
    """A lattice-like plan set: speeds × lateral offsets, rear-axle (x, y, yaw) at 0.5 s steps."""
    steps = torch.arange(1, t + 1, dtype=torch.float32, device=device) * 0.5
    g = torch.Generator(device="cpu").manual_seed(0)
    speed = (torch.rand(n, 1, generator=g) * 12).to(device)
    lat = ((torch.rand(n, 1, generator=g) - 0.5) * 8).to(device)
    x = speed * steps
    y = lat * (steps / steps[-1]) ** 2
    yaw = torch.atan2(2 * lat * steps / steps[-1] ** 2, speed.clamp(min=0.5))
    return torch.stack([x, y, yaw], -1)[None]


def latency(cfg: ModelConfig, device: str, repeats: int) -> list[dict]:
    model = DriveWorldModel(cfg).to(device).eval()
    batch = synthetic_batch(cfg, batch_size=1, num_branches=0)
    obs = batch.features.observation().to(device)
    rows = []
    with torch.no_grad():
        scene = model.encode(obs)
        enc = _timed(lambda: model.encode(obs, scene), device, repeats)
        for n in (1, 16, 128):
            plans = plans_for(n, cfg.horizon, device)
            roll = _timed(lambda p=plans: model.rollout(scene, p), device, repeats)
            total = _timed(lambda p=plans: model.rollout(model.encode(obs, scene), p), device, repeats)
            off = _timed(lambda p=plans: model.rollout(scene, p, plan_conditioning=False), device, repeats)
            pred = model.rollout(scene, plans)
            out_mb = (
                sum(t.numel() * t.element_size() for t in (pred.obstacle_prob, pred.agent_trajs, pred.agent_mode_probs))
                / 2**20
            )
            rows.append(
                dict(
                    n=n, encode=enc, rollout=roll, total=total, rollout_off=off, out_mb=out_mb, peak_mb=_peak_mb(device)
                )
            )
    return rows


def training(cfg: ModelConfig, device: str, batch_size: int, steps: int) -> dict:
    model = DriveWorldModel(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = [synthetic_batch(cfg, batch_size=batch_size, num_branches=2, seed=i) for i in range(2)]
    from pytorch_lightning.utilities import move_data_to_device

    batches = [move_data_to_device(b, device) for b in batches]

    def step(b):
        loss = model.compute_loss(b)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(batches[0])
    _sync(device)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(steps):
        step(batches[i % 2])
    _sync(device)
    dt = (time.perf_counter() - t0) / steps
    cpu = (time.process_time() - c0) / steps
    return dict(step_ms=dt * 1000, samples_per_s=batch_size / dt, cpu_step_ms=cpu * 1000)


def loader_vs_model(cfg: ModelConfig, dataroot: str, version: str, batch_size: int, steps: int, workers: int) -> dict:
    from torch.utils.data import DataLoader

    from drivewm.data import DataConfig, NuScenesWorldDataset, collate

    ds = NuScenesWorldDataset(dataroot, version, "train", DataConfig.from_model(cfg, max_branches=4))
    t0 = time.perf_counter()
    built = ds.build_cache(progress=True)
    cache_s = time.perf_counter() - t0
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, collate_fn=collate)
    model = DriveWorldModel(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    wait, compute, n = 0.0, 0.0, 0
    t_load = time.perf_counter()
    for batch in loader:
        t_model = time.perf_counter()
        wait += t_model - t_load
        loss = model.compute_loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t_load = time.perf_counter()
        compute += t_load - t_model
        n += 1
        if n >= steps:
            break
    return dict(
        samples=len(ds),
        cache_built=built,
        cache_s=cache_s,
        cache_s_per_sample=cache_s / max(built, 1),
        loader_ms=wait / n * 1000,
        model_ms=compute / n * 1000,
        workers=workers,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/tiny.yaml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--dataroot", default=None)
    ap.add_argument("--version", default=None)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    gpu = args.device.startswith("cuda")
    where = f"{args.device} ({torch.cuda.get_device_name() if gpu else f'{args.threads} threads'})"
    print(f"# bench_model: {args.config} on {where}, torch {torch.__version__}")
    model = DriveWorldModel(cfg)
    print(f"parameters: {model.num_params() / 1e6:.2f} M; grid {cfg.grid.shape}; images {cfg.image_size}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; cells: wall ms / process CPU ms")
    print("| N plans | encode | rollout | encode+rollout | rollout, plan cond. off | outputs MB | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for r in latency(cfg, args.device, args.repeats):
        cells = " | ".join(f"{r[k][0]:.1f} / {r[k][1]:.1f}" for k in ("encode", "rollout", "total", "rollout_off"))
        print(f"| {r['n']} | {cells} | {r['out_mb']:.1f} | {r['peak_mb']:.0f} |")
    tr = training(cfg, args.device, args.batch_size, args.train_steps)
    print(
        f"training (synthetic batches, B={args.batch_size}, 1 logged plan + 2 branches): {tr['step_ms']:.0f} ms/step "
        f"wall ({tr['samples_per_s']:.2f} samples/s), {tr['cpu_step_ms']:.0f} ms/step process CPU"
    )
    if args.dataroot:
        lm = loader_vs_model(cfg, args.dataroot, args.version, args.batch_size, args.train_steps, args.workers)
        print(
            f"dataset {args.version}: {lm['samples']} train samples; cache built for {lm['cache_built']} in "
            f"{lm['cache_s']:.0f} s ({lm['cache_s_per_sample'] * 1000:.0f} ms/sample); per step: loader wait "
            f"{lm['loader_ms']:.0f} ms vs model {lm['model_ms']:.0f} ms ({lm['workers']} workers)"
        )


if __name__ == "__main__":
    main()
