"""The shared recorded dataset (`sim_dataset`), checked with the official nuScenes devkit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from carla_bridge.recorder.devkit_maps import load_nuscenes_map
from carla_bridge.recorder.tables import quaternion_to_yaw
from carla_bridge.sensors.rig import CAMERAS


@pytest.fixture(scope="module")
def nusc(sim_dataset):
    from nuscenes.nuscenes import NuScenes

    return NuScenes(version=sim_dataset.version, dataroot=str(sim_dataset.dataroot), verbose=False)


def _to_ego(nusc, sample, xyz):
    """Global point → ego frame of the sample's LIDAR_TOP ego pose (x, y, z)."""
    sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    pose = nusc.get("ego_pose", sd["ego_pose_token"])
    yaw = quaternion_to_yaw(pose["rotation"])
    d = np.asarray(xyz, dtype=np.float64) - np.asarray(pose["translation"])
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]]), yaw


def test_devkit_loads_scenes_and_splits(nusc, sim_dataset, capsys) -> None:
    cfg = sim_dataset.config
    nusc.list_scenes()
    assert "scene-0000" in capsys.readouterr().out
    assert len(nusc.scene) == cfg.scenes
    assert all(s["nbr_samples"] == cfg.num_keyframes for s in nusc.scene)
    ext = sim_dataset.dataroot / "drivewm" / sim_dataset.version
    splits = json.loads((ext / "splits.json").read_text())
    assert splits["held_out_towns"] == ["Town02"]
    assert splits["val"] == ["scene-0001"] and splits["train"] == ["scene-0000"]  # scene 1 is in Town02
    gen = json.loads((ext / "generator.json").read_text())
    assert gen["config"] == cfg.to_dict() and gen["git_commit"]
    for scene in nusc.scene:
        route = json.loads((ext / "routes" / f"{scene['name']}.json").read_text())
        assert len(route["polyline"]) > 10
        assert min(min(p) for p in route["polyline"]) >= 0.0  # global frame is non-negative
        lights = json.loads((ext / "lights" / f"{scene['name']}.json").read_text())
        assert len(lights) == scene["nbr_samples"]
        for state, dist in lights.values():
            assert state in (0, 1, 2) and (dist is None) == (state == 2)
    cats = {nusc.get("category", i["category_token"])["name"] for i in nusc.instance}
    assert "vehicle.car" in cats


