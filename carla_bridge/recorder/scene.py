"""Record one scene: drive the lite simulator with the autopilot, keep 2 Hz keyframes, branch.

`record_scene` writes into a folder that mirrors the dataset root (the caller's temporary scene
folder) and returns the scene's table fragment. Everything that touches the simulator's API sits
in `SimDriver`, so the rest of the recorder only sees `WorldSnapshot`s and `RenderScene`s.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from carla_bridge.recorder.branches import (
    HORIZON_STEPS,
    STEP_SECONDS,
    branch_plans,
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

SCENE_EPOCH_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z; scene i starts i hours later
ROUTE_LENGTH_MARGIN = 150.0  # [m] route beyond what the scene can drive


def random_route(town_map: object, length: float, rng: np.random.Generator, town: str, route_id: str):
    """A `Route` along the lane graph: a random spawn point, then random successors until `length` m."""
    from carla_bridge.routes import Route

    spawns = town_map.spawn_points(spacing=10.0, rng=rng)
    if len(spawns) == 0:
        raise ValueError(f"town {town} has no spawn points")
    x, y, _yaw, lane_id = spawns[rng.integers(len(spawns))]
    lanes = town_map.lanes
    lane = lanes[int(lane_id)]
    i0 = int(np.argmin(np.linalg.norm(lane.points - [x, y], axis=1)))
    pts = [lane.points[i0:]]
    yaws = [lane.yaw[i0:]]
    total = float(lane.s[-1] - lane.s[i0])
    while total < length and lane.successors:
        lane = lanes[int(lane.successors[rng.integers(len(lane.successors))])]
        pts.append(lane.points[1:])
        yaws.append(lane.yaw[1:])
        total += lane.length
    poly = np.concatenate(pts)
    yaw_all = np.concatenate(yaws)
    step = max(1, len(poly) // 40)
    keep = np.unique(np.r_[np.arange(0, len(poly), step), len(poly) - 1])
    wp = np.concatenate([poly[keep], np.zeros((len(keep), 1))], axis=1)
    return Route(id=route_id, town=town, waypoints_world=wp, yaw=yaw_all[keep]), poly


class SimDriver:
    """The recorder's view of the lite simulator (the one place that knows its API)."""

    def __init__(self, town_map: object, cfg: GeneratorConfig, seed: int) -> None:
        from carla_bridge.lite import LiteBackend, LiteConfig

        self.town_map = town_map
        lite_cfg = LiteConfig(
            num_vehicles=cfg.num_vehicles, num_pedestrians=cfg.num_pedestrians, num_parked=cfg.num_parked
        )
        self.backend = LiteBackend(town_map, lite_cfg)
        self.seed = seed
        self.dt = lite_cfg.dt

    @property
    def world(self) -> object:
        return self.backend.world

    def reset(self, route: object) -> None:
        from carla_bridge.autopilot import Autopilot

        self.obs = self.backend.reset(route, self.seed)
        self.autopilot = Autopilot()
        self.time = 0.0

    def step(self) -> list:
        control = self.autopilot.run_step(self.obs, self.backend.privileged())
        self.obs, events = self.backend.step(control)
        self.time += self.dt
        return events

    def snapshot(self) -> WorldSnapshot:
        return snapshot_from_ground_truth(self.world.ground_truth(0), self.time)

    def render_scene(self, appearance: object) -> object:
        return self.backend.render_scene(appearance=appearance)

    def branch(self, plans_world: np.ndarray, steps: int, every: int) -> dict:
        """Drive K copies of the current world, ego k tracking plan k (world frame `[K, T, 3]`) with
        reactive traffic. Returns `snapshots` (`[steps // every][K]` `WorldSnapshot`s) and
        `collision` `[K]` bool (any ego collision event in that world)."""
        import torch

        from agents.se2 import se2_relative

        k_n = plans_world.shape[0]
        worlds = self.world.branch(k_n)
        plans = torch.as_tensor(plans_world, dtype=torch.float32)
        collision = np.zeros(k_n, dtype=bool)
        snaps: list[list[WorldSnapshot]] = []
        t0 = self.time
        for i in range(1, steps + 1):
            pose = worlds.ego_pose()  # [K, 3]
            local = se2_relative(pose[:, None, :].expand_as(plans), plans)
            for ev in worlds.step_plans(local):
                if ev.kind.startswith("collision"):
                    collision[ev.world] = True
            if i % every == 0:
                snaps.append([snapshot_from_ground_truth(worlds.ground_truth(w), t0 + i * self.dt) for w in range(k_n)])
        return {"snapshots": snaps, "collision": collision}


