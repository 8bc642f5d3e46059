"""One physics step of the lite simulator: the ego under its controls, the light cycles, the background
vehicles and the pedestrians, for all W worlds at once.

`advance(state, controls, md, cfg, scenarios)` is a pure function: it reads a `WorldState` and returns a
new one (route bookkeeping untouched: `criteria.judge` does that) with the light states and the ego's
box it used. The heavy parts are compiled kernels (numba) that loop over worlds and agents in float64,
so each world's future does not depend on which other worlds are stepped with it.

Scenario hooks (`carla_bridge.scenarios`), only when the route has scenarios: the ego's controls get
the control-loss noise in effect, the light heads the scenarios' frozen states, and after the
background moved, `scenarios.kernel.scenario_step` advances the scenarios and writes their actors'
slots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numba as nb
import numpy as np
import torch
from torch import Tensor

from agents import EGO
from agents.bicycle import bicycle_control_step
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.lights import head_states
from carla_bridge.lite.map_data import MapData
from carla_bridge.lite.pedestrians import pedestrian_step
from carla_bridge.lite.population import PED_SIZE
from carla_bridge.lite.state import WorldState
from carla_bridge.lite.vehicles import Obstacles, VehicleParams, vehicle_poses, vehicle_step
from carla_bridge.scenarios.kernel import (
    NOISE_KEY,
    PedestrianArrays,
    ScenarioArrays,
    VehicleArrays,
    apply_noise,
    scenario_step,
)
from carla_bridge.scenarios.tables import PackedScenarios

EGO_SWEEP_SECONDS = (1.0, 2.0)
"""The ego's straight-ahead boxes vehicles yield to at junction entries (besides its box now) [s]."""

_bicycle = nb.njit(cache=True)(bicycle_control_step)
_EGO_AXLE, _EGO_LENGTH, _EGO_WIDTH = EGO.rear_axle_to_center, EGO.length, EGO.width
_PED_LENGTH, _PED_WIDTH = PED_SIZE[0], PED_SIZE[1]


@dataclass(frozen=True)
class StepInfo:
    """What `advance` computed besides the new state (the criteria reuse it).

    Attributes:
        lights: `[W, H]` int64 `HeadState`s during the step.
        ego_box: `[W, 5]` float64 ego box (x, y, yaw, length, width) after the step.
        step_distance: `[W]` distance the ego drove [m].
    """

    lights: Tensor
    ego_box: Tensor
    step_distance: Tensor


@nb.njit(cache=True)
def _ego_step(pose: np.ndarray, speed: np.ndarray, controls: np.ndarray, dt: float, vehicle: tuple):
    """The kinematic bicycle under (throttle, steer, brake) for W egos; returns (pose `[W, 3]`, speed `[W]`,
    distance driven `[W]`)."""
    W = pose.shape[0]
    out = np.empty_like(pose)
    v_out = np.empty_like(speed)
    dist = np.empty_like(speed)
    wheelbase, max_steer, max_accel, max_brake, max_speed, drag = vehicle
    for w in range(W):
        x, y, yaw, v = _bicycle(
            pose[w, 0],
            pose[w, 1],
            pose[w, 2],
            speed[w],
            controls[w, 0],
            controls[w, 1],
            controls[w, 2],
            dt,
            wheelbase,
            max_steer,
            max_accel,
            max_brake,
            max_speed,
            drag,
        )
        out[w, 0], out[w, 1], out[w, 2], v_out[w] = x, y, yaw, v
        dist[w] = math.hypot(x - pose[w, 0], y - pose[w, 1])
    return out, v_out, dist


