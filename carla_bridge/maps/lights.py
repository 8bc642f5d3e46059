"""Traffic lights: one `LightHead` per signal (approach), grouped per junction.

From the map's signals (OpenDRIVE type ``1000001``) when it has any; otherwise (Town03/Town05 in their
2019 versions carry none) placed procedurally, seeded, at junctions that look signalized: every
junction with ≥ 4 incoming roads, and 3-way junctions with probability `p_three_way`. Heads of a
junction get a `phase` index: approaches along the same axis (opposite directions) share a phase, so
a simulator can cycle phases 0, 1, … per group.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carla_bridge.coords import location_to_world, wrap_angle_np
from carla_bridge.maps.lanes import Lane
from carla_bridge.maps.signals import signal_lanes, stop_line_s

TRAFFIC_LIGHT_TYPE = "1000001"
POLE_OFFSET = 1.5  # [m] beyond the right edge of the rightmost approach lane (procedural poles)
PHASE_AXIS_TOLERANCE = np.deg2rad(35.0)


@dataclass
class LightHead:
    """One traffic-light head and the approach lanes it governs.

    Attributes:
        id: unique head id within the town.
        junction_id: junction it guards (-1 if unknown).
        lane_ids: approach lanes (entering the junction) it governs.
        stop_s: `[L]` stop-line arc length on each of `lane_ids` [m].
        stop_xy: `[L, 2]` stop-line points (lane centre) on each of `lane_ids` [m].
        governed_lane_ids: junction connecting lanes behind the stop line (entering them on red = running it).
        pole_xy: `[2]` pole position [m].
        yaw: heading of the traffic it governs [rad] (the head faces yaw + π).
        phase: phase index within its junction group (same axis = same phase).
        source: 'map' or 'procedural'.
    """

    id: int
    junction_id: int
    lane_ids: list[int]
    stop_s: np.ndarray
    stop_xy: np.ndarray
    governed_lane_ids: list[int]
    pole_xy: np.ndarray
    yaw: float
    phase: int = 0
    source: str = "map"


@dataclass
class TrafficLightGroup:
    """The heads of one junction. `num_phases` = max phase + 1."""

    junction_id: int
    heads: list[LightHead] = field(default_factory=list)

    @property
    def num_phases(self) -> int:
        return 1 + max((h.phase for h in self.heads), default=0)


def _assign_phases(heads: list[LightHead]) -> None:
    axes: list[float] = []
    for h in heads:
        for i, a in enumerate(axes):
            if abs(wrap_angle_np(2.0 * (h.yaw - a))) / 2.0 < PHASE_AXIS_TOLERANCE:
                h.phase = i
                break
        else:
            h.phase = len(axes)
            axes.append(h.yaw)


def _groups(heads: list[LightHead]) -> list[TrafficLightGroup]:
    by_j: dict[int, list[LightHead]] = defaultdict(list)
    for h in heads:
        by_j[h.junction_id].append(h)
    groups = []
    for j in sorted(by_j):
        _assign_phases(by_j[j])
        groups.append(TrafficLightGroup(j, by_j[j]))
    return groups


def _junction_of(lanes: list[Lane], approach: int) -> int:
    for k in lanes[approach].successors:
        if lanes[k].junction_id >= 0:
            return lanes[k].junction_id
    return -1


def lights_from_map(
    carla_map: Any, lanes: list[Lane], index: dict[tuple[int, int, int], int]
) -> list[TrafficLightGroup]:
    """Light groups from the map's traffic-light signals (empty if it has none)."""
    by_id: dict[str, list[Any]] = defaultdict(list)
    for lm in carla_map.get_all_landmarks_of_type(TRAFFIC_LIGHT_TYPE):
        by_id[str(lm.id)].append(lm)
    heads: list[LightHead] = []
    for sid in sorted(by_id, key=lambda x: (len(x), x)):
        refs = by_id[sid]
        found: dict[int, tuple[float, set[int]]] = {}
        for lm in refs:
            for sl in signal_lanes(carla_map, lanes, index, lm):
                s, gov = found.get(sl.approach, (sl.stop_s, set()))
                if sl.governed >= 0:
                    gov.add(sl.governed)
                found[sl.approach] = (s, gov)
        if not found:
            continue
        lane_ids = sorted(found)
        stop_s = np.array([found[i][0] for i in lane_ids])
        stop_xy = np.concatenate([lanes[i].interpolate(s)[0] for i, s in zip(lane_ids, stop_s)])
        _, yaw = lanes[lane_ids[0]].interpolate(stop_s[0])
        governed = sorted(set().union(*(found[i][1] for i in lane_ids)))
        junction = next((lanes[g].junction_id for g in governed), _junction_of(lanes, lane_ids[0]))
        heads.append(
            LightHead(
                id=len(heads),
                junction_id=int(junction),
                lane_ids=lane_ids,
                stop_s=stop_s,
                stop_xy=stop_xy,
                governed_lane_ids=governed,
                pole_xy=location_to_world(refs[0].transform.location)[:2],
                yaw=float(yaw[0]),
                source="map",
            )
        )
    return _groups(heads)


def junction_approaches(lanes: list[Lane]) -> dict[int, dict[int, list[int]]]:
    """junction id → {incoming road id → approach lane ids} (non-junction lanes leading into the junction)."""
    out: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for lane in lanes:
        if lane.is_junction:
            continue
        for k in lane.successors:
            j = lanes[k].junction_id
            if j >= 0 and lane.id not in out[j][lane.road_id]:
                out[j][lane.road_id].append(lane.id)
    return out


def place_lights(
    lanes: list[Lane], seed: int = 0, p_three_way: float = 0.5, exclude_junctions: set[int] | None = None
) -> list[TrafficLightGroup]:
    """Procedural light groups at signalized-looking junctions (seeded).

    Every junction with ≥ 4 incoming roads gets lights, a 3-way junction with probability `p_three_way`;
    one head per incoming road, its pole beside the rightmost approach lane's stop line. Junctions in
    `exclude_junctions` (e.g. those with stop signs) get none.
    """
    rng = np.random.default_rng(seed)
    heads: list[LightHead] = []
    approaches = junction_approaches(lanes)
    for j in sorted(approaches):
        roads = approaches[j]
        n_in = len(roads)
        draw = rng.random()
        if exclude_junctions and j in exclude_junctions:
            continue
        if n_in < 3 or (n_in == 3 and draw >= p_three_way):
            continue
        for road in sorted(roads):
            lane_ids = sorted(roads[road])
            stop_s = np.array([stop_line_s(lanes[i]) for i in lane_ids])
            stop_xy = np.concatenate([lanes[i].interpolate(s)[0] for i, s in zip(lane_ids, stop_s)])
            yaws = np.array([lanes[i].interpolate(s)[1][0] for i, s in zip(lane_ids, stop_s)])
            yaw = float(yaws[0])
            right = np.array([np.sin(yaw), -np.cos(yaw)])
            # Rightmost approach lane: the one furthest along the right normal.
            r = int(np.argmax(stop_xy @ right))
            pole = stop_xy[r] + right * (lanes[lane_ids[r]].width / 2.0 + POLE_OFFSET)
            governed = sorted({k for i in lane_ids for k in lanes[i].successors if lanes[k].junction_id == j})
            heads.append(
                LightHead(
                    id=len(heads),
                    junction_id=j,
                    lane_ids=lane_ids,
                    stop_s=stop_s,
                    stop_xy=stop_xy,
                    governed_lane_ids=governed,
                    pole_xy=pole,
                    yaw=yaw,
                    source="procedural",
                )
            )
    return _groups(heads)
