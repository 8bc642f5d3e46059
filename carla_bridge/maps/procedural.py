"""Procedural OpenDRIVE maps: a grid of junctions joined by straight two-lane roads, written as .xodr
text that `carla.Map` loads like any CARLA town.

Nodes sit on an ``nx × ny`` grid, `block` metres apart; each node is a junction whose arms are the
roads to its neighbours, plus dead-end stubs of length `stub` on the grid's border when
``stubs=True`` (``grid_town_xodr(1, 1, stubs=True)`` is a single four-way crossroads). Every
junction connects every incoming lane to every other arm (straight lines, quarter-circle turns of
radius `junction_half`), lanes keep right, arms carry sidewalks. Junction approaches can carry stop
signs (OpenDRIVE/CARLA signal type ``206``) or traffic lights (``1000001``) placed on the incoming
lane just before the junction, chosen per junction with a seeded generator.

The OpenDRIVE frame (x east, y north, right-handed) is our world frame: CARLA mirrors y on load and
`carla_bridge.coords` mirrors it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occupancy.atomic import write_text_atomic

_MARK = '<roadMark sOffset="0" type="{t}" weight="standard" color="standard" width="0.15" laneChange="none"/>'


@dataclass(frozen=True)
class _Arm:
    road: int
    contact: str  # 'start' or 'end': which end of `road` touches the junction
    point: tuple[float, float]  # where the road's reference line meets the junction
    heading: float  # outward heading of the arm [rad]

    @property
    def incoming_lane(self) -> int:
        return 1 if self.contact == "start" else -1

    @property
    def outgoing_lane(self) -> int:
        return -1 if self.contact == "start" else 1


def _lane(lane_id: int, kind: str, width: float, mark: str, pred: int | None = None, succ: int | None = None) -> str:
    link = ""
    if pred is not None or succ is not None:
        p = f'<predecessor id="{pred}"/>' if pred is not None else ""
        s = f'<successor id="{succ}"/>' if succ is not None else ""
        link = f"<link>{p}{s}</link>"
    return (
        f'<lane id="{lane_id}" type="{kind}" level="false">{link}'
        f'<width sOffset="0" a="{width}" b="0" c="0" d="0"/>{_MARK.format(t=mark)}</lane>'
    )


def _road(
    rid: int,
    junction: int,
    geometry: str,
    length: float,
    link: str,
    lanes: str,
    signals: str = "",
    speed_kmh: float = 40.0,
) -> str:
    return (
        f'<road name="r{rid}" length="{length:.6f}" id="{rid}" junction="{junction}">'
        f"<link>{link}</link>"
        f'<type s="0" type="town"><speed max="{speed_kmh}" unit="km/h"/></type>'
        f"<planView>{geometry}</planView><elevationProfile/><lateralProfile/>"
        f"<lanes>{lanes}</lanes><objects/><signals>{signals}</signals></road>"
    )


def _line(x: float, y: float, hdg: float, length: float) -> str:
    return f'<geometry s="0" x="{x:.6f}" y="{y:.6f}" hdg="{hdg:.9f}" length="{length:.6f}"><line/></geometry>'


def _arc(x: float, y: float, hdg: float, length: float, curvature: float) -> str:
    return (
        f'<geometry s="0" x="{x:.6f}" y="{y:.6f}" hdg="{hdg:.9f}" length="{length:.6f}">'
        f'<arc curvature="{curvature:.9f}"/></geometry>'
    )


def _signal(sid: int, road_len: float, arm: _Arm, kind: str, lane_width: float) -> str:
    """A signal for the arm's incoming lane, 1.5 m before the junction, on the driver's right."""
    if arm.contact == "start":  # incoming lane +1 travels towards s = 0
        s, t, orient = 1.5, lane_width + 1.0, "-"
    else:
        s, t, orient = road_len - 1.5, -(lane_width + 1.0), "+"
    name = "Stop" if kind == "206" else "Signal_3Light_Post01"
    lane = arm.incoming_lane
    return (
        f'<signal s="{s:.6f}" t="{t:.6f}" id="{sid}" name="{name}" dynamic="{"yes" if kind != "206" else "no"}" '
        f'orientation="{orient}" zOffset="0" country="OpenDRIVE" type="{kind}" subtype="-1" value="-1" '
        f'height="2.0" width="0.8"><validity fromLane="{lane}" toLane="{lane}"/></signal>'
    )


def grid_town_xodr(
    nx: int = 1,
    ny: int = 1,
    block: float = 80.0,
    lane_width: float = 3.5,
    sidewalk_width: float = 2.0,
    junction_half: float = 10.0,
    stubs: bool = True,
    stub: float = 60.0,
    stop_sign_prob: float = 0.0,
    light_prob: float = 0.0,
    seed: int = 0,
    name: str = "",
) -> str:
    """OpenDRIVE text of a grid town.

    Args:
        nx, ny: junctions along x and y (≥ 1 each; with `stubs=False` at least 2 nodes in total).
        block: distance between neighbouring junction centres [m].
        lane_width: driving lane width [m]; sidewalk_width: sidewalk width [m] (0 = none).
        junction_half: half size of a junction box = turn radius of connecting lanes [m].
        stubs: add dead-end arms of length `stub` on the grid border.
        stop_sign_prob / light_prob: per junction with ≥ 3 arms, probability that all approaches get stop
            signs / traffic lights (checked in this order, seeded by `seed`).
        name: OpenDRIVE header name.

    Raises:
        ValueError: a parameter out of range.
    """
    if nx < 1 or ny < 1:
        raise ValueError(f"grid_town_xodr: nx, ny must be ≥ 1, got {nx}, {ny}")
    if not stubs and nx * ny < 2:
        raise ValueError("grid_town_xodr: a single junction needs stubs=True")
    if not 0 < 2 * junction_half < block:
        raise ValueError(f"grid_town_xodr: need 0 < 2·junction_half < block, got {junction_half}, {block}")
    if junction_half <= lane_width:
        raise ValueError("grid_town_xodr: junction_half must exceed lane_width (turn radius)")
    rng = np.random.default_rng(seed)
    h = junction_half
    roads: list[str] = []
    arms: dict[tuple[int, int], list[_Arm]] = {(i, j): [] for i in range(nx) for j in range(ny)}
    road_len: dict[int, float] = {}
    road_ends: dict[int, tuple[int | None, int | None]] = {}  # road → (junction at start, junction at end)
    jid = {(i, j): 1000 + i * ny + j for i in range(nx) for j in range(ny)}
    next_id = 1

    def add_straight(length: float, ja: int | None, jb: int | None) -> int:
        nonlocal next_id
        rid = next_id
        next_id += 1
        road_len[rid] = length
        road_ends[rid] = (ja, jb)
        return rid

    straight_geo: dict[int, tuple[float, float, float, float]] = {}
    # Roads between neighbouring nodes: along +x and +y.
    for i in range(nx):
        for j in range(ny):
            cx, cy = i * block, j * block
            for di, dj, hdg in ((1, 0, 0.0), (0, 1, math.pi / 2)):
                ni, nj = i + di, j + dj
                if ni >= nx or nj >= ny:
                    continue
                x0, y0 = cx + h * math.cos(hdg), cy + h * math.sin(hdg)
                rid = add_straight(block - 2 * h, jid[(i, j)], jid[(ni, nj)])
                straight_geo[rid] = (x0, y0, hdg, block - 2 * h)
                arms[(i, j)].append(_Arm(rid, "start", (x0, y0), hdg))
                x1, y1 = ni * block - h * math.cos(hdg), nj * block - h * math.sin(hdg)
                arms[(ni, nj)].append(_Arm(rid, "end", (x1, y1), hdg + math.pi))
    if stubs:
        for i in range(nx):
            for j in range(ny):
                cx, cy = i * block, j * block
                outs = []
                if i == 0:
                    outs.append(math.pi)
                if i == nx - 1:
                    outs.append(0.0)
                if j == 0:
                    outs.append(-math.pi / 2)
                if j == ny - 1:
                    outs.append(math.pi / 2)
                for hdg in outs:
                    x0, y0 = cx + h * math.cos(hdg), cy + h * math.sin(hdg)
                    rid = add_straight(stub, jid[(i, j)], None)
                    straight_geo[rid] = (x0, y0, hdg, stub)
                    arms[(i, j)].append(_Arm(rid, "start", (x0, y0), hdg))
    # Signals per junction.
    signals: dict[int, list[str]] = {rid: [] for rid in straight_geo}
    sid = 5000
    for node in sorted(arms):
        u = rng.random()
        if len(arms[node]) < 3:
            continue  # a bend, not an intersection
        kind = "206" if u < stop_sign_prob else ("1000001" if u < stop_sign_prob + light_prob else None)
        if kind is None:
            continue
        for arm in arms[node]:
            signals[arm.road].append(_signal(sid, road_len[arm.road], arm, kind, lane_width))
            sid += 1
    # Straight roads.
    side = sidewalk_width > 0
    for rid, (x0, y0, hdg, length) in straight_geo.items():
        ja, jb = road_ends[rid]
        link = (f'<predecessor elementType="junction" elementId="{ja}"/>' if ja is not None else "") + (
            f'<successor elementType="junction" elementId="{jb}"/>' if jb is not None else ""
        )
        left = _lane(1, "driving", lane_width, "solid") + (_lane(2, "sidewalk", sidewalk_width, "none") if side else "")
        right = _lane(-1, "driving", lane_width, "solid") + (
            _lane(-2, "sidewalk", sidewalk_width, "none") if side else ""
        )
        lanes = (
            f'<laneSection s="0"><left>{left}</left>'
            f'<center><lane id="0" type="none" level="false">{_MARK.format(t="broken")}</lane></center>'
            f"<right>{right}</right></laneSection>"
        )
        roads.append(_road(rid, -1, _line(x0, y0, hdg, length), length, link, lanes, "".join(signals[rid])))
    # Junctions: one connecting road per (incoming arm, outgoing arm ≠ incoming).
    junctions: list[str] = []
    for node in sorted(arms):
        conns: list[str] = []
        for a in arms[node]:
            for b in arms[node]:
                if a is b:
                    continue
                entry = a.heading + math.pi
                turn = math.remainder(b.heading - entry, 2 * math.pi)
                if abs(turn) < 1e-6:
                    length = math.dist(a.point, b.point)
                    geo = _line(a.point[0], a.point[1], entry, length)
                elif abs(abs(turn) - math.pi / 2) < 1e-6:
                    length = math.pi / 2 * h
                    geo = _arc(a.point[0], a.point[1], entry, length, math.copysign(1.0 / h, turn))
                else:
                    continue  # U-turns are not connected
                rid = next_id
                next_id += 1
                link = (
                    f'<predecessor elementType="road" elementId="{a.road}" contactPoint="{a.contact}"/>'
                    f'<successor elementType="road" elementId="{b.road}" contactPoint="{b.contact}"/>'
                )
                lanes = (
                    '<laneSection s="0"><center><lane id="0" type="none" level="false">'
                    f"{_MARK.format(t='none')}</lane></center><right>"
                    + _lane(-1, "driving", lane_width, "none", a.incoming_lane, b.outgoing_lane)
                    + "</right></laneSection>"
                )
                roads.append(_road(rid, jid[node], geo, length, link, lanes))
                conns.append(
                    f'<connection id="{len(conns)}" incomingRoad="{a.road}" connectingRoad="{rid}" '
                    f'contactPoint="start"><laneLink from="{a.incoming_lane}" to="-1"/></connection>'
                )
        junctions.append(f'<junction id="{jid[node]}" name="j{jid[node]}">{"".join(conns)}</junction>')
    return (
        '<?xml version="1.0" standalone="yes"?>\n<OpenDRIVE>'
        f'<header revMajor="1" revMinor="4" name="{name}" version="1" date="" north="0" south="0" east="0" west="0"/>'
        + "".join(roads)
        + "".join(junctions)
        + "</OpenDRIVE>\n"
    )


def crossroads_xodr(stop_signs: bool = True, lights: bool = False, **kwargs: float) -> str:
    """A single four-way crossroads with stop signs (or lights) on all four approaches."""
    return grid_town_xodr(
        1, 1, stubs=True, stop_sign_prob=1.0 if stop_signs else 0.0, light_prob=1.0 if lights else 0.0, **kwargs
    )


def write_xodr(text: str, path: str | Path) -> Path:
    """Write OpenDRIVE text to `path` (atomic: temp file + rename) and return the path."""
    return write_text_atomic(path, text)
