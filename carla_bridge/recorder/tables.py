"""The 13 nuScenes tables: deterministic tokens, static tables, per-scene fragments, merging.

A recorded scene is first described by a *fragment*: the dynamic records it owns (log, scene,
sample, sample_data, ego_pose, sample_annotation, instance), built from lightweight per-keyframe
metadata (`KeyframeMeta`). The dataset's tables are the static tables (category, attribute,
visibility, sensor with the real nuScenes tokens and names), one calibrated_sensor per channel,
the map records and the concatenation of all committed fragments — a pure function of what is on
disk, so a resumed run rebuilds exactly the same tables.

nuScenes conventions kept here: tokens are 32 hex characters, timestamps integers in µs, sizes
`[w, l, h]`, quaternions `[w, x, y, z]`, translations in the global frame (ego poses: rear axle).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from occupancy.atomic import write_json_atomic

TABLE_NAMES: tuple[str, ...] = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)
DYNAMIC_TABLES: tuple[str, ...] = (
    "log",
    "scene",
    "sample",
    "sample_data",
    "ego_pose",
    "sample_annotation",
    "instance",
)
STATIC_TABLES_PATH = Path(__file__).resolve().parents[1] / "data" / "nuscenes" / "tables.json"
VEHICLE_NAME = "n015"  # the calibration we reuse is the one of nuScenes vehicle n015

_CATEGORY_DESCRIPTIONS = {
    "human": "A person",
    "animal": "An animal",
    "vehicle": "A vehicle",
    "movable_object": "An object that can be moved",
    "static_object": "A fixed object",
}
_ATTRIBUTE_DESCRIPTIONS = {
    "vehicle.moving": "The vehicle is driving.",
    "vehicle.stopped": "The vehicle stands still for now, e.g. waiting at a light or in traffic.",
    "vehicle.parked": "The vehicle stands still for the whole scene, left parked.",
    "cycle.with_rider": "Someone is riding the cycle.",
    "cycle.without_rider": "Nobody is riding the cycle.",
    "pedestrian.sitting_lying_down": "The person sits or lies.",
    "pedestrian.standing": "The person stands still.",
    "pedestrian.moving": "The person walks or runs.",
}
_VISIBILITY_DESCRIPTIONS = {
    "v0-40": "visibility of whole object is between 0 and 40%",
    "v40-60": "visibility of whole object is between 40 and 60%",
    "v60-80": "visibility of whole object is between 60 and 80%",
    "v80-100": "visibility of whole object is between 80 and 100%",
}


def make_token(*parts: object) -> str:
    """A 32-hex-character token, deterministic in `parts` (md5 of their `/`-joined text)."""
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


def yaw_to_quaternion(yaw: float) -> list[float]:
    """Rotation about z by `yaw` [rad] as a nuScenes quaternion `[w, x, y, z]`."""
    return [math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0)]


def quaternion_to_yaw(q: list[float] | np.ndarray) -> float:
    """Yaw [rad] of a `[w, x, y, z]` quaternion (rotation about z; roll/pitch ignored)."""
    w, x, y, z = (float(v) for v in q)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


@lru_cache(maxsize=1)
def load_static_reference() -> dict:
    """The vendored real-nuScenes static-table reference (`carla_bridge/data/nuscenes/tables.json`)."""
    if not STATIC_TABLES_PATH.is_file():
        raise FileNotFoundError(f"nuScenes static table reference not found: {STATIC_TABLES_PATH}")
    return json.loads(STATIC_TABLES_PATH.read_text())


def static_tables() -> dict[str, list[dict]]:
    """category, attribute, visibility and sensor tables with the real nuScenes tokens and names (in
    the original order) and our own description texts."""
    ref = load_static_reference()
    category = [
        {"token": r["token"], "name": r["name"], "description": _CATEGORY_DESCRIPTIONS[r["name"].split(".")[0]]}
        for r in ref["category"]
    ]
    attribute = [
        {"token": r["token"], "name": r["name"], "description": _ATTRIBUTE_DESCRIPTIONS[r["name"]]}
        for r in ref["attribute"]
    ]
    visibility = [
        {"token": r["token"], "level": r["level"], "description": _VISIBILITY_DESCRIPTIONS[r["level"]]}
        for r in ref["visibility"]
    ]
    sensor = [{"token": r["token"], "channel": r["channel"], "modality": r["modality"]} for r in ref["sensor"]]
    return {"category": category, "attribute": attribute, "visibility": visibility, "sensor": sensor}


def category_token(name: str) -> str:
    """Real nuScenes token of a category name; `ValueError` if unknown."""
    for r in load_static_reference()["category"]:
        if r["name"] == name:
            return r["token"]
    raise ValueError(f"unknown nuScenes category {name!r}")


def attribute_token(name: str) -> str:
    """Real nuScenes token of an attribute name; `ValueError` if unknown."""
    for r in load_static_reference()["attribute"]:
        if r["name"] == name:
            return r["token"]
    raise ValueError(f"unknown nuScenes attribute {name!r}")


def sensor_token(channel: str) -> str:
    """Real nuScenes token of a sensor channel; `ValueError` if unknown."""
    for r in load_static_reference()["sensor"]:
        if r["channel"] == channel:
            return r["token"]
    raise ValueError(f"unknown nuScenes sensor channel {channel!r}")


def visibility_token(fraction: float) -> str:
    """nuScenes visibility token ('1'..'4') of a visible fraction in [0, 1] (bins 0-40/40-60/60-80/80-100 %)."""
    if not math.isfinite(fraction):
        raise ValueError(f"visibility fraction must be finite, got {fraction}")
    if fraction < 0.4:
        return "1"
    if fraction < 0.6:
        return "2"
    if fraction < 0.8:
        return "3"
    return "4"


def calibrated_sensor_records(rig: object, real_calibration: dict) -> dict[str, dict]:
    """One calibrated_sensor record per channel (6 cameras + LIDAR_TOP).

    At 1600×900 the real n015 tokens are kept; at other resolutions the intrinsics are scaled and
    the token is derived from the real one and the resolution (a different record).

    Args:
        rig: a `CameraRig` (names, width, height, intrinsics `[V,3,3]`, cam_translation/rotation,
            lidar_translation/rotation).
        real_calibration: the rig_n015.json dict (for the real calibrated_sensor tokens).
    Returns:
        channel → record.
    """
    out: dict[str, dict] = {}
    full = (rig.width, rig.height) == tuple(real_calibration.get("image_size", (1600, 900)))
    intr = np.asarray(rig.intrinsics, dtype=np.float64)
    for v, name in enumerate(rig.names):
        real = real_calibration[name]["calibrated_sensor_token"]
        out[name] = {
            "token": real if full else make_token(real, f"{rig.width}x{rig.height}"),
            "sensor_token": sensor_token(name),
            "translation": [float(x) for x in rig.cam_translation[v]],
            "rotation": [float(x) for x in rig.cam_rotation[v]],
            "camera_intrinsic": [[float(x) for x in row] for row in intr[v]],
        }
    lidar = real_calibration["LIDAR_TOP"]
    out["LIDAR_TOP"] = {
        "token": lidar["calibrated_sensor_token"],
        "sensor_token": sensor_token("LIDAR_TOP"),
        "translation": [float(x) for x in rig.lidar_translation],
        "rotation": [float(x) for x in rig.lidar_rotation],
        "camera_intrinsic": [],
    }
    return out


@dataclass
class AnnotationMeta:
    """One annotated object at one keyframe (global frame).

    Attributes:
        track_id: simulator identity (stable over the scene) → one nuScenes instance.
        category: nuScenes category name.
        translation: `[3]` box centre (x, y, z) [m], global frame.
        size_lwh: `[3]` (length, width, height) [m] (stored as w, l, h).
        yaw: heading [rad].
        attribute: nuScenes attribute name or None.
        visible_fraction: fraction of the box visible in the six cameras, [0, 1].
        num_lidar_pts: lidar points on the object.
        speed: [m/s] (not stored in the tables; used to tell parked from stopped vehicles).
    """

    track_id: int
    category: str
    translation: tuple[float, float, float]
    size_lwh: tuple[float, float, float]
    yaw: float
    attribute: str | None
    visible_fraction: float
    num_lidar_pts: int
    speed: float = 0.0


@dataclass
class KeyframeMeta:
    """What the tables need to know about one keyframe.

    Attributes:
        timestamp_us: sensor time [µs].
        ego_translation: `[3]` rear-axle position [m], global frame.
        ego_yaw: [rad].
        files: channel → (relative filename, width, height); height/width 0 for the lidar.
        annotations: the annotated objects.
    """

    timestamp_us: int
    ego_translation: tuple[float, float, float]
    ego_yaw: float
    files: dict[str, tuple[str, int, int]]
    annotations: list[AnnotationMeta] = field(default_factory=list)


@dataclass(frozen=True)
class SceneIds:
    """Names and deterministic tokens of one scene.

    Attributes:
        version: dataset version (`v1.0-sim-…`), part of every token.
        name: scene name (`scene-0003`).
        location: nuScenes log location (the registered town name, see `devkit_maps`).
        description: free text.
        date: `YYYY-MM-DD` of the log.
    """

    version: str
    name: str
    location: str
    description: str
    date: str

    def token(self, kind: str, *key: object) -> str:
        return make_token(self.version, self.name, kind, *key)

    @property
    def scene_token(self) -> str:
        return self.token("scene")

    @property
    def log_token(self) -> str:
        return self.token("log")

    def sample_token(self, index: int) -> str:
        return self.token("sample", index)

    def instance_token(self, track_id: int) -> str:
        return self.token("instance", track_id)


def _link(records: list[dict]) -> None:
    for i, r in enumerate(records):
        r["prev"] = records[i - 1]["token"] if i > 0 else ""
        r["next"] = records[i + 1]["token"] if i + 1 < len(records) else ""


def scene_fragment(ids: SceneIds, keyframes: list[KeyframeMeta], calibrated: dict[str, dict]) -> dict[str, list[dict]]:
    """Build the dynamic records of one scene from its keyframes.

    Args:
        ids: scene names/tokens.
        keyframes: in time order (timestamps strictly increasing).
        calibrated: channel → calibrated_sensor record (from `calibrated_sensor_records`).
    Returns:
        table name → records, for the tables in `DYNAMIC_TABLES`.
    """
    if not keyframes:
        raise ValueError(f"scene {ids.name} has no keyframes")
    times = [k.timestamp_us for k in keyframes]
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise ValueError(f"scene {ids.name}: keyframe timestamps must increase strictly")
    log = {
        "token": ids.log_token,
        "logfile": f"sim-{ids.location}-{ids.name}",
        "vehicle": VEHICLE_NAME,
        "date_captured": ids.date,
        "location": ids.location,
    }
    samples = [
        {"token": ids.sample_token(i), "timestamp": int(k.timestamp_us), "scene_token": ids.scene_token}
        for i, k in enumerate(keyframes)
    ]
    _link(samples)
    scene = {
        "token": ids.scene_token,
        "log_token": ids.log_token,
        "nbr_samples": len(samples),
        "first_sample_token": samples[0]["token"],
        "last_sample_token": samples[-1]["token"],
        "name": ids.name,
        "description": ids.description,
    }
    ego_poses: list[dict] = []
    sample_data: list[dict] = []
    channels = sorted({c for k in keyframes for c in k.files})
    for channel in channels:
        chain: list[dict] = []
        for i, k in enumerate(keyframes):
            if channel not in k.files:
                continue
            filename, width, height = k.files[channel]
            ego = {
                "token": ids.token("ego_pose", channel, i),
                "timestamp": int(k.timestamp_us),
                "rotation": yaw_to_quaternion(k.ego_yaw),
                "translation": [float(x) for x in k.ego_translation],
            }
            ego_poses.append(ego)
            fmt = "pcd" if filename.endswith(".pcd.bin") else filename.rsplit(".", 1)[-1]
            chain.append(
                {
                    "token": ids.token("sample_data", channel, i),
                    "sample_token": samples[i]["token"],
                    "ego_pose_token": ego["token"],
                    "calibrated_sensor_token": calibrated[channel]["token"],
                    "timestamp": int(k.timestamp_us),
                    "fileformat": fmt,
                    "is_key_frame": True,
                    "height": int(height),
                    "width": int(width),
                    "filename": filename,
                }
            )
        _link(chain)
        sample_data.extend(chain)
    by_track: dict[int, list[dict]] = {}
    category_of: dict[int, str] = {}
    for i, k in enumerate(keyframes):
        for a in k.annotations:
            if a.track_id in category_of and category_of[a.track_id] != a.category:
                raise ValueError(f"scene {ids.name}: track {a.track_id} changes category")
            category_of[a.track_id] = a.category
            length, width, height = (float(x) for x in a.size_lwh)
            by_track.setdefault(a.track_id, []).append(
                {
                    "token": ids.token("sample_annotation", i, a.track_id),
                    "sample_token": samples[i]["token"],
                    "instance_token": ids.instance_token(a.track_id),
                    "visibility_token": visibility_token(a.visible_fraction),
                    "attribute_tokens": [attribute_token(a.attribute)] if a.attribute else [],
                    "translation": [float(x) for x in a.translation],
                    "size": [width, length, height],
                    "rotation": yaw_to_quaternion(float(a.yaw)),
                    "num_lidar_pts": int(a.num_lidar_pts),
                    "num_radar_pts": 0,
                }
            )
    annotations: list[dict] = []
    instances: list[dict] = []
    for track_id in sorted(by_track):
        chain = by_track[track_id]
        _link(chain)
        annotations.extend(chain)
        instances.append(
            {
                "token": ids.instance_token(track_id),
                "category_token": category_token(category_of[track_id]),
                "nbr_annotations": len(chain),
                "first_annotation_token": chain[0]["token"],
                "last_annotation_token": chain[-1]["token"],
            }
        )
    return {
        "log": [log],
        "scene": [scene],
        "sample": samples,
        "sample_data": sample_data,
        "ego_pose": ego_poses,
        "sample_annotation": annotations,
        "instance": instances,
    }


def merge_tables(
    fragments: list[dict[str, list[dict]]], calibrated: dict[str, dict], maps: list[dict]
) -> dict[str, list[dict]]:
    """All 13 tables from the scene fragments (in the given order), the calibrated sensors and the
    map records (`{"token", "log_tokens", "category", "filename"}`; log_tokens are filled here from
    the logs' locations — each map record carries a `location` key that is dropped)."""
    tables = static_tables()
    tables["calibrated_sensor"] = list(calibrated.values())
    for name in DYNAMIC_TABLES:
        tables[name] = [r for f in fragments for r in f[name]]
    map_table = []
    for m in maps:
        logs = [log["token"] for log in tables["log"] if log["location"] == m["location"]]
        map_table.append(
            {"token": m["token"], "log_tokens": logs, "category": m["category"], "filename": m["filename"]}
        )
    tables["map"] = map_table
    return tables


def write_tables(table_dir: Path, tables: dict[str, list[dict]]) -> None:
    """Write the 13 tables as `<table_dir>/<name>.json`, each atomically."""
    missing = [n for n in TABLE_NAMES if n not in tables]
    if missing:
        raise ValueError(f"tables missing: {missing}")
    for name in TABLE_NAMES:
        write_json_atomic(Path(table_dir) / f"{name}.json", tables[name], indent=0)
