"""The dataset over the official devkit, checked against closed-form ground truth of the
hand-written `mini_nuscenes` fixture (straight ego at 5 m/s, a parked car, a lead car at 6 m/s, a
crossing pedestrian, one branch file), plus the feature cache and the recorder's `sim_dataset`."""

from __future__ import annotations

import math
import shutil
from dataclasses import fields

import pytest
import torch

from agents import AgentClass
from drivewm.data import DataConfig, NuScenesWorldDataset, collate, load_nuscenes
from drivewm.data.builders import COMMAND_LEFT, FeatureBuilder, SceneIndex, command_route
from drivewm.data.types import Features, Targets
from occupancy import GridSpec

TINY_DATA = DataConfig(image_size=[48, 80], max_agents=6, max_branches=3)


@pytest.fixture(scope="module")
def train_set(mini_nuscenes, one_torch_thread):
    with one_torch_thread():
        return NuScenesWorldDataset(mini_nuscenes.dataroot, mini_nuscenes.version, "train", TINY_DATA, cache_dir="")


def _close(a, b, tol=1e-4):
    torch.testing.assert_close(
        torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), atol=tol, rtol=0
    )


def test_index_and_splits(train_set, mini_nuscenes):
    assert len(train_set) == 3  # 9 keyframes, 6 future keyframes needed
    assert [train_set.scene_name(i) for i in range(3)] == ["scene-0000"] * 3
    val = NuScenesWorldDataset(mini_nuscenes.dataroot, mini_nuscenes.version, "val", TINY_DATA, cache_dir="")
    assert {val.scene_name(i) for i in range(len(val))} == {"scene-0001"}
    with pytest.raises(ValueError, match="split 'test'"):
        NuScenesWorldDataset(mini_nuscenes.dataroot, mini_nuscenes.version, "test", TINY_DATA, cache_dir="")


def test_features_match_closed_form(train_set, mini_nuscenes):
    s = train_set[1]  # keyframe 1 of scene-0000
    f = s.features
    assert f.images.shape == (6, 3, 48, 80) and f.images.dtype == torch.uint8
    nusc = train_set.nusc
    sample = nusc.get("sample", s.token)
    cs = nusc.get("calibrated_sensor", nusc.get("sample_data", sample["data"]["CAM_FRONT"])["calibrated_sensor_token"])
    k = torch.tensor(cs["camera_intrinsic"])
    _close(f.intrinsics[0, 0], k[0] * 80 / 320)
    _close(f.intrinsics[0, 1], k[1] * 48 / 180)
    _close(f.cam_to_ego[0, :3, 3], cs["translation"])
    from pyquaternion import Quaternion

    _close(f.cam_to_ego[0, :3, :3], Quaternion(cs["rotation"]).rotation_matrix)
    # ego history: keyframe 0 repeated (scene start), then now
    _close(f.ego_history, [[-2.5, 0, 0]] * 4 + [[0, 0, 0]])
    _close(f.speed, 5.0)
    _close(f.ego_pose, [100 + 2.5 * math.cos(0.3), 200 + 2.5 * math.sin(0.3), 0.3], tol=1e-3)
    # route: straight ahead from 10 m behind, 2 m spacing
    r = torch.arange(TINY_DATA.route_points) * 2.0 - 10.0
    _close(f.route, torch.stack([r, torch.zeros_like(r)], -1))
    assert bool(f.route_valid.all()) and not bool(f.route_is_command)
    # previous keyframe
    assert bool(f.prev_valid)
    _close(f.prev_ego_pose, [100.0, 200.0, 0.3], tol=1e-3)
    assert not bool(train_set[0].features.prev_valid)


