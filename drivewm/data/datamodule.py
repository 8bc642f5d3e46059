"""`DriveDataModule`: train/val `NuScenesWorldDataset`s with the feature cache built up front."""

from __future__ import annotations

import pytorch_lightning as pl
from jsonargparse.typing import NonNegativeInt, PositiveInt
from torch.utils.data import DataLoader

from drivewm.model.config import ModelConfig

from .config import DataConfig
from .dataset import NuScenesWorldDataset, load_nuscenes
from .types import collate


class DriveDataModule(pl.LightningDataModule):
    """Lightning data module.

    Args:
        dataroot: dataset root.
        version: table folder (`v1.0-sim-NAME`, `v1.0-mini`, `v1.0-trainval`).
        batch_size: per device.
        num_workers: DataLoader workers.
        cache_dir: feature cache root (default `DIR/drivewm/<version>/cache`; "" disables it).
        train_split, val_split: split names.
        max_branches: counterfactual branch slots per sample.
        model_config: the model's config (image size, grid, horizons); LightningCLI links it from
            `model.config`.
        limit_train, limit_val: use only the first n samples (0 = all), for short schedules.
    """

    def __init__(
        self,
        dataroot: str,
        version: str,
        batch_size: PositiveInt = 4,
        num_workers: NonNegativeInt = 0,
        cache_dir: str | None = None,
        train_split: str = "train",
        val_split: str = "val",
        max_branches: NonNegativeInt = 4,
        model_config: ModelConfig | None = None,
        limit_train: NonNegativeInt = 0,
        limit_val: NonNegativeInt = 0,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("num_workers", num_workers, 0),
            ("max_branches", max_branches, 0),
            ("limit_train", limit_train, 0),
            ("limit_val", limit_val, 0),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"data.{name} must be an integer ≥ {low}, got {value!r}")
        self.save_hyperparameters(
            {
                "dataroot": str(dataroot),
                "version": version,
                "batch_size": int(batch_size),  # a plain int: checkpoints load with weights_only=True
                "num_workers": int(num_workers),
                "cache_dir": cache_dir,
                "train_split": train_split,
                "val_split": val_split,
                "max_branches": int(max_branches),
                "limit_train": int(limit_train),
                "limit_val": int(limit_val),
            }
        )
        self.data_config = DataConfig.from_model(model_config or ModelConfig(), max_branches=int(max_branches))
        self.train_set: NuScenesWorldDataset | None = None
        self.val_set: NuScenesWorldDataset | None = None

    def _dataset(self, split: str, nusc) -> NuScenesWorldDataset:
        hp = self.hparams
        return NuScenesWorldDataset(hp.dataroot, hp.version, split, self.data_config, hp.cache_dir, nusc=nusc)

    def prepare_data(self) -> None:
        """Build the feature caches (rank 0 only; resumable, with progress)."""
        nusc = load_nuscenes(self.hparams.dataroot, self.hparams.version)
        for split in (self.hparams.train_split, self.hparams.val_split):
            self._limited(self._dataset(split, nusc), split).build_cache()

    def _limited(self, ds: NuScenesWorldDataset, split: str) -> NuScenesWorldDataset:
        n = self.hparams.limit_train if split == self.hparams.train_split else self.hparams.limit_val
        if n > 0:
            ds.index = ds.index[:n]
        return ds

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        nusc = load_nuscenes(self.hparams.dataroot, self.hparams.version)
        self.train_set = self._limited(self._dataset(self.hparams.train_split, nusc), self.hparams.train_split)
        self.val_set = self._limited(self._dataset(self.hparams.val_split, nusc), self.hparams.val_split)
        if len(self.train_set) == 0:
            raise ValueError(f"split {self.hparams.train_split!r} of {self.hparams.version} has no usable keyframes")

    def _loader(self, ds, shuffle: bool) -> DataLoader:
        return DataLoader(
            ds,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
            collate_fn=collate,
            drop_last=shuffle and len(ds) > self.hparams.batch_size,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)
