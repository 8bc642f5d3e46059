"""`mini_nuscenes`: a tiny hand-written nuScenes-format dataset (real devkit tables, JPEG cameras
with the real n015 calibration, Occ3D labels, routes, splits, one branch file) whose ground truth
is known in closed form, so dataset tests can check values, not just shapes. It is independent of
the simulator; the recorder's `sim_dataset` covers the recorded pipeline.

`evaluated`: the shared open-loop run on it (the tiny model fitted for a few steps through the CLI,
then `drivewm eval open-loop`), used by the open-loop tests and by the reports' browser test."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from drivewm.cli import main
from occupancy import GridSpec
from occupancy.builders import voxelize_boxes
from occupancy.io import labels_path, write_labels

VERSION = "v1.0-sim-minifixture"
CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
KEYFRAMES = 9
SPEED = 5.0  # ego speed [m/s] along its heading
YAW0 = 0.3  # ego heading [rad] (global)
START = np.array([100.0, 200.0])
IMAGE_WH = (320, 180)


def tok(*parts) -> str:
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def to_global(local_xy, yaw0=YAW0, origin=START) -> np.ndarray:
    c, s = math.cos(yaw0), math.sin(yaw0)
    x, y = local_xy
    return origin + np.array([c * x - s * y, s * x + c * y])


@dataclass(frozen=True)
class MiniNuScenes:
    dataroot: Path
    version: str
    branch_sample: str  # token of the keyframe with a branch file


def ego_pose(k: int) -> np.ndarray:
    """Global rear-axle pose at keyframe k: straight along YAW0 at SPEED."""
    xy = to_global((SPEED * 0.5 * k, 0.0))
    return np.array([xy[0], xy[1], YAW0])


def agents_at(k: int, scene: int, lead_stops: bool = False) -> list[dict]:
    """Global agent boxes: a parked car, a lead car at 6 m/s (or stopped), a crossing pedestrian."""
    t = 0.5 * k
    lead_x = 10.0 + 6.0 * (min(t, 0.5) if lead_stops else t)  # a stopping lead freezes at keyframe 1
    out = [
        dict(inst=tok(scene, "parked"), cat="vehicle.car", local=(20.0, 4.0), yaw=0.0, wlh=(1.9, 4.5, 1.6)),
        dict(inst=tok(scene, "lead"), cat="vehicle.car", local=(lead_x, 0.0), yaw=0.0, wlh=(1.9, 4.5, 1.6)),
        dict(
            inst=tok(scene, "ped"),
            cat="human.pedestrian.adult",
            local=(15.0, -6.0 + 1.2 * t),
            yaw=math.pi / 2,
            wlh=(0.7, 0.7, 1.8),
        ),
    ]
    for a in out:
        a["xy"] = to_global(a["local"])
        a["gyaw"] = YAW0 + a["yaw"]
    return out


def labels_for(ego: np.ndarray, agents: list[dict], grid: GridSpec) -> np.ndarray:
    """Occ3D labels in the ego frame of `ego`: ground (driveable) + the agents' boxes."""
    c, s = math.cos(ego[2]), math.sin(ego[2])
    boxes, cls = [], []
    for a in agents:
        d = a["xy"] - ego[:2]
        x, y = c * d[0] + s * d[1], -s * d[0] + c * d[1]
        w, l, h = a["wlh"]
        boxes.append([x, y, h / 2, a["gyaw"] - ego[2], l, w, h])
        cls.append(7 if a["cat"].startswith("human") else 4)
    sem = voxelize_boxes(grid, torch.tensor(boxes, dtype=torch.float32), torch.tensor(cls)).numpy()
    sem[:, :, 1][sem[:, :, 1] == 17] = 11  # ground layer (z centre -0.4 m)
    return sem