def test_targets_match_closed_form(train_set):
    tg = train_set[1].targets
    t = torch.arange(1, 7) * 0.5
    _close(tg.ego_future, torch.stack([5.0 * t, torch.zeros(6), torch.zeros(6)], -1))
    assert int(tg.agent_valid.sum()) == 3
    # nearest first: lead car (10.5, 0), pedestrian (12.5, -5.4), parked car (17.5, 4)
    _close(tg.agent_box[:3, :2], [[10.5, 0.0], [12.5, -5.4], [17.5, 4.0]])
    _close(tg.agent_box[:3, 3], [0.0, math.pi / 2, 0.0])
    _close(tg.agent_box[:3, 4:7], [[4.5, 1.9, 1.6], [0.7, 0.7, 1.8], [4.5, 1.9, 1.6]])
    assert tg.agent_cls[:3].tolist() == [AgentClass.CAR, AgentClass.PEDESTRIAN, AgentClass.CAR]
    _close(tg.agent_velocity[:3], [[6.0, 0.0], [0.0, 1.2], [0.0, 0.0]])
    _close(tg.agent_future[0, :, :2], torch.stack([10.5 + 6.0 * t, torch.zeros(6)], -1))  # lead car, 6 m/s
    _close(tg.agent_future[2, :, :2], torch.tensor([[17.5, 4.0]] * 6))  # parked
    assert bool(tg.agent_future_valid[:3].all()) and not bool(tg.agent_future_valid[3:].any())
    # collision boxes at every future step: the three agents
    assert tg.future_boxes_valid.sum(-1).tolist() == [3] * 6


def _around(centres: torch.Tensor, xy) -> torch.Tensor:
    """Voxels within a car-sized window (x ±3.2 m, y ±1.8 m) around `xy`."""
    d = centres[..., :2] - torch.tensor(xy)
    return (d[..., 0].abs() < 3.2) & (d[..., 1].abs() < 1.8)


def test_traffic_light_targets(train_set):
    states = [(int(train_set[i].targets.light_state), float(train_set[i].targets.light_distance)) for i in range(3)]
    assert states == [(-1, -1.0), (0, 23.5), (2, -1.0)]  # keyframe 0 has no entry


def test_future_occupancy_is_warped_into_the_current_frame(train_set):
    tg = train_set[1].targets
    grid = TINY_DATA.grid
    centres = grid.voxel_centers()
    t = torch.arange(1, 7) * 0.5
    assert tg.occ.shape == (6, *grid.shape) and tg.occ.dtype == torch.uint8
    for step in range(6):
        car = tg.occ[step] == 4
        # the parked car is static in the world, so in the current frame it stays at (17.5, 4)
        near_parked = car & _around(centres, (17.5, 4.0))
        assert int(near_parked.sum()) > 0
        c = centres[near_parked][:, :2].mean(0)
        assert (c - torch.tensor([17.5, 4.0])).norm() < 1.0, (step, c)
        # the lead car moves at 6 m/s: (10.5 + 6 t, 0)
        lead_xy = torch.tensor([10.5 + 6.0 * float(t[step]), 0.0])
        near_lead = car & _around(centres, lead_xy.tolist())
        c = centres[near_lead][:, :2].mean(0)
        assert (c - lead_xy).norm() < 1.0, (step, c, lead_xy)
        assert bool((tg.occ[step] == 7).any())  # the pedestrian
        assert bool((tg.occ[step] == 11).any())  # ground
    assert tg.occ_mask.dtype == torch.bool and 0.5 < float(tg.occ_mask.float().mean()) < 1.0


def test_branches_are_loaded_in_the_current_frame(train_set, mini_nuscenes):
    assert train_set.token(1) == mini_nuscenes.branch_sample
    tg = train_set[1].targets
    t = torch.arange(1, 7) * 0.5
    assert tg.branch_valid.tolist() == [True, True, False]
    _close(tg.branch_plans[0, :, :2], torch.stack([5.0 * t, torch.zeros(6)], -1))
    _close(tg.branch_plans[1, :, :2], torch.stack([5.0 * t, t], -1))
    # the lead car (slot 0): keeps going in branch 0, stops in branch 1
    _close(tg.branch_agent_future[0, 0, :, 0], 10.5 + 6.0 * t)
    _close(tg.branch_agent_future[1, 0, :, 0], torch.full((6,), 10.5))
    assert bool(tg.branch_agent_valid[:2, 0].all()) and not bool(tg.branch_agent_valid[:, 1:].any())
    assert bool((tg.branch_occ[:2] == 4).any()) and bool((tg.branch_occ[2] == 17).all())
    assert not bool(train_set[0].targets.branch_valid.any())


