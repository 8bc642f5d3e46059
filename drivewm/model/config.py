"""`ModelConfig`: every hyper-parameter of the world model, plain values only (so checkpoints
stay loadable with `torch.load(weights_only=True)` and LightningCLI can fill it from YAML)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from drivewm.data.config import GridConfig


@dataclass
class ModelConfig(GridConfig):
    """World-model hyper-parameters.

    Attributes:
        image_size: (h, w) camera input resolution [px]; the dataset resizes to it.
        grid_lower, grid_upper, grid_voxel: the model's occupancy grid (x, y, z) [m] in the ego frame;
            its BEV (x, y) is also the planner's obstacle grid.
        backbone_channels: channels of the image backbone stages (each stage halves the resolution,
            after a stride-2 stem), shared across cameras.
        feat_dim: image feature channels sampled into the voxels (C).
        bev_dim: BEV latent channels.
        bev_blocks: residual conv blocks of the BEV encoder.
        num_modes: K agent trajectory modes.
        ego_modes: proposals of the ego head.
        max_agents: A agent slots (detections kept after top-k).
        det_threshold: detection score threshold for valid agents at inference.
        horizon: T future steps (0.5 s each).
        history: H past keyframes in the ego history.
        coarse_factor: the plan-conditioned occupancy correction runs at X/f × Y/f.
        plan_dim: width of the plan embedding and agent-plan interaction MLP.
        residual_dim: hidden channels of the coarse plan-conditioned occupancy correction.
        route_points: route polyline resampled to this many points for the ego head.
        plan_conditioning: False zeroes the whole plan pathway (the ablation in the open-loop report).
        plan_dropout: share of training scenes whose plan pathway is switched off (so the ablation is a
            trained plan-agnostic predictor and the pathway learns only what the plan adds).
        temporal: fuse the previous scene latent (warped by ego motion) in `encode`.
    """

    image_size: list[int] = field(default_factory=lambda: [96, 160])
    grid_lower: list[float] = field(default_factory=lambda: [-40.0, -40.0, -1.0])
    grid_upper: list[float] = field(default_factory=lambda: [40.0, 40.0, 5.4])
    grid_voxel: list[float] = field(default_factory=lambda: [1.6, 1.6, 0.8])
    backbone_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    feat_dim: int = 32
    bev_dim: int = 48
    bev_blocks: int = 2
    num_modes: int = 3
    ego_modes: int = 6
    max_agents: int = 16
    det_threshold: float = 0.3
    horizon: int = 6
    history: int = 4
    coarse_factor: int = 5
    plan_dim: int = 64
    residual_dim: int = 16
    route_points: int = 16
    plan_conditioning: bool = True
    plan_dropout: float = 0.25
    temporal: bool = True

    def __post_init__(self) -> None:
        if len(self.image_size) != 2 or min(self.image_size) < 16:
            raise ValueError(f"ModelConfig.image_size must be [h, w] with h, w >= 16, got {self.image_size}")
        gx, gy, _ = self.grid.shape
        if gx % self.coarse_factor or gy % self.coarse_factor:
            raise ValueError(f"ModelConfig.coarse_factor {self.coarse_factor} must divide the BEV shape {(gx, gy)}")
        if not 0.0 <= self.plan_dropout < 1.0:
            raise ValueError(f"ModelConfig.plan_dropout must be in [0, 1), got {self.plan_dropout}")
        for name in ("num_modes", "ego_modes", "max_agents", "horizon", "feat_dim", "bev_dim", "plan_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of `to_dict`; unknown keys raise `ValueError` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown keys {unknown}")
        return cls(**d)
