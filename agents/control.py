"""Vehicle control command, shaped like `carla.VehicleControl`."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Control:
    """One control command.

    Attributes:
        throttle: [0, 1].
        steer: [-1, 1]; positive steers **left** (our right-handed convention; the CARLA
            conversion module flips the sign for `carla.VehicleControl`, where positive is right).
        brake: [0, 1].
    """

    throttle: float = 0.0
    steer: float = 0.0
    brake: float = 0.0

    def validate(self) -> Control:
        """Raise `ValueError` naming the field if a value is non-finite or out of range."""
        for name, lo in (("throttle", 0.0), ("steer", -1.0), ("brake", 0.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"Control.{name} must be a finite number, got {v!r}")
            if not lo <= v <= 1.0:
                raise ValueError(f"Control.{name} must lie in [{lo}, 1], got {v}")
        return self

    @staticmethod
    def emergency_brake() -> Control:
        return Control(throttle=0.0, steer=0.0, brake=1.0)