def write_mini_nuscenes(root: Path) -> MiniNuScenes:
    rig = json.loads((Path(__file__).parents[2] / "carla_bridge/data/nuscenes/rig_n015.json").read_text())
    grid = GridSpec.occ3d()
    t = {
        name: []
        for name in (
            "category",
            "attribute",
            "visibility",
            "instance",
            "sensor",
            "calibrated_sensor",
            "ego_pose",
            "log",
            "scene",
            "sample",
            "sample_data",
            "sample_annotation",
            "map",
        )
    }
    cats = {"vehicle.car": tok("cat", "car"), "human.pedestrian.adult": tok("cat", "ped")}
    t["category"] = [{"token": v, "name": k, "description": k} for k, v in cats.items()]
    t["visibility"] = [{"token": "4", "level": "v80-100", "description": "visible"}]
    cs_tokens = {}
    for ch in (*CAMERAS, "LIDAR_TOP"):
        t["sensor"].append(
            {"token": tok("sensor", ch), "channel": ch, "modality": "lidar" if ch == "LIDAR_TOP" else "camera"}
        )
        r = rig[ch]
        k = np.array(r.get("camera_intrinsic", np.eye(3)), dtype=float)
        if ch != "LIDAR_TOP":
            k[0] *= IMAGE_WH[0] / 1600
            k[1] *= IMAGE_WH[1] / 900
        cs_tokens[ch] = tok("cs", ch)
        t["calibrated_sensor"].append(
            {
                "token": cs_tokens[ch],
                "sensor_token": tok("sensor", ch),
                "translation": r["translation"],
                "rotation": r["rotation"],
                "camera_intrinsic": k.tolist() if ch != "LIDAR_TOP" else [],
            }
        )
    log = tok("log")
    t["log"] = [{"token": log, "logfile": "mini", "vehicle": "n015", "date_captured": "2026-01-01", "location": "mini"}]
    t["map"] = [{"token": tok("map"), "log_tokens": [log], "category": "semantic_prior", "filename": ""}]
    splits = {"train": [], "val": [], "held_out_towns": []}
    ext = root / "drivewm" / VERSION
    (ext / "routes").mkdir(parents=True)
    (ext / "branches").mkdir(parents=True)
    rng = np.random.default_rng(0)
    branch_sample = ""
    for scene in range(2):
        name = f"scene-{scene:04d}"
        splits["train" if scene == 0 else "val"].append(name)
        samples = [tok(scene, "sample", k) for k in range(KEYFRAMES)]
        t["scene"].append(
            {
                "token": tok(scene, "scene"),
                "log_token": log,
                "nbr_samples": KEYFRAMES,
                "name": name,
                "description": "",
                "first_sample_token": samples[0],
                "last_sample_token": samples[-1],
            }
        )
        route = np.stack([to_global((x, 0.0)) for x in np.arange(-20.0, 120.0, 2.0)])
        (ext / "routes" / f"{name}.json").write_text(json.dumps({"town": "Mini", "polyline": route.tolist()}))
        inst_anns: dict[str, list[str]] = {}
        for k in range(KEYFRAMES):
            ts = 1_000_000 + 500_000 * k
            pose = ego_pose(k)
            t["sample"].append(
                {
                    "token": samples[k],
                    "timestamp": ts,
                    "scene_token": tok(scene, "scene"),
                    "prev": samples[k - 1] if k else "",
                    "next": samples[k + 1] if k + 1 < KEYFRAMES else "",
                }
            )
            ep = tok(scene, "ego", k)
            t["ego_pose"].append(
                {"token": ep, "timestamp": ts, "translation": [pose[0], pose[1], 0.0], "rotation": quat(pose[2])}
            )
            for ch in (*CAMERAS, "LIDAR_TOP"):
                cam = ch != "LIDAR_TOP"
                fn = f"samples/{ch}/{name}_{k}.{'jpg' if cam else 'pcd.bin'}"
                (root / fn).parent.mkdir(parents=True, exist_ok=True)
                if cam:
                    Image.fromarray(rng.integers(0, 255, (IMAGE_WH[1], IMAGE_WH[0], 3), dtype=np.uint8)).save(root / fn)
                else:
                    np.zeros((4, 5), np.float32).tofile(root / fn)
                t["sample_data"].append(
                    {
                        "token": tok(scene, ch, k),
                        "sample_token": samples[k],
                        "ego_pose_token": ep,
                        "calibrated_sensor_token": cs_tokens[ch],
                        "timestamp": ts,
                        "fileformat": "jpg" if cam else "pcd",
                        "is_key_frame": True,
                        "height": IMAGE_WH[1] if cam else 0,
                        "width": IMAGE_WH[0] if cam else 0,
                        "filename": fn,
                        "prev": tok(scene, ch, k - 1) if k else "",
                        "next": tok(scene, ch, k + 1) if k + 1 < KEYFRAMES else "",
                    }
                )
            agents = agents_at(k, scene)
            for a in agents:
                at = tok(scene, a["inst"], k)
                inst_anns.setdefault(a["inst"], []).append(at)
                w, l, h = a["wlh"]
                t["sample_annotation"].append(
                    {
                        "token": at,
                        "sample_token": samples[k],
                        "instance_token": a["inst"],
                        "visibility_token": "4",
                        "attribute_tokens": [],
                        "translation": [a["xy"][0], a["xy"][1], h / 2],
                        "size": [w, l, h],
                        "rotation": quat(a["gyaw"]),
                        "num_lidar_pts": 10,
                        "num_radar_pts": 0,
                    }
                )
            mask = np.ones(grid.shape, np.uint8)
            write_labels(labels_path(root, name, samples[k]), labels_for(pose, agents, grid), mask, mask)
        for inst, anns in inst_anns.items():
            cat = cats[
                "human.pedestrian.adult"
                if "ped" in [a for a in ("parked", "lead", "ped") if tok(scene, a) == inst]
                else "vehicle.car"
            ]
            t["instance"].append(
                {
                    "token": inst,
                    "category_token": cat,
                    "nbr_annotations": len(anns),
                    "first_annotation_token": anns[0],
                    "last_annotation_token": anns[-1],
                }
            )
            for i, at in enumerate(anns):
                rec = next(r for r in t["sample_annotation"] if r["token"] == at)
                rec["prev"] = anns[i - 1] if i else ""
                rec["next"] = anns[i + 1] if i + 1 < len(anns) else ""
        if scene == 0:  # branches at keyframe 1: keep (lead car keeps going) and a left swerve where the lead stops
            branch_sample = samples[1]
            fut = range(2, 8)
            ego = np.stack(
                [[ego_pose(k) for k in fut], [np.r_[to_global((SPEED * 0.5 * k, 0.5 * (k - 1))), YAW0] for k in fut]]
            )
            lead_inst = tok(0, "lead")
            apose = np.zeros((2, 1, 6, 3))
            sem = np.zeros((2, 6, *grid.shape), np.uint8)
            for b, stops in enumerate((False, True)):
                for i, k in enumerate(fut):
                    ag = agents_at(k, 0, lead_stops=stops)
                    lead = next(a for a in ag if a["inst"] == lead_inst)
                    apose[b, 0, i] = [*lead["xy"], lead["gyaw"]]
                    sem[b, i] = labels_for(ego_pose(1), ag, grid)
            np.savez_compressed(
                ext / "branches" / f"{branch_sample}.npz",
                ego=ego.astype(np.float32),
                plan_kind=np.array(["keep", "left"]),
                instance_tokens=np.array([lead_inst]),
                agent_pose=apose.astype(np.float32),
                agent_valid=np.ones((2, 1, 6), bool),
                agent_size=np.array([[4.5, 1.9, 1.6]], np.float32),
                agent_class=np.array([0]),
                semantics=sem,
                collision=np.zeros(2, bool),
                offroad=np.zeros(2, bool),
            )
    (ext / "lights").mkdir()
    lights = {tok(0, "sample", 1): [0, 23.5], tok(0, "sample", 2): [2, None]}  # red 23.5 m ahead; then none
    (ext / "lights" / "scene-0000.json").write_text(json.dumps(lights))
    (ext / "splits.json").write_text(json.dumps(splits))
    (ext / "generator.json").write_text(json.dumps({"name": "mini-fixture"}))
    tdir = root / VERSION
    tdir.mkdir()
    for name, records in t.items():
        (tdir / f"{name}.json").write_text(json.dumps(records))
    return MiniNuScenes(root, VERSION, branch_sample)


