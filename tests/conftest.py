"""Project-wide fixtures.

`single_thread` (autouse): every test runs with one torch intra-op thread — the suite runs as two
pytest-xdist workers on two cores, and a second thread per worker only adds contention (small
tensor ops slow down 10-30x). `one_torch_thread` is the same as a context manager, for session
fixtures (they are set up before the function-scoped autouse fixture applies).

`sim_dataset`: ONE small dataset recorded with the real pipeline per test run.

It is built once per test run, also under pytest-xdist: the workers share a folder next to their
own temporary folders and a file lock, so the first worker records it and the others wait and reuse
it. Tests must treat it as read-only (copy it first to modify anything).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

SIM_DATASET_VERSION = "v1.0-sim-pytest"


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def one_torch_thread() -> Callable[[], AbstractContextManager[None]]:
    """`with one_torch_thread(): ...` runs the block with one torch thread (restored after)."""
    return lambda: _torch_threads(1)


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Every test runs with one torch thread (see the module docstring); restored afterwards."""
    with _torch_threads(1):
        yield


@dataclass(frozen=True)
class SimDataset:
    """A recorded dataset: `dataroot`, `version`, the generator `config` and `summary` of the run."""

    dataroot: Path
    version: str
    config: object
    seconds: float


def sim_dataset_config():
    """The shared dataset's generator config: 2 towns × 1 scene of 8 s (16 keyframes), 2 branches at
    two keyframes per scene, 160×90 cameras, Town02 held out as val."""
    from carla_bridge.recorder.config import GeneratorConfig

    return GeneratorConfig(
        version=SIM_DATASET_VERSION,
        towns=("Town01", "Town02"),
        scenes=2,
        scene_seconds=8.0,
        branches=2,
        branch_every=6,
        branch_start=4,
        resolution=(160, 90),
        seed=0,
        val_towns=("Town02",),
        num_vehicles=30,
        num_pedestrians=12,
        num_parked=6,
        warmup_seconds=2.0,
    )


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory: pytest.TempPathFactory) -> SimDataset:
    """The shared small dataset (read-only). Recorded once per test run, ≤ ~90 s on 2 cores."""
    from filelock import FileLock

    from carla_bridge.recorder.dataset import generate

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    root = base / "sim_dataset"
    cfg = sim_dataset_config()
    done = base / "sim_dataset.done.json"
    with FileLock(str(base / "sim_dataset.lock")):
        if not done.is_file():
            summary = generate(root, cfg, workers=2, progress=False)  # one scene per core
            done.write_text(json.dumps({"seconds": summary["seconds"]}))
        seconds = json.loads(done.read_text())["seconds"]
    return SimDataset(dataroot=root, version=cfg.version, config=cfg, seconds=seconds)
