"""Stop signs from the map's OpenDRIVE signals (CARLA landmark type ``206``).

Each governed approach lane gets one `StopSign`: a car must come to a full stop at `stop_s` before
entering the junction. None of the vendored CARLA towns carries stop signals; maps that do (e.g. the
generated test map) are read through the same `carla.Map` landmarks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from carla_bridge.coords import location_to_world
from carla_bridge.maps.lanes import Lane
from carla_bridge.maps.signals import signal_lanes

STOP_SIGN_TYPE = "206"


@dataclass(frozen=True)
class StopSign:
    """A stop line on one approach lane.

    Attributes:
        id: unique within the town.
        lane_id: approach lane.
        stop_s: stop-line arc length on the lane [m].
        stop_xy: `[2]` stop-line point on the lane centre [m].
        pole_xy: `[2]` sign position [m].
        junction_id: the junction the lane leads into (-1 if none).
        signal_id: the OpenDRIVE signal id.
    """

    id: int
    lane_id: int
    stop_s: float
    stop_xy: np.ndarray
    pole_xy: np.ndarray
    junction_id: int
    signal_id: str


def stop_signs_from_map(carla_map: Any, lanes: list[Lane], index: dict[tuple[int, int, int], int]) -> list[StopSign]:
    """All stop signs of a map, one per (signal, approach lane), sorted by signal id."""
    by_id: dict[str, list[Any]] = defaultdict(list)
    for lm in carla_map.get_all_landmarks_of_type(STOP_SIGN_TYPE):
        by_id[str(lm.id)].append(lm)
    out: list[StopSign] = []
    seen: set[int] = set()
    for sid in sorted(by_id, key=lambda x: (len(x), x)):
        for lm in by_id[sid]:
            pole = location_to_world(lm.transform.location)[:2]
            for sl in signal_lanes(carla_map, lanes, index, lm):
                if sl.approach in seen:
                    continue
                seen.add(sl.approach)
                lane = lanes[sl.approach]
                junction = next((lanes[k].junction_id for k in lane.successors if lanes[k].junction_id >= 0), -1)
                out.append(
                    StopSign(
                        id=len(out),
                        lane_id=sl.approach,
                        stop_s=sl.stop_s,
                        stop_xy=lane.interpolate(sl.stop_s)[0][0],
                        pole_xy=pole,
                        junction_id=int(junction),
                        signal_id=sid,
                    )
                )
    return out
