"""`NuScenesWorldDataset`: keyframes of a split, read through the official devkit, cached on disk.

Works unchanged on generated datasets (`v1.0-sim-*`, FORMATS.md) and on real nuScenes
(`v1.0-trainval`/`v1.0-mini` with Occ3D-nuScenes `gts/` unpacked in the dataroot).

Cache: `<cache_dir>/<key>/<sample_token>.pt`, one file per sample (features + targets, plain
tensors, loadable with `weights_only=True`), written atomically. `key` hashes the `DataConfig`,
the version, the dataroot, the generator record (`drivewm/<version>/generator.json`) and the cache
format, so any change gives a fresh cache (a stale one is never read). Building shows progress and
resumes: finished files are kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path

import torch
from torch.utils.data import Dataset

from occupancy.atomic import atomic_path, write_json_atomic
from occupancy.reading import CorruptFileError, find_corrupt_json, read_json

from .builders import FeatureBuilder, SceneIndex, TargetBuilder, extras_dir
from .config import REAL_NUSCENES_VERSIONS, DataConfig
from .types import Features, Sample, Targets

CACHE_FORMAT = 3
DEVKIT_SPLITS = {
    "v1.0-trainval": {"train": "train", "val": "val"},
    "v1.0-mini": {"train": "mini_train", "val": "mini_val"},
}


def load_nuscenes(dataroot: str | Path, version: str):
    """`NuScenes(version, dataroot)` with one actionable message when the tables are missing."""
    from nuscenes.nuscenes import NuScenes

    table_dir = Path(dataroot) / version
    if not (table_dir / "scene.json").is_file():
        raise FileNotFoundError(
            f"no nuScenes tables at {table_dir} (expected {table_dir}/scene.json); check --dataroot and --version"
        )
    try:
        return NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    except Exception as err:  # the devkit raises bare JSON/assertion/key errors that name no file
        find_corrupt_json(table_dir, "nuScenes table")  # names the corrupt table, if one is
        raise CorruptFileError(f"the nuScenes tables in {table_dir} do not load: {type(err).__name__}: {err}") from err


def split_scenes(dataroot: str | Path, version: str, split: str) -> list[str]:
    """Scene names of a split: from `drivewm/<version>/splits.json`, else the devkit's official
    splits for real nuScenes (`train`/`val`, or `mini_train`/`mini_val` for v1.0-mini)."""
    path = extras_dir(dataroot, version) / "splits.json"
    if path.is_file():
        splits = read_json(path, "split file")
        if not isinstance(splits, dict):
            raise CorruptFileError(f"split file {path} must hold a JSON object of split name → scene names")
        if split not in splits or not isinstance(splits[split], list):
            raise ValueError(
                f"split {split!r} not in {path} (has {sorted(k for k in splits if isinstance(splits[k], list))})"
            )
        return list(splits[split])
    if version in DEVKIT_SPLITS:
        from nuscenes.utils.splits import create_splits_scenes

        name = DEVKIT_SPLITS[version].get(split, split)
        scenes = create_splits_scenes()
        if name not in scenes:
            raise ValueError(f"split {split!r} unknown for {version} (devkit splits: {sorted(scenes)})")
        return list(scenes[name])
    raise FileNotFoundError(f"split file {path} is missing (generated datasets carry one)")


def cache_key(dataroot: str | Path, version: str, config: DataConfig) -> str:
    """Hex digest of everything the cached tensors depend on."""
    gen = extras_dir(dataroot, version) / "generator.json"
    record = {
        "format": CACHE_FORMAT,
        "config": config.to_dict(),
        "version": version,
        "dataroot": str(Path(dataroot).resolve()),
        "generator": read_json(gen, "generator record") if gen.is_file() else None,
    }
    return hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _to_dict(obj) -> dict[str, torch.Tensor]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


class NuScenesWorldDataset(Dataset):
    """Per-keyframe samples (features, targets) of one split.

    Args:
        dataroot: dataset root (the devkit's dataroot).
        version: table folder name (`v1.0-sim-NAME`, `v1.0-mini`, `v1.0-trainval`).
        split: split name (`train`, `val`, ... as in splits.json or the devkit).
        config: what to produce.
        cache_dir: cache root (default `DIR/drivewm/<version>/cache`); None-like "" disables caching.
        build_missing: build samples absent from the cache on access (else `FileNotFoundError`).
        nusc: an already loaded `NuScenes` to share.
    """

    def __init__(
        self,
        dataroot: str | Path,
        version: str,
        split: str,
        config: DataConfig | None = None,
        cache_dir: str | Path | None = None,
        build_missing: bool = True,
        nusc=None,
    ) -> None:
        self.dataroot = Path(dataroot)
        self.version = version
        self.split = split
        self.config = config or DataConfig()
        self.nusc = nusc or load_nuscenes(dataroot, version)
        names = set(split_scenes(dataroot, version, split))
        self.scenes = [SceneIndex(self.nusc, s["token"]) for s in self.nusc.scene if s["name"] in names]
        missing = names - {s.name for s in self.scenes}
        if missing and version not in REAL_NUSCENES_VERSIONS:
            raise ValueError(f"split {split!r} names scenes absent from the tables: {sorted(missing)[:5]}")
        # keyframes with T future keyframes (history is padded at the scene start)
        self.index = [
            (si, i)
            for si, sc in enumerate(self.scenes)
            for i in range(len(sc.frames))
            if i + self.config.horizon < len(sc.frames)
        ]
        self.features = FeatureBuilder(self.nusc, dataroot, version, self.config)
        self.targets = TargetBuilder(self.nusc, dataroot, version, self.config)
        if cache_dir == "":
            self.cache_dir = None
        else:
            root = Path(cache_dir) if cache_dir else extras_dir(dataroot, version) / "cache"
            self.cache_dir = root / cache_key(dataroot, version, self.config)
        self.build_missing = build_missing

    def __len__(self) -> int:
        return len(self.index)

    def token(self, idx: int) -> str:
        si, i = self.index[idx]
        return self.scenes[si].frames[i].token

    def scene_name(self, idx: int) -> str:
        return self.scenes[self.index[idx][0]].name

    def build(self, idx: int) -> Sample:
        """Compute a sample from the raw data (no cache). Runs single-threaded: these are many small
        tensor ops, which intra-op threads only slow down (badly so on a shared machine)."""
        si, i = self.index[idx]
        scene = self.scenes[si]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return Sample(self.features.build(scene, i), self.targets.build(scene, i), scene.frames[i].token)
        finally:
            torch.set_num_threads(threads)

    def full_labels(self, idx: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Label-grid ground truth for evaluation (not cached): future semantics `[T, 200, 200, 16]`
        uint8 and camera masks (bool) in the current ego frame, and the current ones `[200, 200, 16]`."""
        si, i = self.index[idx]
        scene = self.scenes[si]
        ref = scene.frames[i].pose
        fut = [self.targets.labels_full(scene, j, ref) for j in range(i + 1, i + 1 + self.config.horizon)]
        now = self.targets.labels_full(scene, i, ref)
        return torch.stack([f[0] for f in fut]), torch.stack([f[1] for f in fut]), now[0], now[1]

    def cache_path(self, idx: int) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{self.token(idx)}.pt"

    def _write(self, path: Path, sample: Sample) -> None:
        payload = {"features": _to_dict(sample.features), "targets": _to_dict(sample.targets), "token": sample.token}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    def _read(self, path: Path) -> Sample | None:
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            return Sample(Features(**d["features"]), Targets(**d["targets"]), d["token"])
        except Exception:  # corrupt or from an older layout: rebuild
            return None

    def __getitem__(self, idx: int) -> Sample:
        path = self.cache_path(idx)
        if path is None:
            return self.build(idx)
        if path.is_file():
            sample = self._read(path)
            if sample is not None:
                return sample
        if not self.build_missing:
            raise FileNotFoundError(
                f"feature cache entry {path} is missing; build it with NuScenesWorldDataset.build_cache() "
                f"(or `drivewm fit`, which builds it)"
            )
        sample = self.build(idx)
        self._write(path, sample)
        return sample

    def missing(self) -> list[int]:
        """Indices whose cache file does not exist yet."""
        if self.cache_dir is None:
            return list(range(len(self)))
        return [i for i in range(len(self)) if not self.cache_path(i).is_file()]  # type: ignore[union-attr]

    def build_cache(self, progress: bool = True) -> int:
        """Build every missing cache entry (resumes: finished entries are kept); returns how many were built."""
        if self.cache_dir is None:
            return 0
        from tqdm import tqdm

        todo = self.missing()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        meta = self.cache_dir / "meta.json"
        if not meta.is_file():
            write_json_atomic(meta, {"version": self.version, "config": self.config.to_dict()}, indent=1)
        for idx in tqdm(todo, desc=f"caching {self.version}/{self.split}", disable=not progress or not todo):
            self._write(self.cache_path(idx), self.build(idx))  # type: ignore[arg-type]
        return len(todo)
