"""`drivewm eval open-loop`: the open-loop report of a trained world model on a dataset split.

    drivewm eval open-loop --ckpt C --dataroot DIR --version V [--split val] [--protocol open-loop-v1] --out DIR

See `drivewm.evaluation.open_loop` for what is measured.
"""

from __future__ import annotations

import argparse

from drivewm.commands.args import device, input_dir, input_file, non_negative_int, output_dir, positive_int


def add_open_loop_parser(evsub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `open-loop` under `drivewm eval`."""
    from drivewm.evaluation.open_loop import DEFAULT_PROTOCOL, OpenLoopConfig

    q = evsub.add_parser(
        "open-loop",
        help="open-loop report of a trained world model on a dataset split",
        description="Planning L2/collisions (both conventions), occupancy IoU/mIoU per horizon, agent "
        "minADE/minFDE/MR, baselines and plan sensitivity on counterfactual branches.",
    )
    q.add_argument("--ckpt", type=input_file, required=True, help="checkpoint written by `drivewm fit`")
    q.add_argument("--dataroot", type=input_dir, required=True, help="dataset root (nuScenes layout)")
    q.add_argument("--version", required=True, help="table folder, e.g. v1.0-sim-mini or v1.0-trainval")
    q.add_argument("--split", default="val", help="split name (default val)")
    q.add_argument("--out", type=output_dir, required=True, help="output folder")
    q.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        help=f"frozen evaluation protocol: {', '.join(OpenLoopConfig.protocols())} (default {DEFAULT_PROTOCOL})",
    )
    q.add_argument("--batch-size", type=positive_int, default=4, help="samples per model call")
    q.add_argument(
        "--max-samples", type=non_negative_int, default=0, help="evaluate only the first n samples (0 = all)"
    )
    q.add_argument(
        "--max-branches",
        type=non_negative_int,
        default=None,
        help="counterfactual branches per sample (overrides the protocol)",
    )
    q.add_argument(
        "--model-grid",
        action="store_true",
        help="score occupancy on the model grid, not the label grid (overrides the protocol)",
    )
    q.add_argument("--figures", type=non_negative_int, default=2, help="samples drawn in the report")
    q.add_argument("--cache-dir", default=None, help="feature cache root (default DIR/drivewm/<version>/cache)")
    q.add_argument("--device", type=device, default="cpu", help="torch device of the model")
    q.set_defaults(func=run)
    return q


def run(args: argparse.Namespace) -> int:
    from drivewm.evaluation.open_loop import OpenLoopConfig, run_open_loop

    overrides: dict = {}
    if args.max_branches is not None:
        overrides["max_branches"] = args.max_branches
    if args.model_grid:
        overrides["label_grid"] = False
    cfg = OpenLoopConfig.from_protocol(
        args.protocol,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        num_figures=args.figures,
        **overrides,
    )
    results, paths = run_open_loop(
        cfg, args.ckpt, args.dataroot, args.version, args.split, args.out, args.device, args.cache_dir
    )
    print(f"open-loop report: {paths['md']} ({results['num_samples']} samples)")
    return 0
