"""`carla_bridge.run_metadata`: what every results.json and generator.json records."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from carla_bridge.run_metadata import PACKAGES, git_commit, package_versions, run_metadata

REPO = Path(__file__).resolve().parents[2]


def test_git_commit_is_this_checkouts_head():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True)
    assert git_commit() == head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def test_package_versions_and_run_metadata():
    versions = package_versions()
    assert versions["torch"] == metadata.version("torch") and versions["python"] == sys.version.split()[0]
    assert set(PACKAGES) <= set(versions)
    assert package_versions(("no-such-package-xyz",))["no-such-package-xyz"] == "not installed"
    meta = run_metadata()
    assert meta["git_commit"] == git_commit() and meta["command"] == " ".join(sys.argv)
    assert len(meta["generated"]) == 20 and meta["generated"].endswith("Z")
