"""Record one scene: drive the lite simulator with the autopilot, keep 2 Hz keyframes, branch.

`record_scene` writes into a folder that mirrors the dataset root (the caller's temporary scene
folder) and returns the scene's table fragment. Everything that touches the simulator's API sits
in `SimDriver`, so the rest of the recorder only sees `WorldSnapshot`s and `RenderScene`s.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from agents.states import AgentClass
from carla_bridge.recorder.branches import (
    branch_trajectories,
    choose_kinds,
    interaction_kinds,
    plan_window,
    semantics_in_frame,
    static_base,
)
from carla_bridge.recorder.config import BRANCH_KINDS, KEYFRAME_SECONDS, GeneratorConfig, SceneSpec
from carla_bridge.recorder.frames import (
    FrameContext,
    WorldSnapshot,
    ground_classes_on_grid,
    record_keyframe,
    static_structures,
    world_boxes_to_ego,
)
from carla_bridge.recorder.map_expansion import MapInfo
from carla_bridge.recorder.tables import SceneIds, calibrated_sensor_records, scene_fragment, write_json_atomic
from planner import HORIZON_STEPS, STEP_SECONDS

SCENE_EPOCH_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z; scene i starts i hours later
ROUTE_LENGTH_MARGIN = 150.0  # [m] route beyond what the scene can drive


class SimDriver:
    """The recorder's view of the lite simulator (the one place that knows its API): a
    `LiteBackend` driven by the privileged `Autopilot`, its `LiteWorld` branched for counterfactuals."""

    def __init__(self, town_map: object, cfg: GeneratorConfig, seed: int) -> None:
        from carla_bridge.autopilot import Autopilot
        from carla_bridge.lite.backend import LiteBackend
        from carla_bridge.lite.config import LiteConfig

        self.town_map = town_map
        lite_cfg = LiteConfig(
            num_vehicles=cfg.num_vehicles,
            num_pedestrians=cfg.num_pedestrians,
            num_parked=cfg.num_parked,
            spawn_radius=cfg.spawn_radius,
        )
        self.backend = LiteBackend(town_map, lite_cfg)
        self.autopilot = Autopilot()
        self.seed = seed
        self.dt = lite_cfg.dt
        self.time = 0.0

    @property
    def world(self) -> object:
        return self.backend.world

    def reset(self, route_plan: object) -> None:
        self.backend.reset(route_plan, self.seed)
        self.autopilot.reset()
        self.time = 0.0

    def step(self) -> list:
        _, events = self.backend.step(self.autopilot.control(self.world))
        self.time += self.dt
        return events

    def snapshot(self) -> WorldSnapshot:
        return snapshot_from_ground_truth(self.world.ground_truth(0), self.time)

    def route_light(self) -> tuple[int, float | None]:
        """(`planner.LightState` of the light governing the ego's route — 0 red (also yellow), 1 green,
        2 none — and the distance [m] along the route to its stop line, None if there is none)."""
        state, dist = self.world.route_light()
        d = float(dist[0])
        return int(state[0]), (d if math.isfinite(d) else None)

    def render_scene(self, appearance: object) -> object:
        return dataclasses.replace(self.backend.render_scene(), appearance=appearance)

    def branch(self, traj: np.ndarray, steps: int, every: int) -> dict:
        """Drive K copies of the current world with reactive traffic, ego k following the dense
        trajectory `traj[k]` (`[K, F, 3]` at t = dt·(1..F) in the current ego frame;
        `carla_bridge.lite.branching.run_plans`). Returns `snapshots` (`[steps // every][K]`
        `WorldSnapshot`s) and `collision` `[K]` bool (any ego collision)."""
        import torch

        from carla_bridge.lite.branching import run_plans

        out = run_plans(self.world, torch.as_tensor(traj, dtype=torch.float64), steps, self.dt, every=every)
        collision = np.zeros(traj.shape[0], dtype=bool)
        for ev in out.events:
            collision[ev.world] |= ev.kind.startswith("collision")
        gt = self.world.ground_truth(0)
        snaps: list[list[WorldSnapshot]] = []
        for r in range(out.agents.xy.shape[1]):
            i = (r + 1) * every - 1  # the step index of record r
            row = []
            for k in range(traj.shape[0]):
                ego = out.ego[k, i]
                agents = type(gt["agents"])(
                    **{f: getattr(out.agents, f)[k, r] for f in out.agents.__dataclass_fields__}
                )
                z = self.world.ground_height(ego[:2])
                frame = {
                    **gt,
                    "agents": agents,
                    "ego_pose": torch.tensor([float(ego[0]), float(ego[1]), z, float(ego[2])]),
                    "ego_speed": float(ego[3]),
                }
                row.append(snapshot_from_ground_truth(frame, self.time + (i + 1) * self.dt))
            snaps.append(row)
        return {"snapshots": snaps, "collision": collision}


def snapshot_from_ground_truth(gt: dict, time: float) -> WorldSnapshot:
    """`WorldSnapshot` from `LiteWorld.ground_truth(w)` (one world; invalid agent slots dropped)."""
    a = gt["agents"]
    valid = np.asarray(a.valid, dtype=bool)
    n = len(valid)
    parked = np.asarray(gt.get("parked", np.zeros(n, dtype=bool)), dtype=bool)
    xy = np.asarray(a.xy, dtype=np.float64)
    ego = np.asarray(gt["ego_pose"], dtype=np.float64).reshape(4)
    z = np.asarray(a.z, dtype=np.float64) + ego[2]  # the renderer places boxes at z + the ego's ground height
    return WorldSnapshot(
        time=float(time),
        ego=ego,
        ego_speed=float(gt["ego_speed"]),
        track_id=np.asarray(a.track_id, dtype=np.int64)[valid],
        cls=np.asarray(a.cls, dtype=np.int64)[valid],
        center=np.concatenate([xy, z[:, None]], 1)[valid],
        yaw=np.asarray(a.yaw, dtype=np.float64)[valid],
        size=np.asarray(a.size, dtype=np.float64)[valid],
        velocity=np.asarray(a.velocity, dtype=np.float64)[valid],
        parked=parked[valid],
    )


def record_branch_point(
    driver: SimDriver,
    snap0: WorldSnapshot,
    render_scene: object,
    route_xy: np.ndarray,
    kinds: list[str],
    instance_token: dict[int, str],
    offset: tuple[float, float],
    grid: object,
    drivable: object,
) -> dict[str, np.ndarray]:
    """Arrays of one `branches/<sample_token>.npz` (see docs/FORMATS.md)."""
    import shapely
    import torch

    from agents.boxes import box_corners, ego_boxes

    ego0 = np.asarray(snap0.ego, dtype=np.float64)
    keep = np.asarray([int(t) in instance_token for t in snap0.track_id], dtype=bool)
    snap0 = dataclasses.replace(
        snap0,
        **{f: getattr(snap0, f)[keep] for f in ("track_id", "cls", "center", "yaw", "size", "velocity", "parked")},
    )
    traj = branch_trajectories(kinds, route_xy, ego0, snap0.ego_speed, dt=driver.dt)  # [K, F, 3] ego frame
    plans = plan_window(traj, driver.dt).astype(np.float32)  # [K, T, 3] the plans as seen at t0
    steps_per = round(STEP_SECONDS / driver.dt)
    result = driver.branch(traj[:, 1:], steps=HORIZON_STEPS * steps_per, every=steps_per)
    snaps: list[list[WorldSnapshot]] = result["snapshots"]  # [T][K]
    k_n, t_n = len(kinds), HORIZON_STEPS
    ids = [int(t) for t in snap0.track_id]
    a_n = len(ids)
    col = {tid: i for i, tid in enumerate(ids)}
    ego = np.zeros((k_n, t_n, 3), dtype=np.float32)
    pose = np.zeros((k_n, a_n, t_n, 3), dtype=np.float32)
    valid = np.zeros((k_n, a_n, t_n), dtype=bool)
    sem = np.zeros((k_n, t_n, *grid.shape), dtype=np.uint8)
    ground = ground_classes_on_grid(render_scene.ground, ego0, grid)
    structures, structure_labels = static_structures(render_scene, ego0)
    base = static_base(grid, ground, structures, structure_labels)
    offroad = np.zeros(k_n, dtype=bool)
    for t in range(t_n):
        for k in range(k_n):
            s = snaps[t][k]
            e = np.asarray(s.ego, dtype=np.float64)
            ego[k, t] = (e[0] + offset[0], e[1] + offset[1], e[3])
            for a, tid in enumerate(s.track_id):
                j = col.get(int(tid))
                if j is not None:
                    pose[k, j, t] = (s.center[a, 0] + offset[0], s.center[a, 1] + offset[1], s.yaw[a])
                    valid[k, j, t] = True
            boxes = np.concatenate([s.center, s.yaw[:, None], s.size], 1) if len(s.track_id) else np.zeros((0, 7))
            sem[k, t] = semantics_in_frame(grid, base, world_boxes_to_ego(boxes, ego0), s.cls)
            if drivable is not None:
                corners = box_corners(ego_boxes(torch.tensor(e[[0, 1, 3]], dtype=torch.float32))).numpy().reshape(4, 2)
                offroad[k] |= not bool(shapely.contains_xy(drivable, corners[:, 0], corners[:, 1]).all())
    sizes = np.asarray(snap0.size, dtype=np.float32).reshape(-1, 3)
    return {
        "ego": ego,
        "plan": plans.astype(np.float32),
        "plan_kind": np.asarray(kinds),
        "instance_tokens": np.asarray([instance_token.get(t, "") for t in ids]),
        "agent_pose": pose,
        "agent_valid": valid,
        "agent_size": sizes,
        "agent_class": np.asarray(snap0.cls, dtype=np.int64),
        "semantics": sem,
        "collision": np.asarray(result["collision"], dtype=bool).reshape(k_n),
        "offroad": offroad,
    }


INTERACTION_RADIUS = 25.0  # [m] a branch point wants a moving agent this close to the ego


def branch_due(k: int, last: int | None, cfg: GeneratorConfig, snap: WorldSnapshot) -> bool:
    """Branch at keyframe `k`? At least `branch_every` keyframes after the previous branch point (the
    first from `branch_start`), at the first such keyframe where a moving vehicle or a pedestrian is
    within `INTERACTION_RADIUS` of the ego (traffic that can react to the ego), and at the latest
    `branch_every` keyframes after it became due."""
    due_from = cfg.branch_start if last is None else last + cfg.branch_every
    if k < due_from:
        return False
    if k >= due_from + cfg.branch_every:
        return True
    if not len(snap.track_id):
        return False
    dist = np.hypot(*(snap.center[:, :2] - snap.ego[:2]).T)
    moving = np.hypot(*snap.velocity.T) > 0.1
    ped = snap.cls == int(AgentClass.PEDESTRIAN)
    return bool(((dist < INTERACTION_RADIUS) & (moving | ped)).any())


PARKED_SPEED = 0.05  # [m/s] a vehicle never faster than this in the whole scene counts as parked


def mark_parked(keyframes: list) -> None:
    """Vehicles that never move during the scene are `vehicle.parked` (the simulator's parked cars,
    and — a known approximation — cars that wait the whole scene long), in place."""
    top: dict[int, float] = {}
    for kf in keyframes:
        for a in kf.annotations:
            top[a.track_id] = max(top.get(a.track_id, 0.0), a.speed)
    for kf in keyframes:
        for a in kf.annotations:
            if a.attribute == "vehicle.stopped" and top[a.track_id] < PARKED_SPEED:
                a.attribute = "vehicle.parked"


def record_scene(spec: SceneSpec, cfg: GeneratorConfig, out: Path, info: MapInfo) -> dict:
    """Record scene `spec` into `out` (a folder mirroring the dataset root); return its table fragment.

    Writes `samples/…`, `gts/<scene>/<token>/labels.npz`, and under `drivewm/<version>/`:
    `routes/<scene>.json`, `boxes2d/<scene>.json`, `lights/<scene>.json`, `branches/<sample_token>.npz`.
    """
    from carla_bridge.maps import load_town
    from carla_bridge.sensors.rig import RIG_PATH, CameraRig
    from carla_bridge.sensors.scene import Appearance
    from occupancy.grid import GridSpec

    out = Path(out)
    rng = np.random.default_rng(spec.seed)
    town_map = load_town(spec.town)
    rig = CameraRig.nuscenes(*cfg.resolution)
    calibrated = calibrated_sensor_records(rig, json.loads(Path(RIG_PATH).read_text()))
    ids = SceneIds(
        version=cfg.version,
        name=spec.name,
        location=info.location,
        description=f"{spec.town}, seed {spec.seed}, autopilot with {cfg.num_vehicles} vehicles and "
        f"{cfg.num_pedestrians} pedestrians",
        date="2025-01-01",
    )
    from carla_bridge.lite.random_route import random_route

    route = random_route(town_map, rng, min_length=cfg.scene_seconds * 15.0 + ROUTE_LENGTH_MARGIN)
    route_xy = np.asarray(route.polyline, dtype=np.float64)
    driver = SimDriver(town_map, cfg, spec.seed)
    driver.reset(route)
    appearance = Appearance.random(rng)
    logfile = f"{cfg.version}-{spec.name}-{info.location}"
    grid = GridSpec.occ3d()
    ctx = FrameContext(out, spec.name, logfile, rig, info.offset, grid, cfg.lidar_beams)
    ext = out / "drivewm" / cfg.version
    steps_per_keyframe = round(KEYFRAME_SECONDS / driver.dt)
    for _ in range(round(cfg.warmup_seconds / driver.dt)):
        driver.step()
    start_us = SCENE_EPOCH_US + spec.index * 3_600_000_000
    keyframes = []
    boxes2d: dict[str, dict] = {}
    lights: dict[str, list] = {}
    last_branch: int | None = None
    default_kinds = tuple(BRANCH_KINDS)
    drivable = getattr(getattr(town_map, "static", None), "drivable", None)
    if drivable is not None:
        import shapely

        shapely.prepare(drivable)
    for k in range(cfg.num_keyframes):
        snap = driver.snapshot()
        scene = driver.render_scene(appearance)
        token = ids.sample_token(k)
        ts = start_us + round(k * KEYFRAME_SECONDS * 1e6)
        meta, b2d = record_keyframe(ctx, scene, snap, ts, token)
        lights[token] = list(driver.route_light())
        keyframes.append(meta)
        boxes2d[token] = {ids.instance_token(t): v for t, v in b2d.items()}
        # a branch needs its whole 3 s horizon logged too (the dataset pairs it with the logged future)
        last_possible = cfg.num_keyframes - HORIZON_STEPS - 1
        due = branch_due(k, last_branch, cfg, snap) or (last_branch is None and k == last_possible)
        if cfg.branches and k <= last_possible and due:
            last_branch = k
            near = interaction_kinds(snap.ego, snap.center, snap.yaw, snap.velocity, snap.cls, snap.parked)
            kinds = choose_kinds(cfg.branches, near, default_kinds)
            arrays = record_branch_point(
                driver,
                snap,
                scene,
                route_xy,
                kinds,
                {a.track_id: ids.instance_token(a.track_id) for a in meta.annotations},
                info.offset,
                grid,
                drivable,
            )
            path = ext / "branches" / f"{token}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, **arrays)
        if k + 1 < cfg.num_keyframes:
            for _ in range(steps_per_keyframe):
                driver.step()
    mark_parked(keyframes)
    fragment = scene_fragment(ids, keyframes, calibrated)
    route_global = (route_xy + np.asarray(info.offset)).round(3).tolist()
    write_json_atomic(
        ext / "routes" / f"{spec.name}.json", {"town": spec.town, "location": info.location, "polyline": route_global}
    )
    write_json_atomic(ext / "boxes2d" / f"{spec.name}.json", boxes2d)
    write_json_atomic(ext / "lights" / f"{spec.name}.json", lights)
    return fragment