@contextmanager
def shared_build(tmp_path_factory, name: str):
    """A folder shared by the pytest-xdist workers of this run, built once: yields (path, done_marker);
    the first worker builds (writes `done_marker` at the end), the others wait on the lock and reuse."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path = base / name
    with FileLock(str(base / f"{name}.lock")):
        yield path, base / f"{name}.done"


@pytest.fixture(scope="session")
def build_once(tmp_path_factory):
    """`with build_once(name) as (path, done): ...` — see `shared_build`."""

    def enter(name: str):
        return shared_build(tmp_path_factory, name)

    return enter


@pytest.fixture(scope="session")
def mini_nuscenes(tmp_path_factory, one_torch_thread) -> MiniNuScenes:
    """The hand-written dataset (read-only; copy it to modify), written once per test run."""
    with shared_build(tmp_path_factory, "mini_nuscenes") as (path, done):
        if not done.is_file():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            with one_torch_thread():
                mini = write_mini_nuscenes(path)
            done.write_text(mini.branch_sample)
        return MiniNuScenes(path, VERSION, done.read_text())


@pytest.fixture(scope="session")
def active_plan_pathway():
    """`f(model) -> copy` whose plan pathway's output layers (zero at initialisation, so an untrained
    model's plans change nothing) hold random weights, as after training."""

    def make(model):
        import copy

        active = copy.deepcopy(model)
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for layer in (active.inter_out[-1], active.res_out):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.5)
        return active

    return make


