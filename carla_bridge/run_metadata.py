"""Run metadata written beside every dataset and result: the source commit and package versions.

DESIGN.md §5: every evaluation's `results.json` (and the recorder's `generator.json`) records the
git commit and the versions of the packages the numbers depend on. `carla_bridge` is the lowest
package that records them (the recorder), so the one implementation lives here.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "drivewm",
    "torch",
    "pytorch-lightning",
    "numpy",
    "nuscenes-devkit",
    "shapely",
    "scipy",
    "matplotlib",
    "carla",
    "ray",
)
"""The packages whose versions a run records."""

SOURCE_ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str | None:
    """HEAD of the source checkout, with `-dirty` if it has uncommitted changes; None outside a
    git checkout (an installed wheel) or without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=10)
        if head.returncode != 0 or not head.stdout.strip():
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Python, platform and each package's installed version ("not installed" if absent)."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_metadata() -> dict:
    """What every results.json carries besides its config and numbers: time (UTC), commit,
    package versions and the command line."""
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "package_versions": package_versions(),
        "command": " ".join(sys.argv),
    }


__all__ = ["PACKAGES", "git_commit", "package_versions", "run_metadata"]
