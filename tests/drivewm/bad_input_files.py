"""Real bad files for the bad-input tests (issue 17): checkpoints (good, truncated, NaN weights, a
pickle that would run a command) and a tree snapshot to prove nothing was written where it should
not be. The stand-in services on the CARLA port live in `tests/carla_bridge/carla_stand_ins.py`."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import torch

from drivewm.model.config import ModelConfig
from drivewm.model.world_model import DriveWorldModel
from tests.drivewm.synthetic_batches import TINY


def write_checkpoint(path: Path, nan_weights: bool = False) -> Path:
    """A drivewm checkpoint as Lightning writes it (`state_dict` with `model.` keys, the config in
    `hyper_parameters`) of the tiny model; `nan_weights` puts NaN into one backbone tensor (a diverged run)."""
    torch.manual_seed(0)
    config = ModelConfig(**TINY)
    model = DriveWorldModel(config)
    state = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    if nan_weights:
        name = next(k for k, v in state.items() if v.is_floating_point() and "backbone" in k)
        state[name][...] = float("nan")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "hyper_parameters": {"config": config.to_dict()}, "epoch": 0}, path)
    return path


def write_truncated(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    """The first `fraction` of `src`'s bytes (a download or copy that stopped)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


class _RunsACommand:
    """Unpickling this runs `touch <marker>` — what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious(path: Path, marker: Path) -> Path:
    """A torch checkpoint whose pickle calls `os.system` on load (refused by `weights_only=True`)."""
    torch.save({"state_dict": {"model.x": _RunsACommand(marker)}, "hyper_parameters": {"config": {}}}, path)
    return path


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under `root` (but `skip`)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if skip is not None and Path(dirpath).is_relative_to(skip):
            continue
        for f in files:
            p = Path(dirpath) / f
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def temporaries(root: Path) -> list[Path]:
    """Every temporary file (`*.tmp`, `*.tmp.*`, `.*.tmp*`) under `root`."""
    return [p for p in root.rglob("*") if p.is_file() and ".tmp" in p.name]


REPO = Path(__file__).resolve().parents[2]


def run_cli(
    argv: list[str], cwd: Path, fsize_limit: int | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`drivewm <argv>` in a child process (as the console script runs it), optionally under a
    file-size limit (RLIMIT_FSIZE [bytes], the cheap stand-in for a full disk)."""

    def limit() -> None:
        if fsize_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    code = "import sys; from drivewm.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
    )