@nb.njit(cache=True)
def _scene_boxes(ego_pose, ego_speed, vxy, vyaw, vspeed, vsize, vvalid, pxy, pyaw, pspeed, pvalid, sbox, svalid, sweep):
    """Obstacles every agent reacts to: vehicles (N), the ego's box and its box in 1 s, pedestrians,
    statics (`[W, N + 2 + P + S, ...]`), their speeds, and the ego's sweep `[W, 1 + len(sweep), 5]`."""
    W, N = vvalid.shape
    P, S = pvalid.shape[1], svalid.shape[1]
    M = N + 2 + P + S
    box = np.zeros((W, M, 5))
    vel = np.zeros((W, M, 2))
    spd = np.zeros((W, M))
    valid = np.zeros((W, M), dtype=np.bool_)
    ego_sweep = np.empty((W, 1 + sweep.shape[0], 5))
    for w in range(W):
        for n in range(N):
            c, s = math.cos(vyaw[w, n]), math.sin(vyaw[w, n])
            box[w, n, 0], box[w, n, 1], box[w, n, 2] = vxy[w, n, 0], vxy[w, n, 1], vyaw[w, n]
            box[w, n, 3], box[w, n, 4] = vsize[w, n, 0], vsize[w, n, 1]
            vel[w, n, 0], vel[w, n, 1], spd[w, n], valid[w, n] = (
                vspeed[w, n] * c,
                vspeed[w, n] * s,
                vspeed[w, n],
                vvalid[w, n],
            )
        c, s = math.cos(ego_pose[w, 2]), math.sin(ego_pose[w, 2])
        ex, ey = ego_pose[w, 0] + _EGO_AXLE * c, ego_pose[w, 1] + _EGO_AXLE * s
        evx, evy = ego_speed[w] * c, ego_speed[w] * s
        for i in range(2):  # the ego now and in 1 s
            box[w, N + i, 0], box[w, N + i, 1], box[w, N + i, 2] = ex + i * evx, ey + i * evy, ego_pose[w, 2]
            box[w, N + i, 3], box[w, N + i, 4] = _EGO_LENGTH, _EGO_WIDTH
            vel[w, N + i, 0], vel[w, N + i, 1], spd[w, N + i], valid[w, N + i] = evx, evy, ego_speed[w], True
        for i in range(ego_sweep.shape[1]):
            t = 0.0 if i == 0 else sweep[i - 1]
            ego_sweep[w, i, 0], ego_sweep[w, i, 1], ego_sweep[w, i, 2] = ex + t * evx, ey + t * evy, ego_pose[w, 2]
            ego_sweep[w, i, 3], ego_sweep[w, i, 4] = _EGO_LENGTH, _EGO_WIDTH
        for p in range(P):
            j = N + 2 + p
            c, s = math.cos(pyaw[w, p]), math.sin(pyaw[w, p])
            box[w, j, 0], box[w, j, 1], box[w, j, 2] = pxy[w, p, 0], pxy[w, p, 1], pyaw[w, p]
            box[w, j, 3], box[w, j, 4] = _PED_LENGTH, _PED_WIDTH
            vel[w, j, 0], vel[w, j, 1], spd[w, j], valid[w, j] = (
                pspeed[w, p] * c,
                pspeed[w, p] * s,
                pspeed[w, p],
                pvalid[w, p],
            )
        for k in range(S):
            j = N + 2 + P + k
            for f in range(5):
                box[w, j, f] = sbox[w, k, f]
            valid[w, j] = svalid[w, k]
    return box, vel, spd, valid, ego_sweep


def vehicle_params(cfg: LiteConfig) -> VehicleParams:
    i = cfg.idm
    return VehicleParams(
        dt=float(cfg.dt),
        lookahead_step=float(cfg.lookahead_step),
        lookahead_points=int(cfg.lookahead_points),
        clearance_margin=float(cfg.clearance_margin),
        yield_distance=float(cfg.yield_distance),
        yield_patience=float(cfg.yield_patience),
        stuck_respawn=float(cfg.stuck_respawn),
        lat_accel=float(cfg.lat_accel),
        idm=(i.max_accel, i.comfort_decel, i.max_decel, i.min_gap, i.time_headway, i.delta),
    )


def apply_light_override(heads: np.ndarray, override: np.ndarray) -> np.ndarray:
    """`[W, H]` head states with the scenarios' frozen states (`override [W, H]`, -1: none) applied."""
    return np.where(override >= 0, override, heads) if (override >= 0).any() else heads


def compile_noise_kernel() -> None:
    """Compile the ControlLoss noise kernel, which `advance` calls only while a scenario's noise is on."""
    apply_noise(np.zeros((1, 3)), np.zeros((1, 4)), np.zeros(1, dtype=np.int64), NOISE_KEY)