def test_features_never_read_annotations_or_labels(mini_nuscenes, monkeypatch):
    nusc = load_nuscenes(mini_nuscenes.dataroot, mini_nuscenes.version)
    real_get = nusc.get

    def guarded(table, token):
        if table in ("sample_annotation", "instance"):
            raise AssertionError(f"feature builder read {table}")
        return real_get(table, token)

    monkeypatch.setattr(nusc, "get", guarded)
    monkeypatch.setattr("drivewm.data.builders.read_labels", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    builder = FeatureBuilder(nusc, mini_nuscenes.dataroot, mini_nuscenes.version, TINY_DATA)
    scene = SceneIndex(nusc, nusc.scene[0]["token"])
    feats = builder.build(scene, 2)
    assert isinstance(feats, Features) and not hasattr(feats, "ego_future")
    assert {f.name for f in fields(Features)}.isdisjoint({f.name for f in fields(Targets)})


def test_command_fallback_for_real_nuscenes_is_marked(mini_nuscenes):
    nusc = load_nuscenes(mini_nuscenes.dataroot, mini_nuscenes.version)
    builder = FeatureBuilder(nusc, mini_nuscenes.dataroot, "v1.0-mini", TINY_DATA)  # no routes for this version
    scene = SceneIndex(nusc, nusc.scene[0]["token"])
    route, valid, leaks = builder.route(scene, 1)
    assert leaks and bool(valid.all())
    assert builder.command(scene, 1) == 1  # straight ahead
    left, _ = command_route(COMMAND_LEFT, TINY_DATA)
    assert float(left[-1, 1]) > 10.0 and float(route[:, 1].abs().max()) == 0.0


def test_feature_cache_builds_resumes_and_rebuilds(mini_nuscenes, tmp_path):
    root = mini_nuscenes.dataroot
    ds = NuScenesWorldDataset(root, mini_nuscenes.version, "train", TINY_DATA, cache_dir=tmp_path)
    assert ds.build_cache(progress=False) == 3
    assert ds.build_cache(progress=False) == 0  # resumes: nothing left
    ds.cache_path(0).unlink()
    assert ds.build_cache(progress=False) == 1
    fresh = ds.build(2)
    cached = ds[2]
    for name in (f.name for f in fields(Targets)):
        assert torch.equal(getattr(fresh.targets, name), getattr(cached.targets, name)), name
    assert torch.equal(fresh.features.images, cached.features.images)
    # a corrupt entry is rebuilt on access
    ds.cache_path(1).write_bytes(b"garbage")
    assert torch.equal(ds[1].targets.agent_box, ds.build(1).targets.agent_box)
    assert ds._read(ds.cache_path(1)) is not None
    # another config → another key, never the stale files
    other = NuScenesWorldDataset(
        root, mini_nuscenes.version, "train", DataConfig(image_size=[32, 64]), cache_dir=tmp_path
    )
    assert other.cache_dir != ds.cache_dir and len(other.missing()) == 3
    strict = NuScenesWorldDataset(
        root, mini_nuscenes.version, "train", DataConfig(image_size=[32, 64]), cache_dir=tmp_path, build_missing=False
    )
    with pytest.raises(FileNotFoundError, match="feature cache entry"):
        strict[0]


def test_missing_dataset_and_files_give_clear_errors(mini_nuscenes, tmp_path):
    with pytest.raises(FileNotFoundError, match="no nuScenes tables"):
        NuScenesWorldDataset(tmp_path, "v1.0-sim-none", "train", TINY_DATA)
    copy = tmp_path / "copy"
    shutil.copytree(mini_nuscenes.dataroot, copy)
    label = next((copy / "gts" / "scene-0000").iterdir()) / "labels.npz"
    label.unlink()
    ds = NuScenesWorldDataset(copy, mini_nuscenes.version, "train", TINY_DATA, cache_dir="")
    with pytest.raises(FileNotFoundError, match="labels.npz"):
        for i in range(len(ds)):
            ds[i]
    (copy / "drivewm" / mini_nuscenes.version / "routes" / "scene-0000.json").unlink()
    ds = NuScenesWorldDataset(copy, mini_nuscenes.version, "train", TINY_DATA, cache_dir="")
    with pytest.raises(FileNotFoundError, match="route file"):
        ds.features.route(ds.scenes[0], 1)


def test_collate_batches_samples(train_set):
    batch = collate([train_set[0], train_set[1]])
    assert batch.features.images.shape[0] == 2 and batch.targets.occ.shape[0] == 2
    batch.features.observation().validate()


def test_label_grid_ground_truth_for_evaluation(train_set):
    sem, mask, now, _now_mask = train_set.full_labels(1)
    assert sem.shape == (6, *GridSpec.occ3d().shape) and mask.dtype == torch.bool
    assert now.shape == GridSpec.occ3d().shape and bool((now == 4).any())
