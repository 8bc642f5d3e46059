"""Generator configuration, scene specs and their seeds (the part of every cache key)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

VERSION_PATTERN = re.compile(r"^v1\.0-sim-[A-Za-z0-9_-]+$")
REAL_VERSIONS = ("v1.0-mini", "v1.0-trainval", "v1.0-test")
KEYFRAME_SECONDS = 0.5  # nuScenes keyframes at 2 Hz


def check_version(version: str) -> str:
    """`ValueError` unless `version` is a generated-dataset name `v1.0-sim-<name>`."""
    if version in REAL_VERSIONS:
        raise ValueError(f"version {version!r} names real nuScenes; generated datasets are named v1.0-sim-<name>")
    if not VERSION_PATTERN.match(version or ""):
        raise ValueError(f"version {version!r} must look like v1.0-sim-<name> (letters, digits, '-', '_')")
    return version


def parse_resolution(text: str) -> tuple[int, int]:
    """`'400x225'` → (400, 225); `ValueError` naming the field otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 9:
        raise ValueError(f"resolution {text!r} must be WIDTHxHEIGHT with WIDTH ≥ 16 and HEIGHT ≥ 9, e.g. 400x225")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines a generated dataset (workers excluded: they change nothing).

    Attributes:
        version: `v1.0-sim-<name>`.
        towns: towns to record in; scene i is recorded in `towns[i % len(towns)]`.
        scenes: number of scenes.
        scene_seconds: length of each scene [s] (keyframes every 0.5 s).
        branches: counterfactual branches per branch point (0: none).
        branch_every: keyframes between branch points (the first at keyframe `branch_start`).
        branch_start: first keyframe with branches (needs the 2 s of history before it).
        resolution: camera (width, height) [px].
        seed: global seed; scene i's seed derives from (seed, i).
        val_towns: towns whose scenes form the val split (held out); empty: every 4th scene is val.
        num_vehicles / num_pedestrians / num_parked: traffic per scene.
        spawn_radius: traffic spawns within this distance of the ego's route [m] (dense, interactive).
        lidar_beams: lidar channels.
        warmup_seconds: simulated before the first keyframe (traffic settles) [s].
    """

    version: str
    towns: tuple[str, ...]
    scenes: int
    scene_seconds: float = 20.0
    branches: int = 4
    branch_every: int = 4
    branch_start: int = 4
    resolution: tuple[int, int] = (400, 225)
    seed: int = 0
    val_towns: tuple[str, ...] = ()
    num_vehicles: int = 40
    num_pedestrians: int = 20
    num_parked: int = 8
    spawn_radius: float = 60.0
    lidar_beams: int = 32
    warmup_seconds: float = 2.0

    def validate(self) -> GeneratorConfig:
        check_version(self.version)
        if not self.towns:
            raise ValueError("towns must name at least one town")
        if not isinstance(self.scenes, int) or self.scenes < 1:
            raise ValueError(f"scenes must be a positive integer, got {self.scenes!r}")
        if not self.scene_seconds >= 1.0:
            raise ValueError(f"scene_seconds must be ≥ 1 s, got {self.scene_seconds}")
        if self.branches < 0 or self.branches > len(BRANCH_KINDS):
            raise ValueError(f"branches must lie in 0..{len(BRANCH_KINDS)}, got {self.branches}")
        if self.branch_every < 1:
            raise ValueError(f"branch_every must be ≥ 1, got {self.branch_every}")
        unknown = [t for t in self.val_towns if t not in self.towns]
        if unknown:
            raise ValueError(f"val_towns {unknown} are not among towns {list(self.towns)}")
        parse_resolution(f"{self.resolution[0]}x{self.resolution[1]}")
        return self

    @property
    def num_keyframes(self) -> int:
        return max(1, round(self.scene_seconds / KEYFRAME_SECONDS))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["towns"] = list(self.towns)
        d["val_towns"] = list(self.val_towns)
        d["resolution"] = list(self.resolution)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        d = dict(d)
        d["towns"] = tuple(d["towns"])
        d["val_towns"] = tuple(d.get("val_towns", ()))
        d["resolution"] = tuple(d["resolution"])
        return cls(**d)

    def scene_specs(self) -> list[SceneSpec]:
        return [
            SceneSpec(
                index=i, name=f"scene-{i:04d}", town=self.towns[i % len(self.towns)], seed=scene_seed(self.seed, i)
            )
            for i in range(self.scenes)
        ]

    def split_of(self, spec: SceneSpec) -> str:
        if self.val_towns:
            return "val" if spec.town in self.val_towns else "train"
        return "val" if spec.index % 4 == 3 else "train"


# default branch plan kinds, in the order they fill --branches K after `keep`, `brake` and the kinds the
# scene at the branch point asks for (`branches.interaction_kinds`; unsafe ones included early)
BRANCH_KINDS: tuple[str, ...] = (
    "keep",
    "brake",
    "left_offset",
    "accelerate",
    "swerve_right",
    "right_offset",
    "swerve_left",
    "slow",
)


def scene_seed(seed: int, index: int) -> int:
    """Seed of scene `index` from the global `seed` (independent of worker order)."""
    return int.from_bytes(hashlib.sha256(f"drivewm-scene/{seed}/{index}".encode()).digest()[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class SceneSpec:
    """One scene to record: index, name (`scene-0003`), town and seed."""

    index: int
    name: str
    town: str
    seed: int
