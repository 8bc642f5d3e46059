"""`CarlaBackend`: the `Backend` protocol on a real CARLA server (0.9.x) through `carla.Client`.

Synchronous mode with a fixed 0.05 s step; the town of the route is loaded if needed; the ego
spawns at the route start; the nuScenes rig (six cameras + LIDAR_TOP, `mount.sensor_specs`) is
attached and its data collected per frame through queues; background traffic runs on the Traffic
Manager; collision and lane-invasion sensors feed `Event`s with the same kinds as the lite
simulator's infraction modules. The server's settings are restored on `close()` and on any failure
during `reset`.

Not run on our development machines (no CARLA server can be installed there): only the parts that
need no server are tested — the sensor mounts, coordinate conversions, the clear error when no
server answers, and the protocol probe against stand-in servers on a local port (an HTTP server, a
silent one, one answering CARLA's version request as LibCarla encodes it). Red-light running is
detected with CARLA's own traffic-light association (`vehicle.get_traffic_light()`); for official
numbers use the leaderboard adapter (`drivewm/leaderboard_agent.py`) with the leaderboard's own
criteria.
"""

from __future__ import annotations

import math
import queue
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents import EGO, AgentClass, AgentStates, Control
from carla_bridge.backend import Event, SimState
from carla_bridge.coords import (
    carla_points_to_world,
    control_to_carla,
    location_to_world,
    transform_to_world_pose,
    world_pose_to_transform,
)
from carla_bridge.live.mount import carla_intrinsics, lidar_body_to_ego, sensor_specs
from carla_bridge.live.probe import CarlaServerUnavailable, probe_carla
from carla_bridge.observation import EgoHistory, make_observation
from carla_bridge.routes import Route
from carla_bridge.scoring import InfractionKind
from carla_bridge.sensors.rig import CameraRig
from planner import LightState, Observation, PrivilegedState

LIDAR_ELEVATIONS_DEG = np.linspace(-30.67, 10.67, 32)


@dataclass(frozen=True)
class CarlaConfig:
    """Live-backend settings.

    Attributes:
        host, port: the CARLA server.  timeout_s: client timeout [s].
        tm_port: Traffic Manager port.  fixed_delta_s: synchronous step [s].
        width, height: camera resolution [px].  vehicles, walkers: background traffic counts.
        ego_blueprint: the ego's vehicle blueprint.  sensor_timeout_s: wait per sensor frame [s].
    """

    host: str = "127.0.0.1"
    port: int = 2000
    timeout_s: float = 10.0
    tm_port: int = 8000
    fixed_delta_s: float = 0.05
    width: int = 400
    height: int = 225
    vehicles: int = 30
    walkers: int = 20
    ego_blueprint: str = "vehicle.lincoln.mkz_2020"
    sensor_timeout_s: float = 5.0


def connect(host: str, port: int, timeout_s: float) -> Any:
    """A `carla.Client` that has answered; `CarlaServerUnavailable` (one clear line) otherwise.

    The port is probed in Python first (`probe.probe_carla`: the client's own version request over a
    plain socket), so an unresolvable host, a closed port, a silent service or one speaking another
    protocol is reported by name instead of aborting the process inside the C++ client library."""
    import carla

    probe_carla(host, int(port), float(timeout_s))
    client = carla.Client(host, int(port))
    client.set_timeout(float(timeout_s))
    try:
        client.get_server_version()
    except RuntimeError as err:
        raise CarlaServerUnavailable(
            f"no CARLA server answered at {host}:{port} within {timeout_s:g} s ({str(err).split(',')[0]}); "
            "start one (./CarlaUE4.sh -RenderOffScreen) or use --backend lite"
        ) from None
    return client


def _event_kind_for(actor_type_id: str) -> InfractionKind:
    if actor_type_id.startswith("vehicle."):
        return InfractionKind.COLLISION_VEHICLE
    if actor_type_id.startswith("walker."):
        return InfractionKind.COLLISION_PEDESTRIAN
    return InfractionKind.COLLISION_STATIC