def advance(
    state: WorldState, controls: Tensor, md: MapData, cfg: LiteConfig, scenarios: PackedScenarios | None = None
) -> tuple[WorldState, StepInfo]:
    """Advance every world by `cfg.dt` (see the module docstring).

    Args:
        state: the current state (not modified).
        controls: `[W, 3]` float (throttle [0, 1], steer [-1, 1] positive left, brake [0, 1]), checked by the caller.
        scenarios: the route's packed scenarios (None or empty: none).

    Returns:
        The new state (route bookkeeping unchanged) and the `StepInfo`.
    """
    n = lambda t: t.numpy()  # noqa: E731  zero-copy views of the (CPU) state tensors
    t = torch.from_numpy
    e, v, p, s = state.ego, state.vehicles, state.pedestrians, state.statics
    veh = cfg.vehicle
    active = scenarios is not None and bool(scenarios.specs)
    ctrl = controls.double().numpy()
    if active and bool(state.scenarios.noise.any()):
        steps = np.round(n(state.time) / cfg.dt).astype(np.int64)
        ctrl = apply_noise(ctrl, n(state.scenarios.noise), steps, NOISE_KEY)
    pose, speed, dist = _ego_step(
        n(e.pose),
        n(e.speed),
        ctrl,
        cfg.dt,
        (veh.wheelbase, veh.max_steer, veh.max_accel, veh.max_brake, veh.max_speed, veh.drag),
    )
    box, vel, spd, valid, sweep = _scene_boxes(
        pose,
        speed,
        n(v.xy),
        n(v.yaw),
        n(v.speed),
        n(v.size),
        n(v.valid),
        n(p.xy),
        n(p.yaw),
        n(p.speed),
        n(p.valid),
        n(s.box),
        n(s.valid),
        np.asarray(EGO_SWEEP_SECONDS),
    )
    lights = head_states(n(state.time), md.lights, cfg.green, cfg.yellow, cfg.all_red)
    if active:
        lights = apply_light_override(lights, n(state.scenarios.light_override))
    lane, s_new, nxt, vspeed, trans, stop_done, still = vehicle_step(
        md.lanes,
        vehicle_params(cfg),
        n(v.lane),
        n(v.s),
        n(v.next),
        n(v.speed),
        n(v.factor),
        n(v.key),
        n(v.trans),
        n(v.stop_done),
        n(v.still),
        n(v.size),
        n(v.valid),
        n(v.xy),
        n(v.yaw),
        Obstacles(box, vel, valid),
        lights,
        sweep,
    )
    vxy, vyaw, vz = vehicle_poses(md.lanes, lane, s_new, n(v.lateral))
    movers = v.valid.shape[1] + 2  # the vehicles, the ego and its box in 1 s
    u, direction, pspeed, pxy, pyaw = pedestrian_step(
        n(p.path),
        n(p.cum),
        n(p.road),
        n(p.u),
        n(p.direction),
        n(p.v0),
        n(p.valid),
        box[:, :movers],
        spd[:, :movers],
        valid[:, :movers],
        cfg.dt,
    )
    pose_t = t(pose)
    time = state.time + cfg.dt
    vehicles = replace(
        v,
        lane=t(lane),
        s=t(s_new),
        next=t(nxt),
        speed=t(vspeed),
        trans=t(trans),
        stop_done=t(stop_done),
        still=t(still),
        xy=t(vxy),
        yaw=t(vyaw),
        z=t(vz),
    )
    pedestrians = replace(p, u=t(u), direction=t(direction), speed=t(pspeed), xy=t(pxy), yaw=t(pyaw))
    new = replace(
        state,
        time=time,
        ego=replace(
            e,
            pose=pose_t,
            speed=t(speed),
            control=t(np.ascontiguousarray(ctrl)),
            history=torch.cat([e.history[:, 1:], pose_t[:, None]], 1),
        ),
        vehicles=vehicles,
        pedestrians=pedestrians,
    )
    if active:
        new = _scenario_step(new, state, scenarios, md, cfg)
    return new, StepInfo(lights=t(lights), ego_box=t(np.ascontiguousarray(sweep[:, 0])), step_distance=t(dist))


_CARRIED_VEHICLE = frozenset({"key", "lateral", "size", "track_id", "valid"})
"""Vehicle fields `advance` carries over from the previous state (the others come fresh from `vehicle_step`)."""


def _scenario_step(new: WorldState, prev: WorldState, scenarios: PackedScenarios, md: MapData, cfg: LiteConfig):
    """Run `scenario_step` on copies of the new state's scenario, vehicle, pedestrian and static arrays
    (the step's state objects stay untouched) and return the state with them."""
    sc, v, p = new.scenarios, new.vehicles, new.pedestrians
    D = ScenarioArrays(**{f: getattr(sc, f).numpy().copy() for f in ScenarioArrays._fields})
    # the fields this step's kernels just produced are fresh arrays; the ones carried over are copied
    V = VehicleArrays(
        **{
            f: getattr(v, f).numpy().copy() if f in _CARRIED_VEHICLE else getattr(v, f).numpy()
            for f in VehicleArrays._fields
        }
    )
    P = PedestrianArrays(
        **{f: getattr(p, f).numpy().copy() if f == "valid" else getattr(p, f).numpy() for f in PedestrianArrays._fields}
    )
    svalid = new.statics.valid.numpy().copy()
    i = cfg.idm
    scenario_step(
        scenarios.tables,
        md.lanes,
        D,
        V,
        P,
        svalid,
        new.statics.box.numpy(),
        new.time.numpy(),
        new.ego.pose.numpy(),
        new.ego.speed.numpy(),
        prev.route.progress.numpy(),
        prev.route.odometer.numpy(),
        float(cfg.dt),
        (i.max_accel, i.comfort_decel, i.max_decel, i.min_gap, i.time_headway, i.delta),
        int(scenarios.tables.first_vehicle),
    )
    t = torch.from_numpy
    return replace(
        new,
        scenarios=replace(sc, **{f: t(getattr(D, f)) for f in ScenarioArrays._fields}),
        vehicles=replace(v, **{f: t(getattr(V, f)) for f in VehicleArrays._fields}),
        pedestrians=replace(p, **{f: t(getattr(P, f)) for f in PedestrianArrays._fields}),
        statics=replace(new.statics, valid=t(svalid)),
    )
