"""`DataConfig`: what the dataset produces (resolution, grid, horizons, padding sizes). It is part
of the feature-cache key."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from carla_bridge.sensors.rig import CAMERAS  # nuScenes camera order (one definition)
from occupancy import GridSpec

__all__ = ["CAMERAS", "REAL_NUSCENES_VERSIONS", "DataConfig", "GridConfig"]

REAL_NUSCENES_VERSIONS = ("v1.0-trainval", "v1.0-mini", "v1.0-test")


class GridConfig:
    """Mixin of the dataclass configs that name a voxel grid by plain lists (YAML and checkpoint
    friendly): `grid_lower`, `grid_upper`, `grid_voxel` [m]."""

    grid_lower: list[float]
    grid_upper: list[float]
    grid_voxel: list[float]

    @property
    def grid(self) -> GridSpec:
        """The voxel grid."""
        return GridSpec(tuple(self.grid_lower), tuple(self.grid_upper), tuple(self.grid_voxel))  # type: ignore[arg-type]

    def to_dict(self) -> dict:
        """Plain-value dict (JSON/YAML/checkpoint safe)."""
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class DataConfig(GridConfig):
    """Dataset output settings.

    Attributes:
        image_size: (h, w) [px] images are resized to; intrinsics scaled accordingly.
        grid_lower, grid_upper, grid_voxel: the model grid the occupancy targets are resampled to.
        history: H past keyframes in the ego history (padded by repeating the oldest at scene start).
        horizon: T future keyframes (samples without T future keyframes are skipped).
        max_agents: A agent slots (nearest first).
        max_branches: Kb counterfactual branch slots.
        max_future_boxes: M boxes per future step for collision metrics (nearest first).
        route_points: R route points, `route_spacing` apart, from 10 m behind the ego.
        route_spacing: [m].
    """

    image_size: list[int] = field(default_factory=lambda: [96, 160])
    grid_lower: list[float] = field(default_factory=lambda: [-40.0, -40.0, -1.0])
    grid_upper: list[float] = field(default_factory=lambda: [40.0, 40.0, 5.4])
    grid_voxel: list[float] = field(default_factory=lambda: [1.6, 1.6, 0.8])
    history: int = 4
    horizon: int = 6
    max_agents: int = 16
    max_branches: int = 4
    max_future_boxes: int = 48
    route_points: int = 41
    route_spacing: float = 2.0

    @classmethod
    def from_model(cls, model_config, **overrides) -> DataConfig:
        """The data settings a `ModelConfig` needs (image size, grid, horizons, agent slots)."""
        return cls(
            image_size=list(model_config.image_size),
            grid_lower=list(model_config.grid_lower),
            grid_upper=list(model_config.grid_upper),
            grid_voxel=list(model_config.grid_voxel),
            history=model_config.history,
            horizon=model_config.horizon,
            max_agents=model_config.max_agents,
            **overrides,
        )