def lidar_to_ego_points(raw: np.ndarray, rig: CameraRig) -> np.ndarray:
    """CARLA lidar points `[P, 4]` (x, y, z, intensity; CARLA sensor frame) → `[P, 5]` ego-frame
    (x, y, z, intensity, ring), the ring from the nearest configured beam elevation."""
    xyz = carla_points_to_world(raw[:, :3])
    body_to_ego = lidar_body_to_ego(rig)
    ego = xyz @ body_to_ego[:3, :3].T + body_to_ego[:3, 3]
    elevation = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    ring = np.abs(elevation[:, None] - LIDAR_ELEVATIONS_DEG[None]).argmin(axis=1)
    return np.concatenate([ego, raw[:, 3:4], ring[:, None]], axis=1).astype(np.float32)


class CarlaBackend:
    """A live CARLA server behind the `Backend` protocol (see the module docstring)."""

    def __init__(self, config: CarlaConfig | None = None) -> None:
        self.config = config or CarlaConfig()
        self.rig = CameraRig.nuscenes(self.config.width, self.config.height)
        self._client: Any = None
        self._world: Any = None
        self._original_settings: Any = None
        self._actors: list[Any] = []
        self._sensor_queues: dict[str, queue.Queue] = {}
        self._events: queue.Queue = queue.Queue()
        self._ego: Any = None
        self._route_xy: np.ndarray | None = None
        self._history = EgoHistory()
        self._time = 0.0
        specs = sensor_specs(self.rig)
        self._camera_specs = [s for s in specs if s["type"].startswith("sensor.camera")]
        self._lidar_spec = next(s for s in specs if s["type"].startswith("sensor.lidar"))
        k = np.stack([carla_intrinsics(s["width"], s["height"], s["fov"]) for s in self._camera_specs])
        self.intrinsics = torch.tensor(k, dtype=torch.float32)

    # -- Backend protocol ---------------------------------------------------------------------------
    def reset(self, route: Route, seed: int) -> Observation:
        self.close()
        cfg = self.config
        self._client = connect(cfg.host, cfg.port, cfg.timeout_s)
        try:
            world = self._client.get_world()
            if world.get_map().name.split("/")[-1] != route.town:
                world = self._client.load_world(route.town)
            self._world = world
            self._original_settings = world.get_settings()
            settings = world.get_settings()
            settings.synchronous_mode = True
            settings.fixed_delta_seconds = cfg.fixed_delta_s
            world.apply_settings(settings)
            tm = self._client.get_trafficmanager(cfg.tm_port)
            tm.set_synchronous_mode(True)
            tm.set_random_device_seed(int(seed))
            self._spawn_ego(route)
            self._attach_sensors()
            self._spawn_traffic(tm, seed)
            self._route_xy = self._route_polyline(route)
            self._time = 0.0
            self._history.reset()
            world.tick()
            return self._observe()
        except BaseException:
            self.close()
            raise

    @property
    def done(self) -> bool:
        """A CARLA server does not judge the route: the runner's own route progress ends it."""
        return False

    @property
    def rules(self) -> None:
        """A CARLA server does not judge the route here (the leaderboard's own evaluator does)."""
        return None

    def finish(self) -> list[Event]:
        """Nothing to finish: the runner's own trackers judge completion and the route timeout."""
        return []

    def step(self, control: Control, render: bool = True) -> tuple[Observation, list[Event]]:
        """Apply `control` for one tick (the server's sensors always deliver, so `render` is ignored)."""
        if self._ego is None:
            raise RuntimeError("CarlaBackend.step before reset")
        self._ego.apply_control(control_to_carla(control))
        self._world.tick()
        self._time += self.config.fixed_delta_s
        obs = self._observe()
        events = []
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return obs, events

    def snapshot(self) -> SimState:
        raise RuntimeError("snapshot/restore need the lite backend: a CARLA server cannot branch its state")

    def restore(self, state: SimState) -> None:
        raise RuntimeError("snapshot/restore need the lite backend: a CARLA server cannot branch its state")

    def close(self) -> None:
        """Destroy our actors and restore the server's settings (safe to call repeatedly)."""
        for actor in reversed(self._actors):
            try:
                if hasattr(actor, "stop"):
                    actor.stop()
                actor.destroy()
            except RuntimeError:
                pass
        self._actors.clear()
        self._sensor_queues.clear()
        self._ego = None
        if self._world is not None and self._original_settings is not None:
            try:
                self._world.apply_settings(self._original_settings)
                self._client.get_trafficmanager(self.config.tm_port).set_synchronous_mode(False)
            except RuntimeError:
                pass
        self._world = None
        self._original_settings = None

    # -- privileged ground truth (autopilot, oracle-free baselines named -gt) ------------------------
    def privileged(self) -> PrivilegedState:
        """True agents around the ego (ego frame) and the state of the light governing the ego."""
        ego_pose = np.array(transform_to_world_pose(self._ego.get_transform()))[[0, 1, 3]]
        rows = []
        for actor in self._world.get_actors():
            if actor.id == self._ego.id or not actor.type_id.startswith(("vehicle.", "walker.")):
                continue
            x, y, z, yaw = transform_to_world_pose(actor.get_transform())
            ext = actor.bounding_box.extent
            v = location_to_world(actor.get_velocity())
            cls = AgentClass.PEDESTRIAN if actor.type_id.startswith("walker.") else AgentClass.CAR
            rows.append((x, y, z, yaw, v[0], v[1], 2 * ext.x, 2 * ext.y, 2 * ext.z, int(cls), actor.id))
        arr = np.array(rows, dtype=np.float64).reshape(-1, 11)
        c, s = math.cos(ego_pose[2]), math.sin(ego_pose[2])
        d = arr[:, :2] - ego_pose[:2]
        xy = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], -1)
        vel = np.stack([c * arr[:, 4] + s * arr[:, 5], -s * arr[:, 4] + c * arr[:, 5]], -1)
        yaw = (arr[:, 3] - ego_pose[2] + np.pi) % (2 * np.pi) - np.pi
        agents = AgentStates.create(
            xy=torch.tensor(xy)[None],
            z=torch.tensor(arr[:, 2])[None],
            yaw=torch.tensor(yaw)[None],
            velocity=torch.tensor(vel)[None],
            size=torch.tensor(arr[:, 6:9])[None],
            cls=torch.tensor(arr[:, 9], dtype=torch.int64)[None],
            track_id=torch.tensor(arr[:, 10], dtype=torch.int64)[None],
        )
        state = self._ego.get_traffic_light_state() if self._ego.is_at_traffic_light() else None
        light = LightState.NONE if state is None else (LightState.GREEN if str(state) == "Green" else LightState.RED)
        return PrivilegedState(
            agents=agents,
            light_state=torch.tensor([int(light)]),
            light_distance=torch.tensor([0.0 if state is not None else math.inf]),
        ).validate()

    # -- internals ----------------------------------------------------------------------------------
    def _spawn_ego(self, route: Route) -> None:
        bp = self._world.get_blueprint_library().find(self.config.ego_blueprint)
        bp.set_attribute("role_name", "hero")
        x, y, z = route.waypoints_world[0]
        yaw = float(route.yaw[0]) if np.isfinite(route.yaw[0]) else 0.0
        self._ego = self._world.spawn_actor(bp, world_pose_to_transform(x, y, z + 0.5, yaw))
        self._actors.append(self._ego)

    def _attach_sensors(self) -> None:
        import carla

        library = self._world.get_blueprint_library()
        for spec in [*self._camera_specs, self._lidar_spec]:
            bp = library.find(spec["type"])
            for key in ("width", "height", "fov", "channels", "range", "upper_fov", "lower_fov"):
                if key in spec:
                    bp.set_attribute({"width": "image_size_x", "height": "image_size_y"}.get(key, key), str(spec[key]))
            for key in ("rotation_frequency", "points_per_second"):
                if key in spec:
                    bp.set_attribute(key, str(spec[key]))
            mount = carla.Transform(
                carla.Location(x=spec["x"], y=spec["y"], z=spec["z"]),
                carla.Rotation(pitch=spec["pitch"], yaw=spec["yaw"], roll=spec["roll"]),
            )
            sensor = self._world.spawn_actor(bp, mount, attach_to=self._ego)
            q: queue.Queue = queue.Queue()
            sensor.listen(q.put)
            self._sensor_queues[spec["id"]] = q
            self._actors.append(sensor)
        collision = self._world.spawn_actor(
            library.find("sensor.other.collision"), carla.Transform(), attach_to=self._ego
        )
        collision.listen(self._on_collision)
        self._actors.append(collision)

    def _on_collision(self, event: Any) -> None:
        loc = location_to_world(event.transform.location)
        self._events.put(
            Event(
                kind=_event_kind_for(event.other_actor.type_id).value,
                time=self._time,
                location=(float(loc[0]), float(loc[1])),
                other_ids=(int(event.other_actor.id),),
                details={"other_type": event.other_actor.type_id},
            )
        )

    def _spawn_traffic(self, tm: Any, seed: int) -> None:
        rng = np.random.default_rng(seed)
        spawn_points = list(self._world.get_map().get_spawn_points())
        rng.shuffle(spawn_points)
        blueprints = [b for b in self._world.get_blueprint_library().filter("vehicle.*")]
        for transform in spawn_points[: self.config.vehicles]:
            bp = blueprints[int(rng.integers(len(blueprints)))]
            actor = self._world.try_spawn_actor(bp, transform)
            if actor is not None:
                actor.set_autopilot(True, self.config.tm_port)
                self._actors.append(actor)

    def _route_polyline(self, route: Route) -> np.ndarray:
        from carla_bridge.maps import load_town
        from carla_bridge.routes import plan_route

        return plan_route(load_town(route.town), route.waypoints_world).polyline

    def _observe(self) -> Observation:
        frame = self._world.get_snapshot().frame
        images = []
        for spec in self._camera_specs:
            image = self._get(spec["id"], frame)
            bgra = np.frombuffer(image.raw_data, dtype=np.uint8).reshape(image.height, image.width, 4)
            images.append(torch.from_numpy(bgra[:, :, 2::-1].copy()).permute(2, 0, 1))
        lidar_data = self._get("LIDAR_TOP", frame)
        raw = np.frombuffer(lidar_data.raw_data, dtype=np.float32).reshape(-1, 4)
        x, y, _, yaw = transform_to_world_pose(self._ego.get_transform())
        # the CARLA actor's origin is its box centre; the ego frame's origin is the rear axle
        rear_axle = np.array([x, y, yaw])
        rear_axle[:2] -= EGO.rear_axle_to_center * np.array([math.cos(yaw), math.sin(yaw)])
        v = location_to_world(self._ego.get_velocity())
        speed = float(v[0] * math.cos(yaw) + v[1] * math.sin(yaw))
        self._history.update(self._time, rear_axle)
        return make_observation(
            images=torch.stack(images),
            intrinsics=self.intrinsics,
            cam_to_ego=self.rig.cam_to_ego,
            history=self._history,
            pose=rear_axle,
            speed=speed,
            route_xy=self._route_xy,
            time=self._time,
            lidar=torch.from_numpy(lidar_to_ego_points(raw, self.rig)),
        )

    def _get(self, sensor_id: str, frame: int) -> Any:
        """The data of `sensor_id` for `frame` (older frames are dropped)."""
        q = self._sensor_queues[sensor_id]
        while True:
            try:
                data = q.get(timeout=self.config.sensor_timeout_s)
            except queue.Empty:
                raise TimeoutError(f"sensor {sensor_id} sent no data for frame {frame}") from None
            if data.frame >= frame:
                return data