def snapshot_from_ground_truth(gt: dict, time: float) -> WorldSnapshot:
    """`WorldSnapshot` from `LiteWorld.ground_truth(w)` (one world; invalid agent slots dropped)."""
    a = gt["agents"]
    valid = np.asarray(a.valid, dtype=bool)
    n = len(valid)
    parked = np.asarray(gt.get("parked", np.zeros(n, dtype=bool)), dtype=bool)
    xy = np.asarray(a.xy, dtype=np.float64)
    return WorldSnapshot(
        time=float(time),
        ego=np.asarray(gt["ego_pose"], dtype=np.float64).reshape(4),
        ego_speed=float(gt["ego_speed"]),
        track_id=np.asarray(a.track_id, dtype=np.int64)[valid],
        cls=np.asarray(a.cls, dtype=np.int64)[valid],
        center=np.concatenate([xy, np.asarray(a.z, dtype=np.float64)[:, None]], 1)[valid],
        yaw=np.asarray(a.yaw, dtype=np.float64)[valid],
        size=np.asarray(a.size, dtype=np.float64)[valid],
        velocity=np.asarray(a.velocity, dtype=np.float64)[valid],
        parked=parked[valid],
    )


def _plans_to_world(plans: np.ndarray, ego: np.ndarray) -> np.ndarray:
    c, s = math.cos(ego[3]), math.sin(ego[3])
    out = plans.astype(np.float64).copy()
    out[..., 0] = ego[0] + c * plans[..., 0] - s * plans[..., 1]
    out[..., 1] = ego[1] + s * plans[..., 0] + c * plans[..., 1]
    out[..., 2] = np.remainder(plans[..., 2] + ego[3] + math.pi, 2 * math.pi) - math.pi
    return out


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
    plans = branch_plans(kinds, route_xy, ego0, snap0.ego_speed)  # [K, T, 3] ego frame
    plans_world = _plans_to_world(plans, ego0)
    steps_per = round(STEP_SECONDS / driver.dt)
    result = driver.branch(plans_world, steps=HORIZON_STEPS * steps_per, every=steps_per)
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
                corners = box_corners(ego_boxes(torch.tensor(e[[0, 1, 3]], dtype=torch.float32)))[0].numpy()
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


def record_scene(spec: SceneSpec, cfg: GeneratorConfig, out: Path, info: MapInfo) -> dict:
    """Record scene `spec` into `out` (a folder mirroring the dataset root); return its table fragment.

    Writes `samples/…`, `gts/<scene>/<token>/labels.npz`, and under `drivewm/<version>/`:
    `routes/<scene>.json`, `boxes2d/<scene>.json`, `branches/<sample_token>.npz`.
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
    route_len = cfg.scene_seconds * 15.0 + ROUTE_LENGTH_MARGIN
    route, route_xy = random_route(town_map, route_len, rng, spec.town, spec.name)
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
    branch_points = []
    kinds = list(BRANCH_KINDS[: cfg.branches])
    drivable = getattr(getattr(town_map, "static", None), "drivable", None)
    for k in range(cfg.num_keyframes):
        snap = driver.snapshot()
        scene = driver.render_scene(appearance)
        token = ids.sample_token(k)
        ts = start_us + round(k * KEYFRAME_SECONDS * 1e6)
        meta, b2d = record_keyframe(ctx, scene, snap, ts, token)
        keyframes.append(meta)
        boxes2d[token] = {ids.instance_token(t): v for t, v in b2d.items()}
        if kinds and k >= cfg.branch_start and (k - cfg.branch_start) % cfg.branch_every == 0:
            branch_points.append((token, snap, scene))
            arrays = record_branch_point(
                driver,
                snap,
                scene,
                route_xy,
                kinds,
                {int(t): ids.instance_token(int(t)) for t in snap.track_id},
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
    # annotations of instances present at one keyframe only are kept: nuScenes does the same
    fragment = scene_fragment(ids, keyframes, calibrated)
    route_global = (route_xy + np.asarray(info.offset)).round(3).tolist()
    write_json_atomic(
        ext / "routes" / f"{spec.name}.json", {"town": spec.town, "location": info.location, "polyline": route_global}
    )
    write_json_atomic(ext / "boxes2d" / f"{spec.name}.json", boxes2d)
    return fragment