def test_data_check_passes(sim_dataset, capsys) -> None:
    from drivewm.cli import main

    assert main(["data", "check", str(sim_dataset.dataroot), "--version", sim_dataset.version]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("OK")
    assert "projections failed: 0" in out


def test_camera_boxes_and_rendering(nusc, tmp_path) -> None:
    from nuscenes.utils.geometry_utils import view_points

    seen = 0
    for sample in nusc.sample[::2]:  # every other keyframe (each check costs six devkit box transforms)
        for ann_tok in sample["anns"]:
            ann = nusc.get("sample_annotation", ann_tok)
            if ann["visibility_token"] != "4" or np.linalg.norm(_to_ego(nusc, sample, ann["translation"])[0][:2]) < 5:
                continue  # (an object touching the ego may enclose the cameras)
            # a fully visible object projects inside at least one camera image
            for cam in CAMERAS:
                sd = nusc.get("sample_data", sample["data"][cam])
                _, boxes, k = nusc.get_sample_data(sd["token"], selected_anntokens=[ann_tok])
                if boxes and boxes[0].center[2] > 1.0:
                    uv = view_points(boxes[0].center[:, None], np.asarray(k), normalize=True)[:2, 0]
                    if 0 <= uv[0] < sd["width"] and 0 <= uv[1] < sd["height"]:
                        seen += 1
                        break
            else:
                pytest.fail(f"fully visible annotation {ann_tok} projects into no camera")
    assert seen > 0
    sample = nusc.sample[len(nusc.sample) // 2]
    for channel in ("CAM_FRONT", "LIDAR_TOP"):
        out = tmp_path / f"{channel}.png"
        nusc.render_sample_data(sample["data"][channel], out_path=str(out), verbose=False)
        assert out.stat().st_size > 1000
    from nuscenes.utils.data_classes import LidarPointCloud

    pc = LidarPointCloud.from_file(str(nusc.get_sample_data_path(sample["data"]["LIDAR_TOP"])))
    assert pc.points.shape[0] == 4 and pc.points.shape[1] > 1000


def test_map_queries(nusc, sim_dataset, tmp_path) -> None:
    moving = 0
    for log in nusc.log:
        nmap = load_nuscenes_map(sim_dataset.dataroot, log["location"])
        scenes = [s for s in nusc.scene if s["log_token"] == log["token"]]
        for scene in scenes:
            tok = scene["first_sample_token"]
            while tok:
                sample = nusc.get("sample", tok)
                for ann_tok in sample["anns"]:
                    ann = nusc.get("sample_annotation", ann_tok)
                    attrs = [nusc.get("attribute", a)["name"] for a in ann["attribute_tokens"]]
                    if "vehicle.moving" not in attrs:
                        continue
                    x, y = ann["translation"][:2]
                    lane = nmap.get_closest_lane(x, y, radius=2.0)
                    assert lane, f"no lane within 2 m of moving vehicle {ann_tok} at {x:.1f}, {y:.1f}"
                    pts = np.asarray(nmap.discretize_lanes([lane], 0.5)[lane])[:, :2]
                    assert np.linalg.norm(pts - [x, y], axis=1).min() <= 2.0
                    moving += 1
                tok = sample["next"]
        first = nusc.get("sample", scenes[0]["first_sample_token"])
        ex, ey = nusc.get("ego_pose", nusc.get("sample_data", first["data"]["LIDAR_TOP"])["ego_pose_token"])[
            "translation"
        ][:2]
        mask = nmap.get_map_mask((ex, ey, 40, 40), 0, ["drivable_area"], (80, 80))
        assert mask.shape == (1, 80, 80) and mask[0, 38:42, 38:42].all()  # the ego stands on drivable area
        basemap = nusc.get("map", log["map_token"])["mask"]
        for scene in scenes:  # the basemap (semantic prior) is under every ego pose
            for sd in nusc.sample_data:
                if (
                    sd["channel"] == "LIDAR_TOP"
                    and nusc.get("sample", sd["sample_token"])["scene_token"] == scene["token"]
                ):
                    px, py = nusc.get("ego_pose", sd["ego_pose_token"])["translation"][:2]
                    assert basemap.is_on_mask(px, py)[0]
        fig, _ = nmap.render_map_patch(
            (ex - 50, ey - 50, ex + 50, ey + 50),
            ["drivable_area", "lane", "ped_crossing", "walkway"],
            render_egoposes_range=False,
        )
        fig.savefig(tmp_path / f"{log['location']}.png")
        assert (tmp_path / f"{log['location']}.png").stat().st_size > 1000
    assert moving > 0


def test_prediction_helper_returns_recorded_future(nusc) -> None:
    from nuscenes.prediction import PredictHelper

    helper = PredictHelper(nusc)
    checked = 0
    for inst in nusc.instance:
        if inst["nbr_annotations"] < 7:
            continue
        ann = nusc.get("sample_annotation", inst["first_annotation_token"])
        future = helper.get_future_for_agent(inst["token"], ann["sample_token"], seconds=3, in_agent_frame=False)
        expected, tok = [], ann["next"]
        while tok and len(expected) < 6:
            nxt = nusc.get("sample_annotation", tok)
            expected.append(nxt["translation"][:2])
            tok = nxt["next"]
        np.testing.assert_allclose(future, np.asarray(expected), atol=1e-6)
        checked += 1
    assert checked > 0


def test_labels_match_the_scene(nusc, sim_dataset) -> None:
    from occupancy.grid import GridSpec
    from occupancy.io import read_labels

    grid = GridSpec.occ3d()
    cars = 0
    for sample in nusc.sample:
        scene = nusc.get("scene", sample["scene_token"])
        labels = read_labels(sim_dataset.dataroot / "gts" / scene["name"] / sample["token"] / "labels.npz", grid)
        sem = labels["semantics"]
        assert (sem == 17).any() and np.isin(sem, (11, 12, 13, 14)).any()
        assert labels["mask_camera"].any() and labels["mask_lidar"].any()
        for ann_tok in sample["anns"]:
            ann = nusc.get("sample_annotation", ann_tok)
            if (
                nusc.get("category", nusc.get("instance", ann["instance_token"])["category_token"])["name"]
                != "vehicle.car"
            ):
                continue
            p, _ = _to_ego(nusc, sample, ann["translation"])
            pt = torch.tensor(p, dtype=torch.float32)
            if not bool(grid.contains(pt)):
                continue
            ix, iy, iz = grid.world_to_voxel(pt).tolist()
            assert sem[ix, iy, iz] == 4, f"voxel at car {ann_tok} is class {sem[ix, iy, iz]}"
            cars += 1
    assert cars > 0


def test_branch_files(nusc, sim_dataset) -> None:
    from carla_bridge.recorder.branches import HORIZON_STEPS

    ext = sim_dataset.dataroot / "drivewm" / sim_dataset.version / "branches"
    files = sorted(ext.glob("*.npz"))
    assert len(files) >= sim_dataset.config.scenes  # at least one branch point per scene
    instances = {i["token"] for i in nusc.instance}
    for path in files:
        sample = nusc.get("sample", path.stem)
        with np.load(path) as z:
            k = sim_dataset.config.branches
            assert z["ego"].shape == (k, HORIZON_STEPS, 3) and z["plan"].shape == (k, HORIZON_STEPS, 3)
            assert z["semantics"].shape == (k, HORIZON_STEPS, 200, 200, 16) and z["semantics"].dtype == np.uint8
            assert list(z["plan_kind"]) == ["keep", "brake"]
            assert set(z["instance_tokens"].tolist()) <= instances | {""}
            # the braking branch travels less far than keeping speed
            lidar = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
            e0 = np.asarray(nusc.get("ego_pose", lidar["ego_pose_token"])["translation"][:2])
            travelled = np.linalg.norm(z["ego"][:, -1, :2] - e0, axis=1)
            assert travelled[1] <= travelled[0] + 0.5
            # the driven ego follows its plan (plan in the t0 ego frame, ego in the global frame)
            ego_z = nusc.get("ego_pose", lidar["ego_pose_token"])["translation"][2]
            p, _ = _to_ego(nusc, sample, [*z["ego"][0, -1, :2], ego_z])
            assert np.linalg.norm(p[:2] - z["plan"][0, -1, :2]) < 3.0
