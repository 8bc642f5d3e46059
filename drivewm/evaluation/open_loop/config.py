"""The open-loop evaluation: its frozen protocol (`configs/open-loop-v1.json`) and run options."""

from __future__ import annotations

from dataclasses import dataclass

from drivewm.evaluation.common.config import ProtocolConfig

DEFAULT_PROTOCOL = "open-loop-v1"


@dataclass(frozen=True)
class OpenLoopConfig(ProtocolConfig):
    """Open-loop evaluation settings (written into results.json). Build it with
    `OpenLoopConfig.from_protocol("open-loop-v1", batch_size=...)`.

    Protocol fields (frozen in `configs/<protocol>.json`):
        planning_horizons: horizons [s] of the planning L2 and collision rates.
        label_grid: score occupancy on the Occ3D label grid (True) or on the model grid.
        match_radius: detection ↔ ground-truth gating distance [m].
        obstacle_threshold: BEV obstacle probability threshold for the branch IoU.
        max_branches: counterfactual branches per sample in the plan-sensitivity table.

    Run options:
        batch_size: samples per forward pass.
        max_samples: evaluate only the first n samples of the split (0 = all).
        num_figures: samples drawn in the report.
    """

    TASK = "open_loop"
    PROTOCOL_FIELDS = ("planning_horizons", "label_grid", "match_radius", "obstacle_threshold", "max_branches")

    protocol: str
    planning_horizons: tuple[float, ...]
    label_grid: bool
    match_radius: float
    obstacle_threshold: float
    max_branches: int
    batch_size: int = 4
    max_samples: int = 0
    num_figures: int = 2

    def validate(self) -> OpenLoopConfig:
        """`ValueError` naming the field of the first bad setting; returns self."""
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.max_samples < 0:
            raise ValueError(f"max_samples must be ≥ 0 (0 = all), got {self.max_samples}")
        if self.num_figures < 0:
            raise ValueError(f"num_figures must be ≥ 0, got {self.num_figures}")
        if self.max_branches < 0:
            raise ValueError(f"max_branches must be ≥ 0, got {self.max_branches}")
        if not self.match_radius > 0:
            raise ValueError(f"match_radius must be positive, got {self.match_radius}")
        if not 0.0 < self.obstacle_threshold < 1.0:
            raise ValueError(f"obstacle_threshold must lie in (0, 1), got {self.obstacle_threshold}")
        return self


__all__ = ["DEFAULT_PROTOCOL", "OpenLoopConfig"]
