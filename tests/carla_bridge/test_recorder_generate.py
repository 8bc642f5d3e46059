"""Generation robustness: atomic scenes, resume after an interruption, bad inputs (real pipeline, tiny sizes)."""

from __future__ import annotations

import json
import os

import pytest

from carla_bridge.recorder.config import GeneratorConfig, check_version, parse_resolution, scene_seed
from carla_bridge.recorder.dataset import WORK_DIR, DatasetError, committed_scenes, generate


def _tiny(version: str = "v1.0-sim-tiny", **kw) -> GeneratorConfig:
    base = dict(
        version=version, towns=("Town01",), scenes=2, scene_seconds=1.0, branches=0, resolution=(32, 18),
        num_vehicles=4, num_pedestrians=2, num_parked=1, warmup_seconds=0.0,
    )  # fmt: skip
    base.update(kw)
    return GeneratorConfig(**base)


def test_resume_after_interruption(tmp_path) -> None:
    from nuscenes.nuscenes import NuScenes

    cfg = _tiny()
    out = tmp_path / "ds"

    def interrupt(name: str) -> None:
        raise KeyboardInterrupt  # as if Ctrl-C arrived right after the first scene was committed

    with pytest.raises(KeyboardInterrupt):
        generate(out, cfg, progress=False, on_scene=interrupt)
    assert committed_scenes(out, cfg.version) == ["scene-0000"]
    # the tables already describe the finished scene and point only at existing files
    nusc = NuScenes(version=cfg.version, dataroot=str(out), verbose=False)
    assert [s["name"] for s in nusc.scene] == ["scene-0000"]
    assert all((out / sd["filename"]).is_file() for sd in nusc.sample_data)
    first_file = out / nusc.sample_data[0]["filename"]
    mtime = first_file.stat().st_mtime_ns
    # a half-written scene from a crash is discarded and redone
    junk = out / WORK_DIR / cfg.version / "scene-0001.partial" / "data" / "samples"
    junk.mkdir(parents=True)
    (junk / "half.jpg").write_bytes(b"x")
    summary = generate(out, cfg, progress=False)
    assert summary["recorded"] == ["scene-0001"] and summary["skipped"] == ["scene-0000"]
    assert first_file.stat().st_mtime_ns == mtime  # finished work kept, not redone
    assert not (out / WORK_DIR).exists() and not (out / "samples" / "half.jpg").exists()
    nusc = NuScenes(version=cfg.version, dataroot=str(out), verbose=False)
    assert sorted(s["name"] for s in nusc.scene) == ["scene-0000", "scene-0001"]
    splits = json.loads((out / "drivewm" / cfg.version / "splits.json").read_text())
    assert splits["train"] == ["scene-0000", "scene-0001"]  # no val towns: every 4th scene would be val
    # a finished dataset: nothing to do
    assert generate(out, cfg, progress=False)["recorded"] == []
    # resuming with another config is refused
    with pytest.raises(DatasetError, match="different config"):
        generate(out, _tiny(scenes=3, seed=1), progress=False)


def test_bad_inputs_leave_nothing_behind(tmp_path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        generate(foreign, _tiny(), progress=False)
    assert sorted(os.listdir(foreign)) == ["notes.txt"]
    with pytest.raises(FileNotFoundError, match="Town99"):
        generate(tmp_path / "a", _tiny(towns=("Town99",)), progress=False)
    assert not (tmp_path / "a").exists()
    for version in ("v1.0-mini", "v1.0-trainval", "sim", "v1.0-sim-"):
        with pytest.raises(ValueError, match="version"):
            generate(tmp_path / "b", _tiny(version=version), progress=False)
    assert not (tmp_path / "b").exists()
    with pytest.raises(ValueError, match="val_towns"):
        _tiny(val_towns=("Town02",)).validate()
    with pytest.raises(ValueError, match="resolution"):
        parse_resolution("400by225")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(DatasetError, match="not writable"):  # (works as root too, unlike chmod)
        generate(blocker / "ds", _tiny(), progress=False)


def test_scene_seeds_do_not_depend_on_order() -> None:
    cfg = _tiny(scenes=4, towns=("Town01", "Town02"))
    specs = cfg.scene_specs()
    assert [s.town for s in specs] == ["Town01", "Town02", "Town01", "Town02"]
    assert [s.seed for s in specs] == [scene_seed(0, i) for i in range(4)]
    assert len({s.seed for s in specs}) == 4 and scene_seed(1, 0) != scene_seed(0, 0)
    assert check_version("v1.0-sim-abc_1") == "v1.0-sim-abc_1"
