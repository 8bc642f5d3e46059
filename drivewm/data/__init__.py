"""nuScenes data pipeline over the official devkit: features vs targets, feature cache, DataModule."""

from drivewm.data.config import CAMERAS, DataConfig
from drivewm.data.dataset import NuScenesWorldDataset, cache_key, load_nuscenes, split_scenes
from drivewm.data.types import Batch, Features, Sample, Targets, collate

__all__ = [
    "CAMERAS",
    "Batch",
    "DataConfig",
    "Features",
    "NuScenesWorldDataset",
    "Sample",
    "Targets",
    "cache_key",
    "collate",
    "load_nuscenes",
    "split_scenes",
]
