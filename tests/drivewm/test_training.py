"""Lightning training of the world model: loss goes down, checkpoints (weights_only, errors),
resume from the last checkpoint, DDP on CPU (gloo) in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from drivewm.data.types import collate
from drivewm.lightning_module import DriveWorldModule
from drivewm.model import ModelConfig
from drivewm.model.checkpoint import load_world_model
from tests.drivewm.synthetic_batches import TINY, synthetic_sample


def _loader(cfg: ModelConfig, n: int = 4, batch_size: int = 2) -> DataLoader:
    samples = [synthetic_sample(cfg, seed=i) for i in range(n)]
    return DataLoader(samples, batch_size=batch_size, collate_fn=collate, shuffle=False)


def _trainer(root: Path, max_steps: int, **kw) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kw,
    )


def _reference_outputs(model, batch) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        pred = model.rollout(model.encode(batch.features.observation()), batch.targets.ego_future[:, None])
    return {"obstacle_prob": pred.obstacle_prob, "agent_trajs": pred.agent_trajs}


def _train(root: Path) -> None:
    pl.seed_everything(0)
    cfg = ModelConfig(**TINY)
    module = DriveWorldModule(cfg, lr=3e-3, warmup_steps=1)
    loader = _loader(cfg)
    batch = next(iter(loader))
    with torch.no_grad():
        before = float(module.model.compute_loss(batch)["loss"])
    trainer = _trainer(root, max_steps=10, enable_checkpointing=False)
    trainer.fit(module, loader)
    with torch.no_grad():
        after = float(module.model.compute_loss(batch)["loss"])
    trainer.save_checkpoint(root / "model.ckpt")
    torch.save(_reference_outputs(module.model, batch), root / "reference.pt")
    (root / "losses.json").write_text(json.dumps({"before": before, "after": after}))


@pytest.fixture(scope="session")
def trained(build_once, one_torch_thread):
    """A tiny module trained for a few steps: (checkpoint, loss before, loss after, reference outputs);
    trained once per test run (shared by the xdist workers)."""
    with build_once("training_run") as (root, done):
        if not done.is_file():
            root.mkdir(parents=True, exist_ok=True)
            with one_torch_thread():
                _train(root)
            done.write_text("ok")
    losses = json.loads((root / "losses.json").read_text())
    return root / "model.ckpt", losses["before"], losses["after"], torch.load(root / "reference.pt", weights_only=True)


def test_lightning_steps_reduce_the_loss(trained):
    _, before, after, _ = trained
    assert after < 0.8 * before, (before, after)


def test_checkpoint_round_trip_with_weights_only(trained):
    ckpt, _, _, reference = trained
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)  # plain values only
    assert raw["hyper_parameters"]["config"]["bev_dim"] == TINY["bev_dim"]
    model = load_world_model(ckpt)
    batch = next(iter(_loader(ModelConfig(**TINY))))  # the same synthetic batch (seeded)
    got = _reference_outputs(model, batch)
    torch.testing.assert_close(got["obstacle_prob"], reference["obstacle_prob"])
    torch.testing.assert_close(got["agent_trajs"], reference["agent_trajs"])


def test_checkpoint_errors_are_clear(trained, tmp_path):
    ckpt = trained[0]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_world_model(tmp_path / "nope.ckpt")
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(ckpt.read_bytes()[:2000])
    with pytest.raises(ValueError, match="corrupt"):
        load_world_model(corrupt)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt"):
        load_world_model(garbage)
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    raw["hyper_parameters"]["config"]["bev_dim"] = 24
    mismatch = tmp_path / "mismatch.ckpt"
    torch.save(raw, mismatch)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_world_model(mismatch)
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="not a drivewm checkpoint"):
        load_world_model(tmp_path / "foreign.ckpt")


class _CountSteps(pl.Callback):
    def __init__(self) -> None:
        self.steps = 0

    def on_train_batch_end(self, *args, **kwargs) -> None:
        self.steps += 1


def test_resume_from_last_checkpoint(tmp_path):
    cfg = ModelConfig(**TINY)
    loader = _loader(cfg, n=4)
    ck = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=2)
    pl.seed_everything(0)
    first = DriveWorldModule(cfg)
    _trainer(tmp_path, max_steps=4, callbacks=[ck]).fit(first, loader)
    last = tmp_path / "ckpt" / "last.ckpt"
    assert last.is_file()
    counter = _CountSteps()
    ck2 = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=2)
    second = DriveWorldModule(cfg)
    trainer = _trainer(tmp_path, max_steps=6, callbacks=[ck2, counter])
    trainer.fit(second, loader, ckpt_path="last")
    assert trainer.global_step == 6 and counter.steps == 2  # continued at step 4, ran only 2 more


DDP_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader
    from tests.drivewm.synthetic_batches import synthetic_sample
    from drivewm.data.types import collate
    from drivewm.lightning_module import DriveWorldModule
    from drivewm.model import ModelConfig

    cfg = ModelConfig(**json.loads(sys.argv[1]))
    pl.seed_everything(0)
    loader = DataLoader([synthetic_sample(cfg, seed=i) for i in range(4)], batch_size=1, collate_fn=collate)
    module = DriveWorldModule(cfg)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader)
    trainer.save_checkpoint(sys.argv[2])  # collective (barrier); rank 0 writes
    if trainer.global_rank == 0:
        print("DDP_WORLD_SIZE", trainer.world_size, "STEPS", trainer.global_step)
    """
)


def test_ddp_two_cpu_processes_gloo(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    ckpt = tmp_path / "ddp.ckpt"
    # the script imports the repository's test-only batch builder
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(TINY), str(ckpt)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DDP_WORLD_SIZE 2 STEPS 2" in proc.stdout
    load_world_model(ckpt)
