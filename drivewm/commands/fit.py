"""`drivewm fit -c configs/tiny.yaml --data.dataroot DIR --data.version V`: train with LightningCLI.

Every LightningCLI option works (`--trainer.max_steps 200`, `--ckpt_path last` to resume from the
last checkpoint, `--print_config`). The model config is linked into the data module, so the
dataset produces exactly the image size and grid the model expects.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `fit` for `drivewm --help` (the arguments themselves are LightningCLI's)."""
    p = sub.add_parser(
        "fit",
        help="train the world model (LightningCLI: -c configs/tiny.yaml --data.dataroot DIR --data.version V)",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda a: run_fit(a.args))


def build_cli(argv: list[str], run: bool = True):
    """The LightningCLI for `DriveWorldModule` + `DriveDataModule` (`argv` without the `fit` word)."""
    from pytorch_lightning.cli import LightningCLI

    from drivewm.data.datamodule import DriveDataModule
    from drivewm.lightning_module import DriveWorldModule

    class DriveCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.link_arguments("model.config", "data.model_config", apply_on="parse")

    args = ["fit", *argv] if run else list(argv)
    saved, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI warns when sys.argv and args both hold arguments
    try:
        return DriveCLI(
            DriveWorldModule,
            DriveDataModule,
            args=args,
            run=run,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
        )
    finally:
        sys.argv = saved


def run_fit(argv: list[str]) -> int:
    """Entry point used by `drivewm.cli`: returns the exit status."""
    from drivewm.cli import run_guarded

    def fit() -> int:
        build_cli(list(argv))
        return 0

    return run_guarded("fit", fit)
