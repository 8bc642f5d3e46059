"""Occ3D class table and labels.npz I/O."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from agents.states import AgentClass
from occupancy.classes import (
    AGENT_CLASS_TO_NUSCENES_CATEGORY,
    AGENT_CLASS_TO_OCC3D,
    NUM_CLASSES,
    NUSCENES_CATEGORY_TO_OCC3D,
    OCC3D_CLASSES,
    OCC3D_COLORS,
    Occ3DClass,
    agent_class_to_occ3d_lut,
    class_id,
    load_occ3d_table,
)
from occupancy.grid import GridSpec
from occupancy.io import labels_path, read_labels, write_labels


def test_class_table_matches_vendored_reference():
    table = load_occ3d_table()
    assert len(OCC3D_CLASSES) == NUM_CLASSES == table["num_classes"] == 18
    assert Occ3DClass.FREE == table["free_label"] == 17
    assert [table["occ3d_nuscenes_classes"][str(i)] for i in range(18)] == list(OCC3D_CLASSES)
    assert OCC3D_COLORS.shape == (18, 3) and OCC3D_COLORS.dtype == np.uint8
    assert len({tuple(c) for c in OCC3D_COLORS}) == 18  # distinguishable


def test_nuscenes_category_mapping_follows_lidarseg_names():
    table = load_occ3d_table()
    by_name = table["lidarseg32_to_occ16_by_name"]
    assert set(NUSCENES_CATEGORY_TO_OCC3D) == set(by_name)
    for cat, occ_name in by_name.items():
        expected = 0 if occ_name == "ignore" else class_id(occ_name)
        assert NUSCENES_CATEGORY_TO_OCC3D[cat] == expected, cat
    assert NUSCENES_CATEGORY_TO_OCC3D["vehicle.emergency.police"] == 0  # no class -> others
    assert NUSCENES_CATEGORY_TO_OCC3D["flat.sidewalk"] == 13


def test_agent_class_mappings_cover_every_class():
    assert set(AGENT_CLASS_TO_OCC3D) == set(AgentClass) == set(AGENT_CLASS_TO_NUSCENES_CATEGORY)
    names = {c: OCC3D_CLASSES[AGENT_CLASS_TO_OCC3D[c]] for c in AgentClass}
    assert names[AgentClass.CAR] == "car"
    assert names[AgentClass.PEDESTRIAN] == "pedestrian"
    assert names[AgentClass.TRAFFIC_CONE] == "traffic_cone"
    assert names[AgentClass.CONSTRUCTION_VEHICLE] == "construction_vehicle"
    assert AGENT_CLASS_TO_NUSCENES_CATEGORY[AgentClass.BUS] == "vehicle.bus.rigid"
    lut = agent_class_to_occ3d_lut()
    for c in AgentClass:
        assert lut[int(c)] == AGENT_CLASS_TO_OCC3D[c]
    with pytest.raises(ValueError, match="unknown Occ3D class"):
        class_id("spaceship")


def _random_labels(rng, shape=(200, 200, 16)):
    sem = rng.integers(0, 18, shape).astype(np.uint8)
    return sem, rng.random(shape) < 0.5, rng.integers(0, 2, shape).astype(np.uint8)


def test_labels_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    sem, ml, mc = _random_labels(rng)
    path = labels_path(tmp_path, "scene-0001", "abc123")
    assert path == tmp_path / "gts" / "scene-0001" / "abc123" / "labels.npz"
    write_labels(path, torch.from_numpy(sem), ml, mc)
    out = read_labels(path)
    assert set(out) == {"semantics", "mask_lidar", "mask_camera"}
    np.testing.assert_array_equal(out["semantics"], sem)
    np.testing.assert_array_equal(out["mask_lidar"], ml.astype(np.uint8))
    np.testing.assert_array_equal(out["mask_camera"], mc)
    assert all(a.dtype == np.uint8 for a in out.values())
    assert [p.name for p in path.parent.iterdir()] == ["labels.npz"]  # no temp file left
    # a coarse grid is accepted when named
    g = GridSpec.occ3d().coarsen(2)
    sem2, ml2, mc2 = _random_labels(rng, g.shape)
    write_labels(tmp_path / "c.npz", sem2, ml2, mc2, grid=g)
    np.testing.assert_array_equal(read_labels(tmp_path / "c.npz", grid=g)["semantics"], sem2)
    with pytest.raises(ValueError, match="semantics.*shape"):
        read_labels(tmp_path / "c.npz")


def test_write_rejects_bad_input(tmp_path):
    rng = np.random.default_rng(1)
    sem, ml, mc = _random_labels(rng)
    with pytest.raises(ValueError, match="semantics.*shape"):
        write_labels(tmp_path / "a.npz", sem[:10], ml, mc)
    with pytest.raises(ValueError, match="class id 18"):
        write_labels(tmp_path / "a.npz", np.full_like(sem, 18), ml, mc)
    with pytest.raises(ValueError, match="mask_camera"):
        write_labels(tmp_path / "a.npz", sem, ml, mc.astype(np.float32))
    with pytest.raises(ValueError, match="mask_lidar.*0/1"):
        write_labels(tmp_path / "a.npz", sem, ml.astype(np.uint8) * 3, mc)
    with pytest.raises(ValueError, match="scene_name"):
        labels_path(tmp_path, "../x", "t")
    assert not (tmp_path / "a.npz").exists()


def test_read_missing_and_malformed(tmp_path):
    rng = np.random.default_rng(2)
    sem, ml, mc = _random_labels(rng)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        read_labels(tmp_path / "nope.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        read_labels(garbage)
    missing = tmp_path / "missing.npz"
    np.savez_compressed(missing, semantics=sem, mask_lidar=ml.astype(np.uint8))
    with pytest.raises(ValueError, match="missing.npz.*mask_camera"):
        read_labels(missing)
    wrong_dtype = tmp_path / "dtype.npz"
    np.savez_compressed(wrong_dtype, semantics=sem.astype(np.int32), mask_lidar=ml.astype(np.uint8), mask_camera=mc)
    with pytest.raises(ValueError, match="dtype.npz.*semantics.*uint8"):
        read_labels(wrong_dtype)
    wrong_shape = tmp_path / "shape.npz"
    np.savez_compressed(wrong_shape, semantics=sem[:, :, :8], mask_lidar=ml[:, :, :8].astype(np.uint8), mask_camera=mc)
    with pytest.raises(ValueError, match="shape.npz.*semantics.*shape"):
        read_labels(wrong_shape)
    out_of_range = tmp_path / "range.npz"
    np.savez_compressed(out_of_range, semantics=sem + 20, mask_lidar=ml.astype(np.uint8), mask_camera=mc)
    with pytest.raises(ValueError, match="range.npz.*semantics.*outside"):
        read_labels(out_of_range)
    truncated = tmp_path / "trunc.npz"
    write_labels(truncated, sem, ml, mc)
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(ValueError, match="trunc.npz"):
        read_labels(truncated)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, semantics=np.array([{"a": 1}], dtype=object), mask_lidar=ml, mask_camera=mc)
    with pytest.raises(ValueError, match="pickled.npz"):
        read_labels(pickled)
    assert zipfile.is_zipfile(pickled)  # a valid zip: the content is what is wrong
