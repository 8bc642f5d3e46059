"""The learned, ego-plan-conditioned world model (`DriveWorldModel` implements `planner.WorldModel`)."""

from drivewm.model.config import ModelConfig
from drivewm.model.world_model import (
    DriveSceneFeatures,
    DriveWorldModel,
    RolloutOutput,
    scene_features,
    targets_to_agents,
)

__all__ = [
    "DriveSceneFeatures",
    "DriveWorldModel",
    "ModelConfig",
    "RolloutOutput",
    "scene_features",
    "targets_to_agents",
]
