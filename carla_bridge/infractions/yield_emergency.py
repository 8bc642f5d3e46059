"""YieldToEmergencyVehicleTest (scenario_runner `atomic_criteria.py`): the ego must let the emergency
vehicle behind it pass. While the scenario runs, the test fails whenever the ego is ahead of the
emergency vehicle (`(ego − ev) · ev_forward > 0`) and passes otherwise; when the scenario ends, a
failing test gives one `yield_emergency_vehicle_infractions` event.

Scenarios call `yield_update` every step they run; its value at the scenario's last step decides the event.
"""

from __future__ import annotations

import numpy as np


def yield_update(ego_location: np.ndarray, ev_location: np.ndarray, ev_yaw: np.ndarray) -> np.ndarray:
    """`[W]` bool: the test is failing this step (the ego is still ahead of the emergency vehicle).

    Args:
        ego_location / ev_location: `[W, 2]` box centres [m]; ev_yaw: `[W]` [rad].
    """
    rel = np.asarray(ego_location, dtype=np.float64) - np.asarray(ev_location, dtype=np.float64)
    yaw = np.asarray(ev_yaw, dtype=np.float64)
    return rel[..., 0] * np.cos(yaw) + rel[..., 1] * np.sin(yaw) > 0.0
