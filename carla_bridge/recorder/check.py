"""Verify a recorded dataset with the official devkit (`drivewm data check`).

Checks: `NuScenes` loads the tables; the dataset holds scenes — as many as its generator record
asks for (a disk-full or interrupted run leaves fewer, or none); `NuScenesMap` loads every log's
map; sample / sample_data / annotation chains are linked consistently with strictly increasing
timestamps; every file a sample_data names exists and opens as training opens it (every camera
image fully decoded, every lidar sweep a whole number of points); every keyframe has Occ3D
`labels.npz` with the right shapes; `splits.json` parses and its train split names scenes of the
tables; every scene's route file (a finite polyline) and light file parse; every annotation whose
object the renderer drew (its 2D instance box in `drivewm/<version>/boxes2d/`) projects — through
the devkit's own `get_sample_data` boxes and `view_points` — onto those pixels; branch files load
completely (every array decompressed) with consistent shapes. Every file is read with the same
readers as the dataset loader (`occupancy.reading`), so a file that passes here opens in training.
Returns a report; `ok` is False on any error.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from carla_bridge.recorder.config import check_version
from carla_bridge.recorder.extras import read_lights, read_route_polyline
from occupancy.reading import CorruptFileError, decode_image, find_corrupt_json, load_npz, read_json

LIDAR_POINT_BYTES = 5 * 4  # a nuScenes .pcd.bin point: x, y, z, intensity, ring as float32

MIN_PIXELS_FOR_PROJECTION = 30  # 2D instance boxes smaller than this are not checked
CONTAINMENT = 0.8  # share of the 2D instance box that must lie inside the projected 3D box


@dataclass
class CheckReport:
    """Outcome of `check_dataset`: errors (empty = passed) and summary figures."""

    errors: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, msg: str) -> None:
        if len(self.errors) < 200:
            self.errors.append(msg)

    def text(self) -> str:
        lines = [f"{k}: {v}" for k, v in self.summary.items()]
        lines += [f"ERROR: {e}" for e in self.errors]
        lines.append("OK" if self.ok else f"FAILED ({len(self.errors)} errors)")
        return "\n".join(lines)


def _check_chain(report: CheckReport, table: dict[str, dict], first: str, what: str) -> list[str]:
    """Follow `next` from `first`, checking `prev` back-links and increasing timestamps."""
    tokens, prev, seen = [], "", set()
    tok = first
    while tok:
        if tok in seen or tok not in table:
            report.error(f"{what}: broken chain at {tok!r}")
            break
        seen.add(tok)
        rec = table[tok]
        if rec.get("prev", "") != prev:
            report.error(f"{what}: {tok} has prev {rec.get('prev')!r}, expected {prev!r}")
        if prev and "timestamp" in rec and rec["timestamp"] <= table[prev]["timestamp"]:
            report.error(f"{what}: timestamps do not increase at {tok}")
        tokens.append(tok)
        prev, tok = tok, rec.get("next", "")
    return tokens


def _rect_containment(inner: list[int], outer: tuple[float, float, float, float]) -> float:
    u0, v0, u1, v1 = inner[0], inner[1], inner[2] + 1, inner[3] + 1
    iw = max(0.0, min(u1, outer[2]) - max(u0, outer[0]))
    ih = max(0.0, min(v1, outer[3]) - max(v0, outer[1]))
    return iw * ih / max((u1 - u0) * (v1 - v0), 1)


def check_dataset(dataroot: str | Path, version: str, verbose: bool = False) -> CheckReport:
    """Run every check on `dataroot` / `version`."""
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.geometry_utils import BoxVisibility, view_points

    from carla_bridge.recorder.devkit_maps import load_nuscenes_map
    from occupancy.grid import GridSpec
    from occupancy.io import read_labels

    report = CheckReport()
    root = Path(dataroot)
    check_version(version)
    if not (root / version).is_dir():
        raise FileNotFoundError(f"no table folder {root / version}; is {root} a dataset of version {version}?")
    try:
        nusc = NuScenes(version=version, dataroot=str(root), verbose=verbose)
    except Exception as e:  # the devkit raises bare exceptions/assertions that name no file
        reason = f"{type(e).__name__}: {e}"
        try:
            find_corrupt_json(root / version, "nuScenes table")
        except CorruptFileError as corrupt:
            reason = str(corrupt)
        report.error(f"NuScenes failed to load: {reason}")
        return report
    report.summary.update(
        scenes=len(nusc.scene),
        samples=len(nusc.sample),
        annotations=len(nusc.sample_annotation),
        instances=len(nusc.instance),
        sample_data=len(nusc.sample_data),
    )
    ext = root / "drivewm" / version
    _check_scene_count(report, nusc, ext)
    _check_splits(report, nusc, ext)
    _check_scene_files(report, nusc, ext)
    for loc in sorted({log["location"] for log in nusc.log}):
        try:
            nmap = load_nuscenes_map(root, loc)
            report.summary[f"map {loc}"] = f"{len(nmap.lane)} lanes, {len(nmap.lane_connector)} connectors"
        except Exception as e:
            report.error(f"NuScenesMap failed for {loc}: {type(e).__name__}: {e}")

    samples = {s["token"]: s for s in nusc.sample}
    sds = {s["token"]: s for s in nusc.sample_data}
    anns = {a["token"]: a for a in nusc.sample_annotation}
    grid = GridSpec.occ3d()
    opened = 0
    for scene in nusc.scene:
        chain = _check_chain(report, samples, scene["first_sample_token"], f"scene {scene['name']} samples")
        if len(chain) != scene["nbr_samples"] or (chain and chain[-1] != scene["last_sample_token"]):
            report.error(f"scene {scene['name']}: nbr_samples/last_sample_token disagree with the chain")
        for tok in chain:
            path = root / "gts" / scene["name"] / tok / "labels.npz"
            if not path.is_file():
                report.error(f"missing Occ3D labels {path}")
                continue
            try:
                read_labels(path, grid)
            except ValueError as e:
                report.error(str(e))
        first = samples[scene["first_sample_token"]]
        for channel, sd_tok in first["data"].items():
            sd_chain = _check_chain(report, sds, sd_tok, f"scene {scene['name']} {channel}")
            for t in sd_chain:
                path = root / sds[t]["filename"]
                if not path.is_file():
                    report.error(f"missing file {sds[t]['filename']}")
                    continue
                opened += 1
                _check_sensor_file(report, path, sds[t])
    report.summary["sensor files opened"] = opened
    for inst in nusc.instance:
        chain = _check_chain(report, anns, inst["first_annotation_token"], f"instance {inst['token']}")
        if len(chain) != inst["nbr_annotations"] or (chain and chain[-1] != inst["last_annotation_token"]):
            report.error(f"instance {inst['token']}: nbr_annotations/last_annotation_token disagree")
        if any(anns[t]["instance_token"] != inst["token"] for t in chain):
            report.error(f"instance {inst['token']}: chain mixes instances")
        times = [samples[anns[t]["sample_token"]]["timestamp"] for t in chain]
        if any(b <= a for a, b in itertools.pairwise(times)):
            report.error(f"instance {inst['token']}: annotation times do not increase")

    # projections against the rendered instance pixels
    checked = failed = 0
    for scene in nusc.scene:
        path = ext / "boxes2d" / f"{scene['name']}.json"
        if not path.is_file():
            report.error(f"missing 2D instance boxes {path}")
            continue
        try:
            boxes2d = read_json(path, "2D instance boxes")
        except CorruptFileError as e:
            report.error(str(e))
            continue
        for s_tok, per_inst in boxes2d.items():
            if s_tok not in samples:
                report.error(f"{path.name}: unknown sample {s_tok}")
                continue
            ann_of = {anns[a]["instance_token"]: a for a in samples[s_tok]["anns"]}
            for inst_tok, per_cam in per_inst.items():
                if inst_tok not in ann_of:
                    report.error(f"sample {s_tok}: instance {inst_tok} has pixels but no annotation")
                    continue
                for cam, box in per_cam.items():
                    if box[4] < MIN_PIXELS_FOR_PROJECTION:
                        continue
                    sd_tok = samples[s_tok]["data"][cam]
                    _, boxes, k = nusc.get_sample_data(
                        sd_tok, box_vis_level=BoxVisibility.NONE, selected_anntokens=[ann_of[inst_tok]]
                    )
                    checked += 1
                    if not boxes:
                        failed += 1
                        report.error(f"{cam} of sample {s_tok}: annotation {ann_of[inst_tok]} not in view")
                        continue
                    corners = boxes[0].corners()
                    if (corners[2] <= 0.1).any():
                        continue  # partly behind the camera: the rectangle is unbounded
                    uv = view_points(corners, np.asarray(k), normalize=True)[:2]
                    rect = (uv[0].min() - 2, uv[1].min() - 2, uv[0].max() + 3, uv[1].max() + 3)
                    if _rect_containment(box, rect) < CONTAINMENT:
                        failed += 1
                        report.error(
                            f"{cam} of sample {s_tok}: annotation {ann_of[inst_tok]} projects to "
                            f"{np.round(rect, 1).tolist()}"
                            f" but its pixels span {box[:4]}"
                        )
    report.summary["projections checked"] = checked
    report.summary["projections failed"] = failed

    # branches
    from carla_bridge.recorder.branches import pair_divergence

    pairs = differ = nfiles = 0
    for path in sorted((ext / "branches").glob("*.npz")) if (ext / "branches").is_dir() else []:
        nfiles += 1
        if path.stem not in samples:
            report.error(f"branch file {path.name} names no sample")
            continue
        try:
            z = load_npz(path, "branch file")  # every array decompressed, as training reads them
            k = z["ego"].shape[0]
            a = z["instance_tokens"].shape[0]
            t = z["ego"].shape[1]
        except (CorruptFileError, KeyError, IndexError) as e:
            report.error(
                str(e) if isinstance(e, CorruptFileError) else f"branch file {path}: no usable ego/instance_tokens"
            )
            continue
        want = {
            "agent_pose": (k, a, t, 3),
            "agent_valid": (k, a, t),
            "agent_size": (a, 3),
            "agent_class": (a,),
            "semantics": (k, t, *grid.shape),
            "collision": (k,),
            "offroad": (k,),
            "plan_kind": (k,),
        }
        for key, shape in want.items():
            if key not in z or tuple(z[key].shape) != shape:
                report.error(f"{path.name}: {key} has shape {None if key not in z else z[key].shape}, expected {shape}")
        if "agent_pose" in z and "agent_valid" in z:
            p, d = pair_divergence(z["agent_pose"], z["agent_valid"])
            pairs, differ = pairs + p, differ + d
    report.summary["branch files"] = nfiles
    if pairs:
        report.summary["branch pairs with an agent future differing > 0.5 m"] = (
            f"{differ}/{pairs} ({100 * differ / pairs:.0f} %)"
        )
    return report


def _check_scene_count(report: CheckReport, nusc, ext: Path) -> None:
    """No scenes, or fewer than the generator record asks for: a disk-full or interrupted generation."""
    if not nusc.scene:
        report.error(
            "the dataset holds no scenes (a generation that failed or was interrupted before its first scene "
            "finished); rerun `drivewm data generate` with the same arguments to finish it"
        )
    gen = ext / "generator.json"
    if not gen.is_file():
        return
    try:
        wanted = int(read_json(gen, "generator record")["config"]["scenes"])
    except (CorruptFileError, KeyError, TypeError, ValueError) as e:
        report.error(f"generator record {gen} is unusable: {e}")
        return
    if 0 < len(nusc.scene) < wanted:
        report.error(
            f"the dataset holds {len(nusc.scene)} of the {wanted} scenes its generator record asks for (an "
            "interrupted or failed generation); rerun `drivewm data generate` with the same arguments to finish it"
        )


def _check_splits(report: CheckReport, nusc, ext: Path) -> None:
    """`splits.json` parses; its splits list scenes of the tables; the train split is not empty."""
    path = ext / "splits.json"
    if not path.is_file():
        report.error(f"missing split file {path}")
        return
    try:
        splits = read_json(path, "split file")
    except CorruptFileError as e:
        report.error(str(e))
        return
    if not isinstance(splits, dict) or not isinstance(splits.get("train"), list):
        report.error(f"split file {path} must map split names to lists of scene names (a 'train' list at least)")
        return
    names = {sc["name"] for sc in nusc.scene}
    for split, scenes in splits.items():
        if split == "held_out_towns" or not isinstance(scenes, list):
            continue
        unknown = sorted(set(map(str, scenes)) - names)
        if unknown:
            report.error(f"split file {path}: split {split!r} names scenes absent from the tables: {unknown[:5]}")
    report.summary["splits"] = {k: len(v) for k, v in splits.items() if isinstance(v, list) and k != "held_out_towns"}
    if nusc.scene and not splits["train"]:
        report.error(f"split file {path}: the train split is empty (nothing to train on)")


def _check_scene_files(report: CheckReport, nusc, ext: Path) -> None:
    """Every scene's route file (a finite polyline `[P ≥ 2, 2]`) and light file parse as training reads
    them; every scene fragment (`scenes/<scene>.json`, what a resumed generation rebuilds the tables
    from) parses."""
    for fragment in sorted((ext / "scenes").glob("*.json")) if (ext / "scenes").is_dir() else []:
        try:
            read_json(fragment, "scene fragment")
        except CorruptFileError as e:
            report.error(str(e))
    for scene in nusc.scene:
        route = ext / "routes" / f"{scene['name']}.json"
        lights = ext / "lights" / f"{scene['name']}.json"
        if not route.is_file():
            report.error(f"missing route file {route}")
        for path, read in ((route, read_route_polyline), (lights, read_lights)):
            if path.is_file():
                try:
                    read(path)
                except CorruptFileError as e:
                    report.error(str(e))


def _check_sensor_file(report: CheckReport, path: Path, sd: dict) -> None:
    """Open a sample_data file as training does: images fully decoded, lidar sweeps whole points."""
    name = str(sd["filename"])
    try:
        if name.endswith((".jpg", ".jpeg", ".png")):
            _, (w, h) = decode_image(path, "camera image")
            if (sd.get("width"), sd.get("height")) not in ((w, h), (None, None), (0, 0)):
                report.error(f"camera image {path} is {w}x{h}, its sample_data says {sd['width']}x{sd['height']}")
        elif name.endswith(".pcd.bin"):
            size = path.stat().st_size
            if size == 0 or size % LIDAR_POINT_BYTES:
                report.error(
                    f"lidar file {path} has {size} bytes, not a whole number of {LIDAR_POINT_BYTES}-byte points"
                )
    except CorruptFileError as e:
        report.error(str(e))
