"""`--maps DIR`: a route's town found by name among a folder's .xodr files; and nothing is ever written
beside a user's map (the dataset's map info goes under the output folder)."""

from __future__ import annotations

import json
import shutil

import pytest

from carla_bridge.maps import find_town
from carla_bridge.maps.xodr import TOWNS_DIR
from carla_bridge.recorder.config import GeneratorConfig
from carla_bridge.recorder.dataset import generate
from carla_bridge.routes import with_maps, write_routes
from carla_bridge.scenarios.generate import generate_routes
from drivewm.cli import main


@pytest.fixture
def maps(tmp_path):
    """A user's map folder: Town02 under another name (and in a sub-folder), and a stray file."""
    d = tmp_path / "maps"
    (d / "sub").mkdir(parents=True)
    shutil.copy(TOWNS_DIR / "Town02.xodr", d / "sub" / "MyTown.xodr")
    (d / "notes.txt").write_text("not a map")
    return d


def _listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_find_town_by_name(maps):
    assert find_town("MyTown", maps) == maps / "sub" / "MyTown.xodr"
    assert find_town("mytown", maps) == maps / "sub" / "MyTown.xodr"  # case-insensitive, as file systems vary
    with pytest.raises(FileNotFoundError, match=r"'Town09' not found in --maps .* \(maps there: MyTown\)"):
        find_town("Town09", maps)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        find_town("MyTown", maps / "notes.txt")


def test_with_maps_resolves_route_towns(tmp_path, maps, town01):
    routes, _ = generate_routes(town01, ["HardBreakRoute"], 1, seed=0)
    (r,) = routes
    mine = r.__class__(**{**r.__dict__, "town": "MyTown", "id": "9"})
    (a, b) = with_maps([mine, r], maps)
    assert a.town == str(maps / "sub" / "MyTown.xodr") and b.town == "Town01"  # vendored towns still resolve
    assert with_maps([r], None) == [r]
    missing = r.__class__(**{**r.__dict__, "town": "Atlantis"})
    with pytest.raises(FileNotFoundError, match="route 0: town 'Atlantis' not found in --maps"):
        with_maps([missing], maps)


def test_sim_run_finds_the_town_in_maps(tmp_path, maps):
    town = find_town("MyTown", maps)
    from carla_bridge.maps import load_town

    routes, _ = generate_routes(load_town(town), ["ControlLoss"], 1, seed=2)
    routes = [r.__class__(**{**r.__dict__, "town": "MyTown"}) for r in routes]
    rf = write_routes(tmp_path / "routes.xml", routes)
    before = _listing(maps)
    out = tmp_path / "out"
    argv = ["sim", "run", "--routes", str(rf), "--maps", str(maps), "--out", str(out), "--max-seconds", "3"]
    assert main([*argv, "--vehicles", "2", "--pedestrians", "2", "--animation", "none"]) == 0
    rec = json.loads((out / "results.json").read_text())["routes"][0]
    assert rec["steps"] == 60 and rec["scenarios"][0]["built"]
    assert rec["scenarios"][0]["type"] == "ControlLoss" and rec["scenarios"][0]["phase"] in ("initialised", "running")
    assert _listing(maps) == before
    assert main(["sim", "run", "--routes", str(rf), "--out", str(out)]) == 2  # MyTown is not vendored


def test_dataset_from_a_user_map_writes_nothing_beside_it(tmp_path, maps):
    xodr = maps / "sub" / "MyTown.xodr"
    before = _listing(maps)
    cfg = GeneratorConfig(
        version="v1.0-sim-mine", towns=(str(xodr),), scenes=1, scene_seconds=1.0, branches=0, resolution=(32, 18),
        num_vehicles=2, num_pedestrians=1, num_parked=0, warmup_seconds=0.0,
    )  # fmt: skip
    out = tmp_path / "ds"
    generate(out, cfg, progress=False)
    assert _listing(maps) == before  # no MyTown.xodr.json (or anything else) next to the user's map
    assert (out / "drivewm" / "v1.0-sim-mine" / "maps" / "MyTown.json").is_file()
