"""`drivewm eval <what>`: evaluations, one sub-subcommand each.

    drivewm eval open-loop --ckpt C --dataroot DIR --version V [--split val] --out DIR
    drivewm eval closed-loop ...   (drivewm.commands.eval_closed_loop)
    drivewm eval relevance ...     (drivewm.commands.eval_relevance)

Each sub-subcommand lives in a module exposing `add_<name>_parser(eval_subparsers)`; register new
ones in `EVAL_COMMANDS`. Every evaluation writes results.json (config, git commit, package
versions), report.md and report.html.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

# sub-subcommand -> "module:function" registering it under `drivewm eval`
EVAL_COMMANDS: dict[str, str] = {
    "open-loop": "drivewm.commands.evaluate:add_open_loop_parser",
    "closed-loop": "drivewm.commands.eval_closed_loop:add_closed_loop_parser",
    "relevance": "drivewm.commands.eval_relevance:add_relevance_parser",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate world models and agents (open-loop, closed-loop, ...)")
    evsub = p.add_subparsers(dest="eval_command", required=True)
    for target in EVAL_COMMANDS.values():
        module, func = target.split(":")
        getattr(importlib.import_module(module), func)(evsub)


def add_open_loop_parser(evsub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    q = evsub.add_parser(
        "open-loop",
        help="open-loop report of a trained world model on a dataset split",
        description="Planning L2/collisions (both conventions), occupancy IoU/mIoU per horizon, agent "
        "minADE/minFDE/MR, baselines and plan sensitivity on counterfactual branches.",
    )
    q.add_argument("--ckpt", required=True, help="checkpoint written by `drivewm fit`")
    q.add_argument("--dataroot", required=True, help="dataset root (nuScenes layout)")
    q.add_argument("--version", required=True, help="table folder, e.g. v1.0-sim-mini or v1.0-trainval")
    q.add_argument("--split", default="val", help="split name (default val)")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--batch-size", type=int, default=4)
    q.add_argument("--max-samples", type=int, default=0, help="evaluate only the first n samples (0 = all)")
    q.add_argument("--max-branches", type=int, default=4, help="counterfactual branches per sample")
    q.add_argument("--model-grid", action="store_true", help="score occupancy on the model grid, not the label grid")
    q.add_argument("--figures", type=int, default=2, help="samples drawn in the report")
    q.add_argument("--cache-dir", default=None, help="feature cache root (default DIR/drivewm/<version>/cache)")
    q.add_argument("--device", default="cpu")
    q.set_defaults(func=run_open_loop)
    return q


def run_open_loop(args: argparse.Namespace) -> int:
    from carla_bridge.run_metadata import run_metadata
    from drivewm.data.config import DataConfig
    from drivewm.data.dataset import NuScenesWorldDataset
    from drivewm.evaluation.open_loop import OpenLoopConfig, evaluate_open_loop, write_open_loop_report
    from drivewm.model.checkpoint import load_world_model

    model = load_world_model(args.ckpt, args.device)
    data_cfg = DataConfig.from_model(model.config, max_branches=args.max_branches)
    ds = NuScenesWorldDataset(args.dataroot, args.version, args.split, data_cfg, cache_dir=args.cache_dir)
    cfg = OpenLoopConfig(
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        label_grid=not args.model_grid,
        num_figures=args.figures,
    )
    results, figures = evaluate_open_loop(model, ds, cfg)
    results["config"] = {
        "ckpt": str(Path(args.ckpt).resolve()),
        "dataroot": str(Path(args.dataroot).resolve()),
        "version": args.version,
        "split": args.split,
        "model": model.config.to_dict(),
        "data": data_cfg.to_dict(),
    }
    results["meta"] = run_metadata()
    paths = write_open_loop_report(results, figures, model.grid, args.out)
    print(f"open-loop report: {paths['md']} ({results['num_samples']} samples)")
    return 0
