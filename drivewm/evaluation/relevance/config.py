"""The action-relevance run: its frozen protocol (`configs/relevance-v1.json`) and run options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivewm.evaluation.common.config import ProtocolConfig
from drivewm.factory import NEEDS_CKPT, NO_PLAN, WORLD_MODELS
from planner.scorer import ScorerConfig

DEFAULT_PROTOCOL = "relevance-v1"
MODEL_NAMES = tuple(name for name in WORLD_MODELS if name != NO_PLAN)
"""World models a run may name; `drivewm` brings its ablation row `drivewm-noplan` with it."""


@dataclass(frozen=True)
class RelevanceConfig(ProtocolConfig):
    """One action-relevance run (written into results.json). Build it with
    `RelevanceConfig.from_protocol("relevance-v1", towns=..., models=..., ...)`.

    Protocol fields (frozen in `configs/<protocol>.json`):
        plans: candidate plans per scene (N ≥ 4).
        warmup: (min, max) autopilot seconds before the planning moment; the moment is the first
            "interesting" time after min (a road user a plan can reach, or a red light, within
            `interest_distance` [m] ahead), else max.
        num_vehicles, num_pedestrians, num_parked, num_props: traffic of the lite world.
        unsafe_fraction: share of the N plans built to be unsafe.
        oracle_dt: branch step of the simulated truth [s].
        threshold: unsafety operating threshold (0.5 = the scorer's gates).
        latency_plans: the N at which the planner step is timed.
        scorer: the plan scorer every model and the truth are scored with.

    Run options:
        towns: town names (held-out ones for a learned model); scenes cycle through them.
        scenes: number of scenes.
        models: world models (`MODEL_NAMES`); `drivewm` gives two rows (with and without plan
            conditioning).
        ckpt: learned checkpoint (`drivewm`, `cv`).
        plan_conditioning: False = evaluate the learned model only with its plan pathway off.
        seed: global seed (scene i uses (seed, i)).
        max_branch: oracle branches stepped together (memory, not numbers).
        latency_repeats: timed repeats per model and N (oracle: 1).
        figures: BEV figures for the first that many scenes.
        device: torch device of the learned model.
    """

    TASK = "relevance"
    PROTOCOL_FIELDS = (
        "plans",
        "warmup",
        "interest_distance",
        "num_vehicles",
        "num_pedestrians",
        "num_parked",
        "num_props",
        "unsafe_fraction",
        "oracle_dt",
        "threshold",
        "latency_plans",
        "scorer",
    )

    protocol: str
    plans: int
    warmup: tuple[float, float]
    interest_distance: float
    num_vehicles: int
    num_pedestrians: int
    num_parked: int
    num_props: int
    unsafe_fraction: float
    oracle_dt: float
    threshold: float
    latency_plans: tuple[int, ...]
    scorer: ScorerConfig
    towns: tuple[str, ...] = ("Town03",)
    scenes: int = 20
    models: tuple[str, ...] = ("cv-gt", "empty", "oracle")
    ckpt: str | None = None
    plan_conditioning: bool = True
    seed: int = 0
    max_branch: int = 32
    latency_repeats: int = 3
    figures: int = 4
    device: str = "cpu"

    @classmethod
    def _decode(cls, name: str, value: Any) -> Any:
        if name == "scorer":
            return ScorerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
        return super()._decode(name, value)

    def validate(self) -> RelevanceConfig:
        """`ValueError` naming the field of the first bad setting; returns self."""
        if not self.towns:
            raise ValueError("towns must name at least one town")
        if self.scenes < 1:
            raise ValueError(f"scenes must be ≥ 1, got {self.scenes}")
        if self.plans < 4:
            raise ValueError(f"plans must be ≥ 4, got {self.plans}")
        bad = [m for m in self.models if m not in MODEL_NAMES]
        if bad or not self.models:
            raise ValueError(f"models must be among {', '.join(MODEL_NAMES)}, got {list(self.models)}")
        for m in self.models:
            if m in NEEDS_CKPT and not self.ckpt:
                raise ValueError(f"model {m!r} needs a trained checkpoint: pass --ckpt PATH")
        if not 0.0 <= self.warmup[0] <= self.warmup[1]:
            raise ValueError(f"warmup must be (min, max) with 0 ≤ min ≤ max, got {self.warmup}")
        if not 0.0 <= self.unsafe_fraction <= 0.75:
            raise ValueError(f"unsafe_fraction must lie in [0, 0.75], got {self.unsafe_fraction}")
        if self.max_branch < 1:
            raise ValueError(f"max_branch must be ≥ 1, got {self.max_branch}")
        return self

    def rows(self) -> list[str]:
        """Model rows of the report, in order."""
        out: list[str] = []
        for m in self.models:
            if m == "drivewm":
                out += ([m] if self.plan_conditioning else []) + [NO_PLAN]
            else:
                out.append(m)
        return out


__all__ = ["DEFAULT_PROTOCOL", "MODEL_NAMES", "RelevanceConfig"]
