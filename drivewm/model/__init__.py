"""The learned, ego-plan-conditioned world model (`DriveWorldModel` implements `planner.WorldModel`)."""

from drivewm.model.config import ModelConfig
from drivewm.model.world_model import DriveWorldModel, RolloutOutput, targets_to_agents

__all__ = ["DriveWorldModel", "ModelConfig", "RolloutOutput", "targets_to_agents"]