TINY_CONFIG = Path(__file__).parents[2] / "configs" / "tiny.yaml"
TINY_OVERRIDES = [
    "--model.config.image_size=[32, 64]",
    "--model.config.backbone_channels=[8, 16]",
    "--model.config.feat_dim=8",
    "--model.config.bev_dim=16",
    "--model.config.plan_dim=16",
    "--model.config.max_agents=6",
    "--model.config.grid_voxel=[3.2, 3.2, 1.6]",
    "--model.config.coarse_factor=5",
]


@pytest.fixture(scope="session")
def evaluated(mini_nuscenes, tmp_path_factory, one_torch_thread):
    """The shared open-loop run: CLI fit of the tiny model on `mini_nuscenes` + CLI `eval open-loop`, once
    per test run (shared by the xdist workers). Returns (report folder, results, checkpoint)."""
    with shared_build(tmp_path_factory, "open_loop_run") as (run, done):
        if not done.is_file():
            with one_torch_thread():
                _fit_and_evaluate(mini_nuscenes, run)
            done.write_text("ok")
    out = run / "report"
    return out, json.loads((out / "results.json").read_text()), run / "ckpt" / "last.ckpt"


def _fit_and_evaluate(mini_nuscenes, run: Path) -> None:
    args = [
        "fit",
        "-c",
        str(TINY_CONFIG),
        *TINY_OVERRIDES,
        f"--data.dataroot={mini_nuscenes.dataroot}",
        f"--data.version={mini_nuscenes.version}",
        f"--data.cache_dir={run / 'cache'}",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--trainer.max_steps=2",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={run}",
        f"--trainer.logger.init_args.save_dir={run}",
        f"--trainer.callbacks.init_args.dirpath={run / 'ckpt'}",
    ]
    assert main(args) == 0
    ckpt = run / "ckpt" / "last.ckpt"
    assert ckpt.is_file()
    out = run / "report"
    code = main(
        [
            "eval",
            "open-loop",
            "--ckpt",
            str(ckpt),
            "--dataroot",
            str(mini_nuscenes.dataroot),
            "--version",
            mini_nuscenes.version,
            "--split",
            "train",  # the split holding the branch file
            "--out",
            str(out),
            "--cache-dir",
            str(run / "cache"),
            "--figures",
            "1",
            "--model-grid",  # the label-grid path is exercised by test_label_grid_scoring (cheaper there)
        ]
    )
    assert code == 0
