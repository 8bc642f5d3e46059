"""Pack built `ScenarioSpec`s into the flat tables the compiled scenario step reads (shared by all
worlds, numpy) and lay their actors out in agent slots after the background agents.

Indices become global: conditions `[Q]` of every scenario one after the other, vehicle actors `[K]`
(explicit actors, then each flow's slots), walkers `[Pq]`, props `[Sq]`, path segments `[M]`. Vehicle
actor k lives in vehicle slot `first_vehicle + k`, walker q in pedestrian slot `first_pedestrian + q`,
prop j in static slot `first_static + j`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from carla_bridge.scenarios.spec import (
    EGO,
    INIT,
    NEVER,
    ActorGroup,
    CondKind,
    Finish,
    ScenarioSpec,
    VehicleActor,
    VehicleBehaviour,
)


class ScenarioTables(NamedTuple):
    """Flat scenario tables (numpy; see the module docstring). Condition references are global
    condition indices, -1 / -2 for `INIT` / `NEVER`; actor references global actor indices."""

    sc_trigger_s: np.ndarray  # [C]
    sc_trigger_xy: np.ndarray  # [C, 2]
    sc_started: np.ndarray  # [C] its STARTED condition
    sc_end: np.ndarray  # [C]
    sc_timeout: np.ndarray  # [C] (-1 none)
    sc_emergency: np.ndarray  # [C] vehicle actor judged by YieldToEmergencyVehicleTest (-1 none)
    cq_scen: np.ndarray  # [Q]
    cq_kind: np.ndarray  # [Q]
    cq_i: np.ndarray  # [Q, 3]
    cq_f: np.ndarray  # [Q, 4]
    va_scen: np.ndarray  # [K]
    va_behaviour: np.ndarray
    va_appear: np.ndarray
    va_move: np.ndarray
    va_vanish: np.ndarray
    va_finish: np.ndarray
    va_start_u: np.ndarray
    va_speed: np.ndarray
    va_brake: np.ndarray
    va_release: np.ndarray
    va_ahead: np.ndarray
    va_door: np.ndarray
    va_door_side: np.ndarray
    va_sync_u: np.ndarray
    va_sync_ref: np.ndarray
    va_flow: np.ndarray  # [K] flow index (-1: an explicit actor)
    va_seg0: np.ndarray
    va_nseg: np.ndarray
    va_len: np.ndarray
    va_size: np.ndarray  # [K, 3]
    seg_lane: np.ndarray  # [M]
    seg_s0: np.ndarray
    seg_s1: np.ndarray
    seg_lat0: np.ndarray
    seg_lat1: np.ndarray
    seg_yaw: np.ndarray
    seg_u0: np.ndarray
    seg_len: np.ndarray
    wa_scen: np.ndarray  # [Pq]
    wa_appear: np.ndarray
    wa_move: np.ndarray
    wa_delay: np.ndarray
    wa_start: np.ndarray  # [Pq, 2]
    wa_yaw: np.ndarray
    wa_speed: np.ndarray
    wa_dist: np.ndarray
    pr_scen: np.ndarray  # [Sq]
    pr_appear: np.ndarray
    pr_vanish: np.ndarray
    fl_scen: np.ndarray  # [F]
    fl_active: np.ndarray
    fl_k0: np.ndarray
    fl_k1: np.ndarray
    fl_gap: np.ndarray  # [F, 2]
    fl_speed: np.ndarray
    fl_initial: np.ndarray
    fl_initial_junction: np.ndarray
    fl_sink: np.ndarray
    fl_key: np.ndarray
    fl_follow: np.ndarray
    lf_scen: np.ndarray  # [L]
    lf_head: np.ndarray
    lf_state: np.ndarray
    lf_start: np.ndarray
    lf_stop: np.ndarray
    wd_scen: np.ndarray  # [G]
    wd_kind: np.ndarray
    wd_start: np.ndarray
    wd_stop: np.ndarray
    wd_lane: np.ndarray
    wd_s0: np.ndarray
    wd_s1: np.ndarray
    wd_params: np.ndarray  # [G, 4]
    first_vehicle: int
    first_pedestrian: int
    first_static: int


@dataclass(frozen=True)
class ActorSlot:
    """Where one scenario actor lives: group, slot index in its group, the scenario, its role."""

    group: ActorGroup
    slot: int
    actor: int
    scenario: int
    role: str
    behaviour: str


@dataclass(frozen=True)
class PackedScenarios:
    """The tables plus what the world needs to lay out the slots and to report.

    Attributes:
        tables: `ScenarioTables`.
        specs: the specs, in table order.
        vehicles: per vehicle actor k: (cls, (l, w, h)) for its slot.
        walkers: per walker: (start [2], yaw, speed, distance).
        props: per prop: (cls, box (x, y, yaw, l, w), height).
        slots: every actor's `ActorSlot`.
    """

    tables: ScenarioTables
    specs: list[ScenarioSpec]
    vehicles: list[tuple[int, tuple[float, float, float]]]
    walkers: list[tuple[np.ndarray, float, float, float]]
    props: list[tuple[int, tuple[float, float, float, float, float], float]]
    slots: list[ActorSlot]

    @property
    def num_conditions(self) -> int:
        return int(self.tables.cq_kind.shape[0])


def _ref(q: int, offset: int) -> int:
    return q if q in (INIT, NEVER) else q + offset


def _key(seed: int, name: str, index: int) -> int:
    return int((zlib.crc32(f"{seed}:{name}:{index}".encode()) & 0x3FFFFFFF) + 1)


def pack(
    specs: list[ScenarioSpec], first_vehicle: int, first_pedestrian: int, first_static: int, seed: int
) -> PackedScenarios:
    """Flatten `specs` into `ScenarioTables` (actors after the given first slots)."""
    sc = {k: [] for k in ("trig_s", "trig_xy", "started", "end", "timeout", "ev")}
    cq_scen, cq_kind, cq_i, cq_f = [], [], [], []
    va: list[tuple[int, VehicleActor, int, int]] = []  # (scenario, actor, flow, cond offset)
    flows = []
    walkers, props, lights, windows = [], [], [], []
    slots: list[ActorSlot] = []
    q_off = 0
    for c, spec in enumerate(specs):
        v_off = len(va)
        for cond in spec.conds:
            ints = list(cond.ints) + [0] * (3 - len(cond.ints))
            if cond.kind in (CondKind.AFTER, CondKind.ANY, CondKind.ALL, CondKind.EGO_FAR):
                ints = [i + q_off for i in ints[: len(cond.ints)]] + [0] * (3 - len(cond.ints))
            elif cond.kind == CondKind.DRIVE:
                who = cond.ints[1] if len(cond.ints) > 1 else EGO
                ints = [cond.ints[0] + q_off, who if who == EGO else who + v_off, 0]
            elif cond.kind == CondKind.AHEAD_OF_ACTOR:
                ints = [i if i == EGO else i + v_off for i in cond.ints] + [0]
            elif cond.kind in (CondKind.ACTOR_TRAVELLED, CondKind.ACTOR_NEAR_EGO):
                ints = [cond.ints[0] + v_off, 0, 0]
            elif cond.kind == CondKind.AHEAD_OF_POINT and cond.ints[0] >= 0:
                ints = [cond.ints[0], cond.ints[1], 0]  # group-local index, offset below
            cq_scen.append(c)
            cq_kind.append(int(cond.kind))
            cq_i.append(ints)
            cq_f.append(list(cond.floats) + [0.0] * (4 - len(cond.floats)))
        sc["trig_s"].append(spec.trigger_s)
        sc["trig_xy"].append(np.asarray(spec.trigger_xy[:2], dtype=np.float64))
        sc["started"].append(next(i for i, cd in enumerate(spec.conds) if cd.kind == CondKind.STARTED) + q_off)
        sc["end"].append(spec.end + q_off)
        sc["timeout"].append(-1 if spec.timeout is None else spec.timeout + q_off)
        for a in spec.vehicles:
            va.append((c, a, -1, q_off))
        sc["ev"].append(-1 if spec.emergency is None else spec.emergency + v_off)
        for f in spec.flows:
            flows.append((c, f, q_off))
        walkers += [(c, wk, q_off) for wk in spec.walkers]
        props += [(c, p, q_off) for p in spec.props]
        lights += [(c, lf, q_off) for lf in spec.lights]
        windows += [(c, wd, q_off) for wd in spec.windows]
        q_off += len(spec.conds)
    # offsets of walker / prop indices per scenario (for ACTOR_DONE and AHEAD_OF_POINT references)
    w_off, p_off = [], []
    nw = npr = 0
    for spec in specs:
        w_off.append(nw)
        p_off.append(npr)
        nw += len(spec.walkers)
        npr += len(spec.props)
    v_offs = []
    nv = 0
    for spec in specs:
        v_offs.append(nv)
        nv += len(spec.vehicles)
    for i, (c, kind) in enumerate(zip(cq_scen, cq_kind)):
        if kind in (CondKind.ACTOR_DONE, CondKind.AHEAD_OF_POINT) and cq_i[i][0] >= 0:
            g, j = cq_i[i][0], cq_i[i][1]
            off = (v_offs, w_off, p_off)[g][c]
            cq_i[i] = [g, j + off, 0]
    # flow slots: explicit actors first, then each flow's slots
    fl_rows = []
    for fi, (c, f, qo) in enumerate(flows):
        k0 = len(va)
        proto = VehicleActor(
            f.role,
            f.cls,
            f.size,
            f.path,
            VehicleBehaviour.FOLLOW if f.follow else VehicleBehaviour.CONSTANT,
            f.speed,
            appear=NEVER,
            move=NEVER,
            finish=Finish.DESTROY,
        )
        for _ in range(f.capacity):
            va.append((c, proto, fi, qo))
        fl_rows.append((c, f, qo, k0, len(va)))
    # segments
    seg = {k: [] for k in ("lane", "s0", "s1", "lat0", "lat1", "yaw", "u0", "len")}
    va_seg0, va_nseg, va_len = [], [], []
    path_index: dict[int, tuple[int, int, float]] = {}
    for _, a, _, _ in va:
        key = id(a.path)
        if key not in path_index:
            start = len(seg["lane"])
            u = 0.0
            for p in a.path:
                seg["lane"].append(p.lane)
                seg["s0"].append(p.s0)
                seg["s1"].append(p.s1)
                seg["lat0"].append(p.lat0)
                seg["lat1"].append(p.lat1)
                seg["yaw"].append(p.yaw_offset)
                seg["u0"].append(u)
                seg["len"].append(p.length)
                u += p.length
            path_index[key] = (start, len(a.path), u)
        s0, n, length = path_index[key]
        va_seg0.append(s0)
        va_nseg.append(n)
        va_len.append(length)
    f64, i64 = np.float64, np.int64

    def arr(values, dtype, shape=None):
        a = np.asarray(values, dtype=dtype)
        return a.reshape(shape) if shape is not None else a

    vehicles_out = [(int(a.cls), tuple(float(x) for x in a.size)) for _, a, _, _ in va]
    for k, (c, a, _, _) in enumerate(va):
        slots.append(
            ActorSlot(ActorGroup.VEHICLE, first_vehicle + k, k, c, a.role, VehicleBehaviour(a.behaviour).name.lower())
        )
    for j, (c, wk, _) in enumerate(walkers):
        slots.append(ActorSlot(ActorGroup.WALKER, first_pedestrian + j, j, c, wk.role, "walk"))
    for j, (c, p, _) in enumerate(props):
        slots.append(ActorSlot(ActorGroup.PROP, first_static + j, j, c, p.role, "static"))
    tables = ScenarioTables(
        sc_trigger_s=arr(sc["trig_s"], f64),
        sc_trigger_xy=arr(sc["trig_xy"], f64, (-1, 2)),
        sc_started=arr(sc["started"], i64),
        sc_end=arr(sc["end"], i64),
        sc_timeout=arr(sc["timeout"], i64),
        sc_emergency=arr(sc["ev"], i64),
        cq_scen=arr(cq_scen, i64),
        cq_kind=arr(cq_kind, i64),
        cq_i=arr(cq_i, i64, (-1, 3)),
        cq_f=arr(cq_f, f64, (-1, 4)),
        va_scen=arr([c for c, _, _, _ in va], i64),
        va_behaviour=arr([int(a.behaviour) for _, a, _, _ in va], i64),
        va_appear=arr([_ref(a.appear, qo) for _, a, _, qo in va], i64),
        va_move=arr([_ref(a.move, qo) for _, a, _, qo in va], i64),
        va_vanish=arr([_ref(a.vanish, qo) for _, a, _, qo in va], i64),
        va_finish=arr([int(a.finish) for _, a, _, _ in va], i64),
        va_start_u=arr([a.start_u for _, a, _, _ in va], f64),
        va_speed=arr([a.speed for _, a, _, _ in va], f64),
        va_brake=arr([_ref(a.brake, qo) for _, a, _, qo in va], i64),
        va_release=arr([_ref(a.release, qo) for _, a, _, qo in va], i64),
        va_ahead=arr([a.appear_ahead for _, a, _, _ in va], f64),
        va_door=arr([a.door for _, a, _, _ in va], f64),
        va_door_side=arr([a.door_side for _, a, _, _ in va], f64),
        va_sync_u=arr([a.sync_u for _, a, _, _ in va], f64),
        va_sync_ref=arr([a.sync_ref_s for _, a, _, _ in va], f64),
        va_flow=arr([fi for _, _, fi, _ in va], i64),
        va_seg0=arr(va_seg0, i64),
        va_nseg=arr(va_nseg, i64),
        va_len=arr(va_len, f64),
        va_size=arr([a.size for _, a, _, _ in va], f64, (-1, 3)),
        seg_lane=arr(seg["lane"], i64),
        seg_s0=arr(seg["s0"], f64),
        seg_s1=arr(seg["s1"], f64),
        seg_lat0=arr(seg["lat0"], f64),
        seg_lat1=arr(seg["lat1"], f64),
        seg_yaw=arr(seg["yaw"], f64),
        seg_u0=arr(seg["u0"], f64),
        seg_len=arr(seg["len"], f64),
        wa_scen=arr([c for c, _, _ in walkers], i64),
        wa_appear=arr([_ref(wk.appear, qo) for _, wk, qo in walkers], i64),
        wa_move=arr([_ref(wk.move, qo) for _, wk, qo in walkers], i64),
        wa_delay=arr([wk.delay for _, wk, _ in walkers], f64),
        wa_start=arr([np.asarray(wk.start, dtype=f64)[:2] for _, wk, _ in walkers], f64, (-1, 2)),
        wa_yaw=arr([wk.yaw for _, wk, _ in walkers], f64),
        wa_speed=arr([wk.speed for _, wk, _ in walkers], f64),
        wa_dist=arr([wk.distance for _, wk, _ in walkers], f64),
        pr_scen=arr([c for c, _, _ in props], i64),
        pr_appear=arr([_ref(p.appear, qo) for _, p, qo in props], i64),
        pr_vanish=arr([_ref(p.vanish, qo) for _, p, qo in props], i64),
        fl_scen=arr([c for c, _, _, _, _ in fl_rows], i64),
        fl_active=arr([f.active + qo for _, f, qo, _, _ in fl_rows], i64),
        fl_k0=arr([k0 for *_, k0, _ in fl_rows], i64),
        fl_k1=arr([k1 for *_, k1 in fl_rows], i64),
        fl_gap=arr([f.gap for _, f, _, _, _ in fl_rows], f64, (-1, 2)),
        fl_speed=arr([f.speed for _, f, _, _, _ in fl_rows], f64),
        fl_initial=arr([f.initial for _, f, _, _, _ in fl_rows], np.bool_),
        fl_initial_junction=arr([f.initial_junction for _, f, _, _, _ in fl_rows], np.bool_),
        fl_sink=arr([f.sink_dist for _, f, _, _, _ in fl_rows], f64),
        fl_key=arr([_key(seed, specs[c].name, i) for i, (c, *_) in enumerate(fl_rows)], i64),
        fl_follow=arr([f.follow for _, f, _, _, _ in fl_rows], np.bool_),
        lf_scen=arr([c for c, _, _ in lights], i64),
        lf_head=arr([lf.head for _, lf, _ in lights], i64),
        lf_state=arr([lf.state for _, lf, _ in lights], i64),
        lf_start=arr([_ref(lf.start, qo) for _, lf, qo in lights], i64),
        lf_stop=arr([_ref(lf.stop, qo) for _, lf, qo in lights], i64),
        wd_scen=arr([c for c, _, _ in windows], i64),
        wd_kind=arr([int(wd.kind) for _, wd, _ in windows], i64),
        wd_start=arr([_ref(wd.start, qo) for _, wd, qo in windows], i64),
        wd_stop=arr([_ref(wd.stop, qo) for _, wd, qo in windows], i64),
        wd_lane=arr([wd.lane for _, wd, _ in windows], i64),
        wd_s0=arr([wd.s0 for _, wd, _ in windows], f64),
        wd_s1=arr([wd.s1 for _, wd, _ in windows], f64),
        wd_params=arr([wd.params for _, wd, _ in windows], f64, (-1, 4)),
        first_vehicle=int(first_vehicle),
        first_pedestrian=int(first_pedestrian),
        first_static=int(first_static),
    )
    return PackedScenarios(
        tables=tables,
        specs=list(specs),
        vehicles=vehicles_out,
        walkers=[(np.asarray(wk.start, dtype=f64)[:2], wk.yaw, wk.speed, wk.distance) for _, wk, _ in walkers],
        props=[(int(p.cls), tuple(p.box), float(p.height)) for _, p, _ in props],
        slots=slots,
    )


def empty_tables(first_vehicle: int, first_pedestrian: int, first_static: int) -> PackedScenarios:
    """Tables of a route without scenarios."""
    return pack([], first_vehicle, first_pedestrian, first_static, 0)
