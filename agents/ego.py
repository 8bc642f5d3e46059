"""The ego vehicle's dimensions (the nuScenes car), in one place.

The ego frame's origin is the rear-axle centre on the ground (x forward, y left, z up); the box
centre lies `rear_axle_to_center` ahead of it. Every collision check uses this box with the plan's
yaw (DESIGN.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EgoVehicle:
    """Ego vehicle geometry.

    Attributes:
        length: box length along x [m].
        width: box width along y [m].
        height: box height [m].
        wheelbase: distance rear axle → front axle [m].
        rear_axle_to_center: distance rear axle → box centre along x [m].
        front_overhang: distance rear axle → front bumper along x [m] (derived: the centre
            offset plus half the length).
    """

    length: float = 4.084
    width: float = 1.85
    height: float = 1.56
    wheelbase: float = 2.588
    rear_axle_to_center: float = 1.38

    @property
    def front_overhang(self) -> float:
        """Rear axle → front bumper along x [m]: where "the ego reaches" a stop line or a route end."""
        return self.rear_axle_to_center + 0.5 * self.length

    @property
    def size(self) -> tuple[float, float, float]:
        """(length, width, height) [m]."""
        return (self.length, self.width, self.height)


EGO = EgoVehicle()
