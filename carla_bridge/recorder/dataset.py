"""Generate a dataset: maps, scenes (atomically, resumably, optionally in worker processes), tables,
splits and the generator record.

Layout of the work in progress (inside the output folder)::

    .drivewm-work/<version>/<scene>.partial/   a scene being recorded (deleted on resume)
    .drivewm-work/<version>/<scene>.ready/     a finished scene not yet merged (merged on resume)

A scene's folder mirrors the dataset root (samples/, gts/, drivewm/<version>/…). Committing it
moves its files into place first and only then writes its table fragment
`drivewm/<version>/scenes/<scene>.json`: a scene exists once its fragment exists, and the tables —
rebuilt from all fragments after every commit — never point at missing files.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from carla_bridge.recorder.config import GeneratorConfig, SceneSpec
from carla_bridge.recorder.map_expansion import MapInfo
from carla_bridge.recorder.tables import merge_tables, write_tables
from carla_bridge.run_metadata import git_commit, package_versions
from occupancy.atomic import write_json_atomic

WORK_DIR = ".drivewm-work"


class DatasetError(ValueError):
    """Bad input or an unusable output folder (one actionable message)."""


def extras_dir(root: Path, version: str) -> Path:
    return Path(root) / "drivewm" / version


def generator_record(cfg: GeneratorConfig) -> dict:
    """generator.json: the config (the cache key part), package version and git commit."""
    return {
        "config": cfg.to_dict(),
        "package_version": package_versions(("drivewm",))["drivewm"],
        "git_commit": git_commit() or "unknown",
    }


def prepare_output(root: Path, cfg: GeneratorConfig) -> None:
    """Check the output folder before anything is written.

    Accepts a missing or empty folder, or a dataset previously generated with the same config
    (resume). Raises `DatasetError` for a non-empty foreign folder, a different config, or an
    unwritable path.
    """
    root = Path(root)
    gen = extras_dir(root, cfg.version) / "generator.json"
    if root.exists() and not root.is_dir():
        raise DatasetError(f"output path {root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not gen.is_file():
            raise DatasetError(
                f"output folder {root} is not empty and holds no dataset {cfg.version} to resume; choose a new --out"
            )
        old = json.loads(gen.read_text())["config"]
        new = cfg.to_dict()
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            raise DatasetError(
                f"output folder {root} holds {cfg.version} generated with a different config (fields {diff}); "
                "use the same arguments to resume, or a new --out"
            )
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".drivewm-probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise DatasetError(f"output folder {root} is not writable: {e.strerror or e}") from e


def _move_tree(src: Path, dst: Path) -> None:
    """Move every file of `src` into the same relative place under `dst` (replacing)."""
    for dirpath, _dirs, files in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for f in files:
            os.replace(Path(dirpath) / f, dst / rel / f)


def committed_scenes(root: Path, version: str) -> list[str]:
    d = extras_dir(root, version) / "scenes"
    return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []


def commit_scene(root: Path, version: str, ready: Path) -> None:
    """Merge a finished scene folder into the dataset (files first, then its fragment)."""
    fragment = ready / "fragment.json"
    if not fragment.is_file():
        raise DatasetError(f"finished scene folder {ready} has no fragment.json")
    name = ready.name.rsplit(".", 1)[0]
    data = ready / "data"
    if data.is_dir():
        _move_tree(data, root)
    dst = extras_dir(root, version) / "scenes" / f"{name}.json"
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(fragment, dst)
    shutil.rmtree(ready, ignore_errors=True)


def rebuild_tables(root: Path, cfg: GeneratorConfig, maps: dict[str, MapInfo], calibrated: dict[str, dict]) -> dict:
    """Write the 13 tables from the committed fragments; also splits.json. Returns the tables."""
    names = committed_scenes(root, cfg.version)
    fragments = [json.loads((extras_dir(root, cfg.version) / "scenes" / f"{n}.json").read_text()) for n in names]
    tables = merge_tables(fragments, calibrated, [m.map_record() for m in maps.values()])
    write_tables(Path(root) / cfg.version, tables)
    specs = {s.name: s for s in cfg.scene_specs()}
    splits = {"train": [], "val": [], "held_out_towns": list(cfg.val_towns)}
    for n in names:
        if n in specs:
            splits[cfg.split_of(specs[n])].append(n)
    write_json_atomic(extras_dir(root, cfg.version) / "splits.json", splits, indent=1)
    return tables


def _record_into(spec: SceneSpec, cfg: GeneratorConfig, work: Path, info: MapInfo) -> Path:
    """Record one scene into `<work>/<name>.partial`, then rename it `.ready`. Runs in workers."""
    from carla_bridge.recorder.scene import record_scene

    partial = work / f"{spec.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        fragment = record_scene(spec, cfg, partial / "data", info)
        write_json_atomic(partial / "fragment.json", fragment)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    ready = work / f"{spec.name}.ready"
    shutil.rmtree(ready, ignore_errors=True)
    os.replace(partial, ready)
    return ready


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def generate(
    root: str | Path,
    cfg: GeneratorConfig,
    workers: int = 1,
    progress: bool = True,
    on_scene: Callable[[str], None] | None = None,
) -> dict:
    """Generate (or resume) a dataset.

    Args:
        root: output folder.
        cfg: the generator config.
        workers: scenes recorded in parallel processes (1: in this process).
        progress: show a tqdm bar.
        on_scene: called with each scene name after it is committed.
    Returns:
        summary `{"scenes": [...], "recorded": [...], "skipped": [...], "seconds": float}`.
    """
    from carla_bridge.maps import load_town
    from carla_bridge.recorder.map_expansion import write_map
    from carla_bridge.recorder.tables import calibrated_sensor_records
    from carla_bridge.sensors.rig import RIG_PATH, CameraRig

    t0 = time.perf_counter()
    cfg.validate()
    if workers < 1:
        raise DatasetError(f"workers must be ≥ 1, got {workers}")
    towns = {}
    for name in cfg.towns:
        towns[name] = load_town(name)  # FileNotFoundError listing the towns for an unknown one
    root = Path(root)
    prepare_output(root, cfg)
    ext = extras_dir(root, cfg.version)
    write_json_atomic(ext / "generator.json", generator_record(cfg), indent=1)
    maps = {}
    for name, town in towns.items():
        info_path = ext / "maps" / f"{name}.json"
        if info_path.is_file():
            maps[name] = MapInfo.from_dict(json.loads(info_path.read_text()))
            if (root / maps[name].basemap_filename).is_file():
                continue
        maps[name] = write_map(root, town)
        write_json_atomic(info_path, maps[name].to_dict(), indent=1)
    rig = CameraRig.nuscenes(*cfg.resolution)
    calibrated = calibrated_sensor_records(rig, json.loads(Path(RIG_PATH).read_text()))

    work = root / WORK_DIR / cfg.version
    work.mkdir(parents=True, exist_ok=True)
    for p in work.glob("*.partial"):
        shutil.rmtree(p, ignore_errors=True)  # unfinished: redone
    for p in sorted(work.glob("*.ready")):
        commit_scene(root, cfg.version, p)
    done = set(committed_scenes(root, cfg.version))
    todo = [s for s in cfg.scene_specs() if s.name not in done]
    rebuild_tables(root, cfg, maps, calibrated)

    from tqdm import tqdm

    bar = tqdm(
        total=cfg.scenes,
        initial=cfg.scenes - len(todo),
        desc=f"recording {cfg.version}",
        unit="scene",
        disable=not progress,
    )
    recorded = []

    def finish(ready: Path) -> None:
        commit_scene(root, cfg.version, ready)
        rebuild_tables(root, cfg, maps, calibrated)
        name = ready.name.rsplit(".", 1)[0]
        recorded.append(name)
        bar.update(1)
        if on_scene is not None:
            on_scene(name)

    try:
        if workers == 1 or len(todo) <= 1:
            for spec in todo:
                finish(_record_into(spec, cfg, work, maps[spec.town]))
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(
                max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init
            ) as pool:
                futures = [pool.submit(_record_into, s, cfg, work, maps[s.town]) for s in todo]
                for fut in as_completed(futures):
                    finish(fut.result())
    except OSError as e:
        raise DatasetError(
            f"writing the dataset to {root} failed: {e.strerror or e}; finished scenes are kept, rerun to resume"
        ) from e
    finally:
        bar.close()
    if not any(work.iterdir()):
        shutil.rmtree(root / WORK_DIR, ignore_errors=True)
    return {
        "scenes": [s.name for s in cfg.scene_specs()],
        "recorded": recorded,
        "skipped": sorted(done),
        "seconds": time.perf_counter() - t0,
    }
