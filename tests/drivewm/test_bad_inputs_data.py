"""Issue 17, data: `drivewm data check` opens every file training will open and fails — naming the
file — on what made training die later (a truncated JPEG, corrupt JSON, a damaged branch .npz) and on
the 0-scene leftover of a disk-full generation; the dataset loader names the file it fails on; a
file-size limit hit while writing leaves one line and no temporary file; nothing is written beside
a user's map."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from carla_bridge.recorder.dataset import rebuild_tables
from drivewm.cli import main
from drivewm.data import DataConfig, NuScenesWorldDataset
from occupancy.reading import CorruptFileError
from tests.drivewm.bad_input_files import run_cli, snapshot, temporaries

REPO = Path(__file__).resolve().parents[2]


def _first_train_camera_image(root: Path, version: str) -> Path:
    """The CAM_FRONT image of the first keyframe of the first train scene (the first file `fit` reads)."""
    tables = root / version
    splits = json.loads((root / "drivewm" / version / "splits.json").read_text())
    scene = next(s for s in json.loads((tables / "scene.json").read_text()) if s["name"] == splits["train"][0])
    sample = scene["first_sample_token"]
    sds = json.loads((tables / "sample_data.json").read_text())
    return root / next(sd["filename"] for sd in sds if sd["sample_token"] == sample and "CAM_FRONT/" in sd["filename"])


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture(scope="module")
def broken(sim_dataset, tmp_path_factory):
    """A copy of the shared dataset with one broken file of each kind training reads."""
    root = tmp_path_factory.mktemp("broken") / "ds"
    shutil.copytree(sim_dataset.dataroot, root)
    ext = root / "drivewm" / sim_dataset.version
    scene = json.loads((ext / "splits.json").read_text())["train"][0]
    files = {
        "jpeg": _first_train_camera_image(root, sim_dataset.version),
        "splits": ext / "splits.json",
        "route": ext / "routes" / f"{scene}.json",
        "lights": ext / "lights" / f"{scene}.json",
        "boxes2d": ext / "boxes2d" / f"{scene}.json",
        "fragment": ext / "scenes" / f"{scene}.json",
        "branch": sorted((ext / "branches").glob("*.npz"))[0],
    }
    _truncate(files["jpeg"])
    _truncate(files["branch"])
    for key in ("splits", "route", "lights", "boxes2d", "fragment"):
        _truncate(files[key], 0.6)  # JSON cut mid-way
    return root, sim_dataset.version, files


def test_check_names_every_broken_file(broken, capsys):
    root, version, files = broken
    report_path = root.parent / "report.json"
    assert main(["data", "check", str(root), "--version", version, "--json", str(report_path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    errors = json.loads(report_path.read_text())["errors"]
    for kind, path in files.items():
        assert any(str(path) in e or path.name in e for e in errors), f"{kind} file {path} not named: {errors}"
    assert any("camera image" in e and str(files["jpeg"]) in e for e in errors)


def test_check_fails_on_the_zero_scene_leftover_of_a_disk_full_run(sim_dataset, tmp_path, capsys):
    """A generation that died before its first scene finished leaves tables with no scene (the tables
    are rebuilt from the committed fragments — here none — exactly as `generate` does on start)."""
    from carla_bridge.recorder.config import GeneratorConfig
    from carla_bridge.recorder.map_expansion import MapInfo
    from carla_bridge.recorder.tables import calibrated_sensor_records
    from carla_bridge.sensors.rig import RIG_PATH, CameraRig

    root = tmp_path / "leftover"
    shutil.copytree(sim_dataset.dataroot, root)
    ext = root / "drivewm" / sim_dataset.version
    shutil.rmtree(ext / "scenes")
    cfg = GeneratorConfig.from_dict(json.loads((ext / "generator.json").read_text())["config"])
    maps = {p.stem: MapInfo.from_dict(json.loads(p.read_text())) for p in (ext / "maps").glob("*.json")}
    calibrated = calibrated_sensor_records(CameraRig.nuscenes(*cfg.resolution), json.loads(Path(RIG_PATH).read_text()))
    rebuild_tables(root, cfg, maps, calibrated)
    assert json.loads((root / sim_dataset.version / "scene.json").read_text()) == []
    assert main(["data", "check", str(root), "--version", sim_dataset.version]) == 1
    out = capsys.readouterr().out
    assert "holds no scenes" in out and "FAILED" in out


def test_loader_names_a_corrupt_split_file(broken):
    root, version, files = broken
    with pytest.raises(CorruptFileError, match=f"split file {files['splits']}"):
        NuScenesWorldDataset(root, version, "train", DataConfig(), cache_dir="")


def test_loader_and_fit_name_a_truncated_jpeg(sim_dataset, tmp_path, capsys):
    """The loader names the image it cannot decode; `drivewm fit` on that dataset stops with one line
    naming it (it used to die with a traceback naming nothing)."""
    root = tmp_path / "ds"
    shutil.copytree(sim_dataset.dataroot, root)
    jpeg = _first_train_camera_image(root, sim_dataset.version)
    _truncate(jpeg)
    ds = NuScenesWorldDataset(root, sim_dataset.version, "train", DataConfig(), cache_dir="")
    with pytest.raises(CorruptFileError, match=f"camera image {jpeg} is unreadable"):
        ds.build(0)
    args = ["fit", "-c", str(REPO / "configs" / "tiny.yaml"), f"--data.dataroot={root}"]
    args += [f"--data.version={sim_dataset.version}", f"--data.cache_dir={tmp_path / 'cache'}"]
    args += ["--trainer.max_steps=1", "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}"]
    args += [f"--trainer.logger.init_args.save_dir={tmp_path}", f"--trainer.callbacks.init_args.dirpath={tmp_path}"]
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("drivewm")]
    assert len(err) == 1 and str(jpeg) in err[0] and "camera image" in err[0], err


def _small_town(path: Path) -> Path:
    """A procedural crossroads town (with a geo reference, so CARLA's map parser stays quiet)."""
    from carla_bridge.maps.procedural import crossroads_xodr, write_xodr

    geo = "<geoReference><![CDATA[+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m ]]>"
    text = crossroads_xodr()
    head_end = text.index("/>", text.index("<header"))
    text = text[:head_end] + f">{geo}</geoReference></header>" + text[head_end + 2 :]
    return write_xodr(text, path)


SMALL_GENERATE = ["--scenes", "1", "--scene-seconds", "1", "--resolution", "16x9", "--vehicles", "0"]
SMALL_GENERATE += ["--pedestrians", "0", "--branches", "0", "--version", "v1.0-sim-small", "--quiet"]


def test_file_size_limit_while_writing_the_map_is_one_line_and_leaves_no_temporary(tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: the map expansion JSON cannot be written. One line naming
    the file, exit 2, no `.tmp` left — and a good rerun afterwards leaves none either."""
    town = _small_town(tmp_path / "maps" / "cross.xodr")
    out = tmp_path / "out"
    argv = ["data", "generate", "--towns", str(town), "--out", str(out), *SMALL_GENERATE]
    proc = run_cli(argv, tmp_path, fsize_limit=4096)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "File too large" in lines[0] and str(out) in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not temporaries(tmp_path), temporaries(tmp_path)


def test_generate_writes_nothing_beside_the_users_map(tmp_path):
    town = _small_town(tmp_path / "maps" / "cross.xodr")
    before = snapshot(tmp_path / "maps")
    out = tmp_path / "out"
    proc = run_cli(["data", "generate", "--towns", str(town), "--out", str(out), *SMALL_GENERATE], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert snapshot(tmp_path / "maps") == before, "a file was written beside the user's map"
    assert not temporaries(tmp_path)
