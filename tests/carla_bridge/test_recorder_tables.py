"""nuScenes tables written by the recorder, loaded by the real devkit (no simulator involved)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from carla_bridge.recorder.tables import (
    AnnotationMeta,
    KeyframeMeta,
    SceneIds,
    calibrated_sensor_records,
    merge_tables,
    quaternion_to_yaw,
    scene_fragment,
    static_tables,
    visibility_token,
    write_tables,
    yaw_to_quaternion,
)
from carla_bridge.sensors.rig import RIG_PATH, CameraRig


def test_static_tables_are_the_real_ones() -> None:
    tables = static_tables()
    from carla_bridge.recorder.tables import load_static_reference

    ref = load_static_reference()
    for name in ("category", "attribute", "visibility", "sensor"):
        assert [r["token"] for r in tables[name]] == [r["token"] for r in ref[name]]
    assert tables["category"][0]["name"] == "human.pedestrian.adult"
    assert all(r["description"] for r in tables["attribute"])


def test_quaternion_round_trip_and_visibility_bins() -> None:
    for yaw in np.linspace(-3.1, 3.1, 13):
        q = yaw_to_quaternion(float(yaw))
        assert abs(np.linalg.norm(q) - 1) < 1e-12
        assert abs(math.remainder(quaternion_to_yaw(q) - yaw, 2 * math.pi)) < 1e-9
    assert [visibility_token(f) for f in (0.0, 0.39, 0.4, 0.59, 0.6, 0.79, 0.8, 1.0)] == list("11223344")


def _fragment(tmp_path, rig):
    ids = SceneIds("v1.0-sim-unit", "scene-0000", "carla-town01", "unit test", "2025-01-01")
    calibrated = calibrated_sensor_records(rig, json.loads(RIG_PATH.read_text()))
    keyframes = []
    for k in range(3):
        ts = 1_700_000_000_000_000 + k * 500_000
        files = {}
        for name in (*rig.names, "LIDAR_TOP"):
            ext = "pcd.bin" if name == "LIDAR_TOP" else "jpg"
            rel = f"samples/{name}/unit__{name}__{ts}.{ext}"
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_bytes(np.zeros((4, 5), np.float32).tobytes())
            files[name] = (rel, 0 if name == "LIDAR_TOP" else rig.width, 0 if name == "LIDAR_TOP" else rig.height)
        ego = (200.0 + 5.0 * k, 300.0, 0.0)
        anns = [  # a car 10 m straight ahead of the ego, a pedestrian only in the last two keyframes
            AnnotationMeta(
                7, "vehicle.car", (ego[0] + 10.0, ego[1], 0.8), (4.5, 1.9, 1.6), 0.0, "vehicle.moving", 1.0, 50
            )
        ]
        if k > 0:
            anns.append(
                AnnotationMeta(
                    9, "human.pedestrian.adult", (ego[0], ego[1] + 6, 0.9), (0.5, 0.6, 1.8), 1.0, None, 0.5, 3
                )
            )
        keyframes.append(KeyframeMeta(ts, ego, 0.0, files, anns))
    return ids, calibrated, scene_fragment(ids, keyframes, calibrated)


def test_devkit_loads_recorded_tables(tmp_path) -> None:
    from nuscenes.nuscenes import NuScenes

    rig = CameraRig.nuscenes(160, 90)
    ids, calibrated, frag = _fragment(tmp_path, rig)
    maps = [{"token": "m" * 32, "location": "carla-town01", "category": "semantic_prior", "filename": "maps/m.png"}]
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "m.png").write_bytes(b"")  # the devkit only checks that the basemap exists
    write_tables(tmp_path / ids.version, merge_tables([frag], calibrated, maps))
    nusc = NuScenes(version=ids.version, dataroot=str(tmp_path), verbose=False)
    assert len(nusc.scene) == 1 and nusc.scene[0]["nbr_samples"] == 3
    sample = nusc.get("sample", nusc.scene[0]["first_sample_token"])
    assert set(sample["data"]) == {*rig.names, "LIDAR_TOP"}
    # the car 10 m ahead sits on CAM_FRONT's optical axis, ~8.3 m deep (camera 1.7 m ahead of the rear axle)
    _, boxes, k = nusc.get_sample_data(sample["data"]["CAM_FRONT"])
    car = next(b for b in boxes if b.name == "vehicle.car")
    assert car.center[2] == pytest.approx(10.0 - 1.70079, abs=0.05)
    assert abs(car.center[0]) < 0.1 and car.wlh.tolist() == pytest.approx([1.9, 4.5, 1.6])
    assert k[0][0] == pytest.approx(1266.417203046554 * 160 / 1600)
    # instance chains: the pedestrian has 2 annotations, linked in time order
    ped = next(i for i in nusc.instance if nusc.get("category", i["category_token"])["name"].startswith("human"))
    first = nusc.get("sample_annotation", ped["first_annotation_token"])
    assert ped["nbr_annotations"] == 2 and first["prev"] == "" and first["next"] == ped["last_annotation_token"]
    assert first["size"] == [0.6, 0.5, 1.8]  # stored as w, l, h


def test_scene_fragment_rejects_bad_input(tmp_path) -> None:
    rig = CameraRig.nuscenes(160, 90)
    ids, calibrated, _ = _fragment(tmp_path, rig)
    with pytest.raises(ValueError, match="no keyframes"):
        scene_fragment(ids, [], calibrated)
    kf = KeyframeMeta(5, (0.0, 0.0, 0.0), 0.0, {}, [])
    with pytest.raises(ValueError, match="increase"):
        scene_fragment(ids, [kf, kf], calibrated)
