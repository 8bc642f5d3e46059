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
            # a bad option raises (one line through `drivewm.cli`) instead of printing the whole usage
            parser_kwargs={"exit_on_error": False, "fit": {"exit_on_error": False}},
        )
    finally:
        sys.argv = saved


LIGHTNING_CKPT_KEYWORDS = frozenset({"last", "best", "hpc", "registry"})
"""`--ckpt_path` values Lightning resolves itself (not file paths)."""


def ckpt_path_argument(argv: list[str]) -> str | None:
    """The value of `--ckpt_path` in `argv` (either `--ckpt_path X` or `--ckpt_path=X`), None if absent."""
    for i, arg in enumerate(argv):
        if arg == "--ckpt_path" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--ckpt_path="):
            return arg.split("=", 1)[1]
    return None


def check_resume_checkpoint(argv: list[str]) -> None:
    """Refuse a `--ckpt_path` file that cannot be resumed from before training starts: missing, a
    folder, or not a readable checkpoint (`ValueError`/`FileNotFoundError` naming the file)."""
    from drivewm.model.checkpoint import read_checkpoint

    value = ckpt_path_argument(argv)
    if value is None or value in LIGHTNING_CKPT_KEYWORDS or value.lower() == "null":
        return
    read_checkpoint(value, require_drivewm=False)


def run_fit(argv: list[str], debug: bool = False) -> int:
    """Entry point used by `drivewm.cli`: returns the exit status (errors: one line, see `drivewm.cli`)."""
    from drivewm.cli import run_guarded

    def fit() -> int:
        check_resume_checkpoint(list(argv))
        build_cli(list(argv))
        return 0

    return run_guarded("fit", fit, debug=debug)
