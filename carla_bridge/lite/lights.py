"""Traffic-light cycles and the one mapping from a simulator head state to the planner's `LightState`.

Every junction group cycles through its phases (green, yellow, all-red) with a seeded offset per
group; heads of the same phase (same axis) share their state. Head states are `HeadState` values;
`to_light_state` is the only place that turns them into `planner.LightState` (yellow counts as red:
the planner must stop for it unless it cannot).
"""

from __future__ import annotations

from enum import IntEnum

import numba as nb
import numpy as np
import torch
from torch import Tensor

from carla_bridge.lite.map_data import LightArrays
from planner import LightState


class HeadState(IntEnum):
    """State of one traffic-light head in the simulator (as CARLA's `carla.TrafficLightState`)."""

    RED = 0
    YELLOW = 1
    GREEN = 2
    OFF = 3


HEAD_TO_LIGHT_STATE = torch.tensor(
    [int(LightState.RED), int(LightState.RED), int(LightState.GREEN), int(LightState.NONE)], dtype=torch.int64
)
"""`[4]` `LightState` of each `HeadState` (index by the head state)."""


def to_light_state(head: Tensor) -> Tensor:
    """`planner.LightState` values (int64, same shape) of simulator `HeadState` values `head [...]`."""
    return HEAD_TO_LIGHT_STATE[head.long()]


@nb.njit(cache=True)
def head_states(time: np.ndarray, m: LightArrays, green: float, yellow: float, all_red: float) -> np.ndarray:
    """`[W, H]` int64 `HeadState` of every head at `time [W]` [s]."""
    W, H = time.shape[0], m.head_phase.shape[0]
    out = np.empty((W, H), dtype=np.int64)
    period = green + yellow + all_red
    for w in range(W):
        for h in range(H):
            g = m.head_group[h]
            tl = (time[w] + m.group_offset[g]) % (m.group_phases[g] * period)
            active = int(tl // period)
            within = tl - active * period
            if active != m.head_phase[h]:
                out[w, h] = 0
            elif within < green:
                out[w, h] = 2
            elif within < green + yellow:
                out[w, h] = 1
            else:
                out[w, h] = 0
    return out
