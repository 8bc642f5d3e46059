"""The dataset, the data module and a few Lightning steps on the recorder's `sim_dataset` (the
real recording pipeline), cross-checked against the devkit's own geometry (`get_box`, ego poses)
and the branch files' plans."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pyquaternion import Quaternion

from drivewm.data import DataConfig, NuScenesWorldDataset
from drivewm.data.builders import extras_dir
from drivewm.data.datamodule import DriveDataModule
from drivewm.lightning_module import DriveWorldModule
from drivewm.model import ModelConfig
from occupancy import GridSpec
from occupancy.io import labels_path, read_labels
from occupancy.resample import downsample_labels
from tests.drivewm.synthetic_batches import TINY

TINY_MODEL = {**TINY, "max_agents": 8}


@pytest.fixture(scope="module")
def sim_train(sim_dataset, one_torch_thread):
    cfg = DataConfig.from_model(ModelConfig(**TINY_MODEL), max_branches=2)
    with one_torch_thread():
        return NuScenesWorldDataset(sim_dataset.dataroot, sim_dataset.version, "train", cfg, cache_dir="")


def _ego_pose(nusc, sample_token: str) -> tuple[np.ndarray, Quaternion]:
    sample = nusc.get("sample", sample_token)
    ep = nusc.get("ego_pose", nusc.get("sample_data", sample["data"]["LIDAR_TOP"])["ego_pose_token"])
    return np.array(ep["translation"]), Quaternion(ep["rotation"])


def test_samples_agree_with_the_devkit_geometry(sim_train):
    assert len(sim_train) > 0
    nusc = sim_train.nusc
    idx = len(sim_train) // 2
    s = sim_train[idx]
    assert s.features.images.shape == (6, 3, 32, 64) and not bool(s.features.route_is_command)
    assert bool(s.features.route_valid.any())
    # ego future via the devkit's quaternions (independent of agents.se2)
    t0, q0 = _ego_pose(nusc, s.token)
    token = s.token
    for step in range(6):
        token = nusc.get("sample", token)["next"]
        t1, _q1 = _ego_pose(nusc, token)
        local = q0.inverse.rotate(t1 - t0)
        np.testing.assert_allclose(
            s.targets.ego_future[step, :2].numpy(), local[:2], atol=0.05
        )  # SE(2) vs full 3D rotation
    # agents: the devkit Box moved into the ego frame
    for a in range(int(s.targets.agent_valid.sum())):
        xy = s.targets.agent_box[a, :2].numpy()
        boxes = [nusc.get_box(t) for t in nusc.get("sample", s.token)["anns"]]
        dists = []
        for box in boxes:
            box.translate(-t0)
            box.rotate(q0.inverse)
            dists.append(np.linalg.norm(box.center[:2] - xy))
        assert min(dists) < 0.05


def test_current_occupancy_matches_the_reference_downsampling(sim_train):
    s = sim_train[0]
    lab = read_labels(labels_path(sim_train.dataroot, sim_train.scene_name(0), s.token), grid=GridSpec.occ3d())
    ref = downsample_labels(torch.from_numpy(lab["semantics"]), GridSpec.occ3d(), sim_train.config.grid)
    assert torch.equal(s.targets.occ_now, ref)


def test_branches_carry_the_recorded_plans(sim_train, sim_dataset):
    branch_dir = extras_dir(sim_train.dataroot, sim_train.version) / "branches"
    tokens = {p.stem for p in branch_dir.glob("*.npz")}
    assert tokens, "sim_dataset has no branch files"
    val = NuScenesWorldDataset(sim_dataset.dataroot, sim_dataset.version, "val", sim_train.config, cache_dir="")
    # any branch keyframe of any scene (it need not have 6 future keyframes for the branch loader)
    scene, i = next(
        (sc, k) for ds in (sim_train, val) for sc in ds.scenes for k, f in enumerate(sc.frames) if f.token in tokens
    )
    token = scene.frames[i].token
    out = sim_train.targets._branches(scene, i, slot={})
    with np.load(branch_dir / f"{token}.npz") as z:
        plan, ego = z["plan"], z["ego"]
    k = min(2, plan.shape[0])
    assert out["branch_valid"][:k].all()
    np.testing.assert_allclose(out["branch_plans"][:k].numpy(), plan[:k], atol=1e-5)
    # the driven poses (global) seen from t0 stay close to the plan (tracking error)
    t0, q0 = _ego_pose(sim_train.nusc, token)
    driven = np.stack([q0.inverse.rotate(np.r_[p[:2], t0[2]] - t0)[:2] for p in ego[0]])
    assert np.abs(driven - plan[0, :, :2]).max() < 2.0
    assert bool((out["branch_occ"][:k] != 17).any())


def test_a_few_lightning_steps_on_the_recorded_data(sim_dataset, tmp_path):
    pl.seed_everything(0)
    cfg = ModelConfig(**TINY_MODEL)
    dm = DriveDataModule(
        str(sim_dataset.dataroot),
        sim_dataset.version,
        batch_size=2,
        cache_dir=str(tmp_path / "cache"),
        max_branches=2,
        model_config=cfg,
        limit_train=2,
        limit_val=2,
    )
    module = DriveWorldModule(cfg, lr=3e-3, warmup_steps=1)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    with torch.no_grad():
        before = float(module.model.compute_loss(batch)["loss"])
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=8,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=dm)
    with torch.no_grad():
        after = float(module.model.compute_loss(batch)["loss"])
    assert after < before, (before, after)
