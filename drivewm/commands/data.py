"""`drivewm data generate` / `drivewm data check`: record and verify a nuScenes-format dataset.

    drivewm data generate --towns Town01,Town02 --scenes 8 --scene-seconds 20 --out DIR \\
        --version v1.0-sim-NAME [--branches 4] [--resolution 400x225] [--seed 0] [--workers 2] [--val-towns Town02]
    drivewm data check DIR --version v1.0-sim-NAME

Generation is resumable: rerun the same command after an interruption; finished scenes are kept.
"""

from __future__ import annotations

import argparse

from drivewm.cli import UserError
from drivewm.commands.args import (
    input_dir,
    name_list,
    non_negative_int,
    output_dir,
    output_file,
    positive_float,
    positive_int,
)
from occupancy.atomic import write_json_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="record or verify a nuScenes-format dataset", description=__doc__.split("\n\n")[0])
    dsub = p.add_subparsers(dest="data_command", required=True)
    g = dsub.add_parser("generate", help="record a dataset with the lite simulator")
    g.add_argument("--towns", type=name_list, required=True, help="comma-separated towns, e.g. Town01,Town02")
    g.add_argument("--scenes", type=positive_int, required=True, help="number of scenes (round-robin over the towns)")
    g.add_argument("--scene-seconds", type=positive_float, default=20.0, help="length of each scene [s]")
    g.add_argument("--out", type=output_dir, required=True, help="output folder (new, empty, or a dataset to resume)")
    g.add_argument("--version", required=True, help="dataset version, v1.0-sim-<name>")
    g.add_argument(
        "--branches", type=non_negative_int, default=4, help="counterfactual branches per branch point (0: none)"
    )
    g.add_argument("--branch-every", type=positive_int, default=4, help="keyframes between branch points")
    g.add_argument("--resolution", default="400x225", help="camera resolution WIDTHxHEIGHT")
    g.add_argument("--seed", type=non_negative_int, default=0, help="global seed (scene seeds derive from it)")
    g.add_argument("--workers", type=positive_int, default=1, help="scenes recorded in parallel processes")
    g.add_argument("--val-towns", type=name_list, default=(), help="towns held out as the val split")
    g.add_argument("--vehicles", type=non_negative_int, default=40, help="background vehicles per scene")
    g.add_argument("--pedestrians", type=non_negative_int, default=20, help="pedestrians per scene")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=run_generate)
    c = dsub.add_parser("check", help="verify a dataset with the nuScenes devkit")
    c.add_argument("dataroot", type=input_dir, help="the dataset folder")
    c.add_argument("--version", required=True)
    c.add_argument("--json", type=output_file, default=None, help="also write the report as JSON to this file")
    c.set_defaults(func=run_check)


def run_generate(args: argparse.Namespace) -> int:
    from carla_bridge.recorder.config import GeneratorConfig, parse_resolution
    from carla_bridge.recorder.dataset import DatasetError, generate

    cfg = GeneratorConfig(
        version=args.version,
        towns=args.towns,
        scenes=args.scenes,
        scene_seconds=args.scene_seconds,
        branches=args.branches,
        branch_every=args.branch_every,
        resolution=parse_resolution(args.resolution),
        seed=args.seed,
        val_towns=tuple(args.val_towns),
        num_vehicles=args.vehicles,
        num_pedestrians=args.pedestrians,
    )
    try:
        summary = generate(args.out, cfg, workers=args.workers, progress=not args.quiet)
    except DatasetError as e:
        raise UserError(str(e)) from e
    print(
        f"dataset {cfg.version} in {args.out}: {len(summary['scenes'])} scenes "
        f"({len(summary['recorded'])} recorded now, {len(summary['skipped'])} kept) in {summary['seconds']:.1f} s"
    )
    return 0


def run_check(args: argparse.Namespace) -> int:
    from carla_bridge.recorder.check import check_dataset

    report = check_dataset(args.dataroot, args.version)
    print(report.text())
    if args.json is not None:
        write_json_atomic(args.json, {"ok": report.ok, "errors": report.errors, "summary": report.summary}, indent=1)
    return 0 if report.ok else 1
