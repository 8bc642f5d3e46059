"""`LiteWorld`: the embedded simulator's state and step, batched over W worlds.

Every state tensor has a leading world dim W, so W counterfactual copies (each with its own ego
control or plan) advance in one vectorized step. The state is a flat dict of tensors; `snapshot()`
/ `restore()` copy it whole, and the step draws no random numbers (choices are hashed from per-agent
keys), so a restored state reproduces the identical future.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from agents import EGO, AgentClass, AgentStates
from agents.bicycle import bicycle_step, control_to_command
from agents.boxes import ego_boxes
from agents.se2 import se2_relative, wrap_angle
from carla_bridge.backend import Event, SimState
from carla_bridge.infractions import (
    blocked_update,
    collision_update,
    min_speed_percentage,
    outside_lanes_update,
    outside_percentage,
    red_light_crossings,
    route_deviation,
    route_timeout_seconds,
    stop_sign_update,
)
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.lights import RED, light_states
from carla_bridge.lite.map_data import MapData, build_map_data
from carla_bridge.lite.pedestrians import pedestrian_step
from carla_bridge.lite.population import PED_SIZE, populate
from carla_bridge.lite.vehicles import vehicle_step
from carla_bridge.scoring import InfractionKind
from planner.controller import ControllerParams, track_plans

FRONT = EGO.rear_axle_to_center + 0.5 * EGO.length  # rear axle → front bumper [m]
MIN_SPEED_CHECKPOINTS = 10
EGO_SWEEP_SECONDS = (1.0, 2.0)  # the ego's straight-ahead boxes vehicles yield to at junction entries
_CLASS_KIND = {
    int(AgentClass.PEDESTRIAN): InfractionKind.COLLISION_PEDESTRIAN,
    int(AgentClass.BARRIER): InfractionKind.COLLISION_STATIC,
    int(AgentClass.TRAFFIC_CONE): InfractionKind.COLLISION_STATIC,
}


@dataclass
class RouteData:
    """The ego's route, shared by all worlds.

    Attributes:
        xy: `[R, 2]` polyline; s `[R]` arc length; width `[R]` lane width and speed_limit `[R]` [m/s]
            of the lane at each point.
        length: route length [m].
        lanes: set of lane ids the ego may use (route lanes and their same-direction neighbours).
        light_s / light_head: `[Hr]` stop-line arc lengths and head ids of lights on the route.
        stop_s: `[Sr]` stop-sign line arc lengths on the route.
        timeout: time budget [s].
    """

    xy: Tensor
    s: Tensor
    width: Tensor
    speed_limit: Tensor
    length: float
    lanes: set[int]
    light_s: Tensor
    light_head: Tensor
    stop_s: Tensor
    timeout: float


class LiteWorld:
    """W copies of one town world (see module docstring).

    Build with `LiteWorld(town, config)`, then `reset(route_plan, seed)`. Views (`ego_pose`,
    `agents_world`, `privileged`, `ground_truth`) read the current state; `step(controls)` and
    `step_plans(plans)` advance all worlds and return the new `Event`s.
    """

    def __init__(
        self,
        town,
        config: LiteConfig | None = None,
        device: str | torch.device = "cpu",
        map_data: MapData | None = None,
    ) -> None:
        self.town = town
        self.cfg = config or LiteConfig()
        self.device = torch.device(device)
        self.md = map_data if map_data is not None else build_map_data(town, seed=town.seed, device=self.device)
        self.state: dict[str, Tensor] = {}
        self.route: RouteData | None = None
        self.ctrl_params = ControllerParams(vehicle=self.cfg.vehicle)
        self.seed = 0

    # ------------------------------------------------------------------ setup
    @property
    def num_worlds(self) -> int:
        return int(self.state["ego"].shape[0])

    @property
    def time(self) -> float:
        return float(self.state["time"][0])

    def reset(self, route_plan, seed: int, num_worlds: int = 1) -> None:
        """Populate the world(s) for a route.

        Args:
            route_plan: a `RoutePlan` (polyline, s, point_lane, lane_ids) of the ego's route.
            seed: seeds the population (the step itself is deterministic).
            num_worlds: W identical copies.
        """
        self.seed = int(seed)
        self.route = self._route_data(route_plan)
        rng = np.random.default_rng(seed)
        xy0 = route_plan.polyline[0]
        d = route_plan.polyline[min(3, len(route_plan.polyline) - 1)] - xy0
        yaw0 = math.atan2(d[1], d[0]) if np.linalg.norm(d) > 1e-6 else float(route_plan.yaw[0])
        pop = populate(self.town, self.md, self.cfg, rng, np.asarray(route_plan.polyline), np.asarray(xy0))
        self._build_state(pop, np.array([xy0[0], xy0[1], yaw0, 0.0]), num_worlds)

    def _route_data(self, plan) -> RouteData:
        xy = np.asarray(plan.polyline, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 2:
            raise ValueError(f"route polyline must have shape [R>=2, 2], got {list(xy.shape)}")
        s = np.asarray(plan.s, dtype=np.float64)
        length = float(s[-1])
        if not length > 1.0:
            raise ValueError(f"route is too short ({length:.2f} m)")
        point_lane = np.asarray(plan.point_lane, dtype=np.int64)
        width = np.array([self.town.lanes[int(i)].width for i in point_lane])
        limit = np.array([self.town.lanes[int(i)].speed_limit for i in point_lane])
        lanes = set(int(i) for i in plan.lane_ids)
        for i in list(lanes):
            ln = self.town.lanes[i]
            lanes.update(j for j in (ln.left, ln.right) if j is not None)
        light_s, light_head = [], []
        head_index = 0
        for g in self.town.traffic_lights:
            for h in g.heads:
                for lane_id, stop_xy in zip(h.lane_ids, np.asarray(h.stop_xy).reshape(-1, 2)):
                    on = np.flatnonzero(point_lane == lane_id)
                    if len(on):
                        k = on[np.argmin(np.linalg.norm(xy[on] - stop_xy[None], axis=1))]
                        if np.linalg.norm(xy[k] - stop_xy) < 3.0:
                            light_s.append(s[k])
                            light_head.append(head_index)
                head_index += 1
        stop_s = []
        for st in self.town.stop_signs:
            on = np.flatnonzero(point_lane == st.lane_id)
            if len(on):
                k = on[np.argmin(np.linalg.norm(xy[on] - np.asarray(st.stop_xy)[None], axis=1))]
                if np.linalg.norm(xy[k] - st.stop_xy) < 3.0:
                    stop_s.append(s[k])
        t = lambda a, dt=torch.float32: torch.as_tensor(np.asarray(a), dtype=dt, device=self.device)  # noqa: E731
        return RouteData(
            xy=t(xy),
            s=t(s),
            width=t(width),
            speed_limit=t(limit),
            length=length,
            lanes=lanes,
            light_s=t(np.array(light_s, dtype=np.float64).reshape(-1)),
            light_head=t(np.array(light_head, dtype=np.int64).reshape(-1), torch.int64),
            stop_s=t(np.array(stop_s, dtype=np.float64).reshape(-1)),
            timeout=route_timeout_seconds(length),
        )

    def _build_state(self, pop: dict, ego0: np.ndarray, W: int) -> None:
        dev = self.device
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=dev)  # noqa: E731
        i = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64, device=dev)  # noqa: E731
        b = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.bool, device=dev)  # noqa: E731
        N = len(pop["veh_lane"])
        P = len(pop["ped_path"])
        S = len(pop["static_box"])
        lane = i(pop["veh_lane"])
        key = i(pop["veh_key"])
        from carla_bridge.lite.vehicles import choose_successor

        st: dict[str, Tensor] = {
            "ego": f(ego0)[None],
            "ego_ctrl": torch.zeros(1, 3, device=dev),
            "time": torch.zeros(1, device=dev),
            "veh_lane": lane[None],
            "veh_s": f(pop["veh_s"])[None],
            "veh_speed": f(pop["veh_speed"])[None],
            "veh_factor": f(pop["veh_factor"])[None],
            "veh_next": choose_successor(self.md, lane, key, torch.zeros_like(key))[None],
            "veh_key": key[None],
            "veh_trans": torch.zeros(1, N, dtype=torch.int64, device=dev),
            "veh_stop_done": torch.zeros(1, N, dtype=torch.bool, device=dev),
            "veh_still": torch.zeros(1, N, device=dev),
            "veh_size": f(pop["veh_size"]).reshape(N, 3)[None],
            "veh_cls": i(pop["veh_cls"])[None],
            "veh_id": torch.arange(N, device=dev)[None],
            "veh_valid": torch.ones(1, N, dtype=torch.bool, device=dev),
            "veh_color": i(pop["veh_color"]).reshape(N, 3)[None],
            "ped_path": f(pop["ped_path"]).reshape(P, 4, 2)[None],
            "ped_cum": f(pop["ped_cum"]).reshape(P, 4)[None],
            "ped_road": b(pop["ped_road"]).reshape(P, 3)[None],
            "ped_u": f(pop["ped_u"])[None],
            "ped_dir": f(pop["ped_dir"])[None],
            "ped_v0": f(pop["ped_v0"])[None],
            "ped_speed": torch.zeros(1, P, device=dev),
            "ped_id": (1000 + torch.arange(P, device=dev))[None],
            "ped_valid": torch.ones(1, P, dtype=torch.bool, device=dev),
            "static_box": f(pop["static_box"]).reshape(S, 5)[None],
            "static_h": f(pop["static_h"])[None],
            "static_cls": i(pop["static_cls"])[None],
            "static_id": (2000 + torch.arange(S, device=dev))[None],
        }
        self.state = st
        self._init_derived()
        self._init_bookkeeping()
        if W > 1:
            self.state = {k: v.expand(W, *v.shape[1:]).clone() for k, v in self.state.items()}

    def _init_derived(self) -> None:
        """Positions derived from (lane, s) / path arc positions (kept in the state for views)."""
        st = self.state
        xy, yaw, z = self.md.interp(st["veh_lane"], st["veh_s"])
        st["veh_xy"], st["veh_yaw"], st["veh_z"] = xy, yaw, z
        p = {k[4:]: v for k, v in st.items() if k.startswith("ped_")}
        p["valid"] = st["ped_valid"]
        far = torch.full((st["ego"].shape[0], 1, 5), 1e6, device=self.device)
        far[..., 3:] = 1.0
        out = pedestrian_step(p, far, torch.zeros(far.shape[:2], device=self.device), 0.0)
        st["ped_xy"], st["ped_yaw"] = out["xy"], out["yaw"]

    def _init_bookkeeping(self) -> None:
        st, dev = self.state, self.device
        W = st["ego"].shape[0]
        A = st["veh_lane"].shape[1] + st["ped_u"].shape[1] + st["static_box"].shape[1]
        Sr = self.route.stop_s.shape[0]
        hist = int(self.cfg.history_keyframes * round(0.5 / self.cfg.dt)) + 1
        st.update(
            progress=torch.zeros(W, device=dev),
            in_contact=torch.zeros(W, A, dtype=torch.bool, device=dev),
            stop_stopped=torch.zeros(W, Sr, dtype=torch.bool, device=dev),
            stop_judged=torch.zeros(W, Sr, dtype=torch.bool, device=dev),
            outside=torch.zeros(W, device=dev),
            still=torch.zeros(W, device=dev),
            ms_ego=torch.zeros(W, device=dev),
            ms_traffic=torch.zeros(W, device=dev),
            ms_count=torch.zeros(W, device=dev),
            ms_next=torch.ones(W, dtype=torch.int64, device=dev),
            done=torch.zeros(W, dtype=torch.bool, device=dev),
            odometer=torch.zeros(W, device=dev),
            pose_buf=st["ego"][:, None, :3].expand(W, hist, 3).clone(),
            ctrl_int=torch.zeros(W, device=dev),
        )
        self._update_progress(first=True)

    # ------------------------------------------------------------------ scenario building
    def set_ego(self, x: float, y: float, yaw: float, speed: float = 0.0) -> None:
        """Place the ego (rear axle, world frame) in every world; history restarts there."""
        pose = torch.tensor([x, y, yaw, speed], dtype=torch.float32, device=self.device)
        W = self.num_worlds
        self.state["ego"] = pose[None].expand(W, 4).clone()
        self.state["pose_buf"] = pose[None, None, :3].expand(W, self.state["pose_buf"].shape[1], 3).clone()
        self._update_progress(first=True)

    def set_vehicles(self, lane, s, speed, cls=None, size=None) -> None:
        """Replace the background vehicles of every world (scenario building, tests).

        Args:
            lane: `[N]` lane ids; s: `[N]` box-centre arc lengths [m]; speed: `[N]` [m/s].
            cls: `[N]` `AgentClass` ids (default cars); size: `[N, 3]` (default 4.6 × 1.9 × 1.5 m).
        """
        from carla_bridge.lite.vehicles import choose_successor

        dev, W = self.device, self.num_worlds
        lane = torch.as_tensor(lane, dtype=torch.int64, device=dev).reshape(-1)
        n = lane.shape[0]
        key = torch.arange(1, n + 1, device=dev) * 7919
        fields = {
            "lane": lane,
            "s": torch.as_tensor(s, dtype=torch.float32, device=dev).reshape(n),
            "speed": torch.as_tensor(speed, dtype=torch.float32, device=dev).reshape(n),
            "factor": torch.ones(n, device=dev),
            "next": choose_successor(self.md, lane, key, torch.zeros_like(key)),
            "key": key,
            "trans": torch.zeros(n, dtype=torch.int64, device=dev),
            "stop_done": torch.zeros(n, dtype=torch.bool, device=dev),
            "still": torch.zeros(n, device=dev),
            "size": torch.tensor([4.6, 1.9, 1.5], device=dev).expand(n, 3).clone()
            if size is None
            else torch.as_tensor(size, dtype=torch.float32, device=dev).reshape(n, 3),
            "cls": torch.full((n,), int(AgentClass.CAR), dtype=torch.int64, device=dev)
            if cls is None
            else torch.as_tensor(cls, dtype=torch.int64, device=dev).reshape(n),
            "id": torch.arange(n, device=dev),
            "valid": torch.ones(n, dtype=torch.bool, device=dev),
            "color": torch.full((n, 3), 128, dtype=torch.int64, device=dev),
        }
        for k, v in fields.items():
            self.state["veh_" + k] = v[None].expand(W, *v.shape).clone()
        self.state["veh_xy"], self.state["veh_yaw"], self.state["veh_z"] = self.md.interp(
            self.state["veh_lane"], self.state["veh_s"]
        )
        self._resize_contacts()

    def set_pedestrians(self, paths, road, u, v0) -> None:
        """Replace the pedestrians of every world.

        Args:
            paths: `[P, 4, 2]` world polylines; road: `[P, 3]` bool (segment crosses the road);
            u: `[P]` start arc positions [m]; v0: `[P]` walking speeds [m/s].
        """
        from carla_bridge.lite.pedestrians import path_cumulative

        dev, W = self.device, self.num_worlds
        paths = np.asarray(paths, dtype=np.float64).reshape(-1, 4, 2)
        n = len(paths)
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=dev)  # noqa: E731
        fields = {
            "path": f(paths),
            "cum": f(path_cumulative(paths)),
            "road": torch.as_tensor(np.asarray(road, dtype=bool).reshape(n, 3), device=dev),
            "u": f(u).reshape(n),
            "dir": torch.ones(n, device=dev),
            "v0": f(v0).reshape(n),
            "speed": torch.zeros(n, device=dev),
            "id": 1000 + torch.arange(n, device=dev),
            "valid": torch.ones(n, dtype=torch.bool, device=dev),
        }
        for k, v in fields.items():
            self.state["ped_" + k] = v[None].expand(W, *v.shape).clone()
        self._init_derived()
        self._resize_contacts()

    def clear_static(self) -> None:
        """Remove parked cars and props from every world."""
        W, dev = self.num_worlds, self.device
        self.state["static_box"] = torch.zeros(W, 0, 5, device=dev)
        self.state["static_h"] = torch.zeros(W, 0, device=dev)
        self.state["static_cls"] = torch.zeros(W, 0, dtype=torch.int64, device=dev)
        self.state["static_id"] = torch.zeros(W, 0, dtype=torch.int64, device=dev)
        self._resize_contacts()

    def _resize_contacts(self) -> None:
        st = self.state
        A = st["veh_lane"].shape[1] + st["ped_u"].shape[1] + st["static_box"].shape[1]
        st["in_contact"] = torch.zeros(self.num_worlds, A, dtype=torch.bool, device=self.device)

    # ------------------------------------------------------------------ snapshots and branches
    def snapshot(self) -> SimState:
        """Full copy of the state (all worlds)."""
        return SimState({k: v.clone() for k, v in self.state.items()}, {"seed": self.seed})

    def restore(self, snap: SimState) -> None:
        """Restore a `snapshot()` (identical futures follow)."""
        if set(snap.tensors) != set(self.state) and self.state:
            raise ValueError("SimState does not match this world's state fields")
        self.state = {k: v.clone() for k, v in snap.tensors.items()}
        self.seed = int(snap.meta.get("seed", self.seed))

    def branch(self, k: int, world: int = 0) -> LiteWorld:
        """A new `LiteWorld` holding `k` copies of world `world` (shares the map and route)."""
        if k < 1:
            raise ValueError(f"branch: k must be ≥ 1, got {k}")
        out = LiteWorld(self.town, self.cfg, self.device, map_data=self.md)
        out.route, out.seed = self.route, self.seed
        out.state = {n: v[world : world + 1].expand(k, *v.shape[1:]).clone() for n, v in self.state.items()}
        return out

    # ------------------------------------------------------------------ step
    def step(self, controls: Tensor) -> list[Event]:
        """Advance every world by dt with ego controls.

        Args:
            controls: `[W, 3]` (throttle [0, 1], steer [-1, 1] positive left, brake [0, 1]).

        Returns:
            Events of this step (all worlds; `Event.world` says which).
        """
        controls = torch.as_tensor(controls, dtype=torch.float32, device=self.device)
        W = self.num_worlds
        if controls.shape != (W, 3):
            raise ValueError(f"controls must have shape [{W}, 3], got {list(controls.shape)}")
        if not bool(torch.isfinite(controls).all()):
            raise ValueError("controls contain NaN or inf")
        lo = torch.tensor([0.0, -1.0, 0.0], device=self.device)
        if bool(((controls < lo) | (controls > 1.0)).any()):
            raise ValueError("controls out of range: throttle and brake must lie in [0, 1], steer in [-1, 1]")
        st, cfg, md = self.state, self.cfg, self.md
        # ego
        ego = st["ego"]
        acc, steer = control_to_command(controls[:, 0], controls[:, 1], controls[:, 2], ego[:, 3], cfg.vehicle)
        new_ego = bicycle_step(ego, acc, steer, cfg.dt, cfg.vehicle)
        step_dist = (new_ego[:, :2] - ego[:, :2]).norm(dim=-1)
        st["ego"], st["ego_ctrl"] = new_ego, controls
        ego_box = ego_boxes(new_ego[:, :3])  # [W, 5]
        ego_vel = new_ego[:, 3:4] * torch.stack([torch.cos(new_ego[:, 2]), torch.sin(new_ego[:, 2])], -1)
        pred = ego_box.clone()
        pred[:, :2] = pred[:, :2] + ego_vel * 1.0  # where the ego will be in 1 s
        lights = light_states(st["time"], md, cfg.green, cfg.yellow, cfg.all_red)
        # vehicles
        vb = self.vehicle_boxes()
        vvel = st["veh_speed"][..., None] * torch.stack([torch.cos(st["veh_yaw"]), torch.sin(st["veh_yaw"])], -1)
        pb = self.pedestrian_boxes()
        pvel = st["ped_speed"][..., None] * torch.stack([torch.cos(st["ped_yaw"]), torch.sin(st["ped_yaw"])], -1)
        sb = st["static_box"]
        obstacles = torch.cat([vb, ego_box[:, None], pred[:, None], pb, sb], dim=1)
        obst_vel = torch.cat([vvel, ego_vel[:, None], ego_vel[:, None], pvel, torch.zeros_like(sb[..., :2])], dim=1)
        ones = torch.ones(W, 2, dtype=torch.bool, device=self.device)
        obst_valid = torch.cat(
            [st["veh_valid"], ones, st["ped_valid"], torch.ones_like(sb[..., 0], dtype=torch.bool)], 1
        )
        vfields = {k[4:]: v for k, v in st.items() if k.startswith("veh_")}
        vfields["speed"] = st["veh_speed"]
        sweep = ego_box[:, None].repeat(1, len(EGO_SWEEP_SECONDS) + 1, 1)  # [W, S, 5] now and predicted
        sweep[:, 1:, :2] = sweep[:, 1:, :2] + ego_vel[:, None] * sweep.new_tensor(EGO_SWEEP_SECONDS)[None, :, None]
        vout = vehicle_step(md, vfields, obstacles, obst_vel, obst_valid, lights, new_ego[:, :2], cfg, ego_sweep=sweep)
        for k2, v2 in vout.items():
            st["veh_" + k2] = v2
        # pedestrians
        if st["ped_u"].shape[1]:
            movers = torch.cat([vb, ego_box[:, None], pred[:, None]], 1)
            mover_speed = torch.cat([st["veh_speed"], new_ego[:, 3:4], new_ego[:, 3:4]], 1)
            p = {k[4:]: v for k, v in st.items() if k.startswith("ped_")}
            pout = pedestrian_step(p, movers, mover_speed, cfg.dt)
            for k2 in ("u", "dir", "speed", "xy", "yaw"):
                st["ped_" + k2] = pout[k2]
        st["time"] = st["time"] + cfg.dt
        st["odometer"] = st["odometer"] + step_dist
        st["pose_buf"] = torch.cat([st["pose_buf"][:, 1:], new_ego[:, None, :3]], 1)
        return self._infractions(ego_box, step_dist, lights)

    def follow_plans(self, plans: Tensor, steps: int) -> list[Event]:
        """Execute one plan per world for `steps` steps (the counterfactual-branch primitive).

        The plans are anchored in the world frame now; every step the remaining trajectory is
        re-sampled at t + 0.5·(1..T) s (linear in time, extrapolated with the last segment's velocity
        past the end, so a stop plan stays stopped),
        expressed in the current ego frame and tracked with `step_plans`.

        Args:
            plans: `[W, T, 3]` rear-axle (x, y, yaw) at t = 0.5·(1..T) s in each current ego frame.
            steps: number of simulation steps.

        Returns:
            The events of all steps.
        """
        from agents.se2 import se2_compose

        W = self.num_worlds
        plans = torch.as_tensor(plans, dtype=torch.float32, device=self.device)
        if plans.dim() != 3 or plans.shape[0] != W or plans.shape[-1] != 3:
            raise ValueError(f"plans must have shape [{W}, T, 3], got {list(plans.shape)}")
        if not bool(torch.isfinite(plans).all()):
            raise ValueError("plans contain NaN or inf")
        T = plans.shape[1]
        pose0 = self.ego_pose().clone()
        anchored = se2_compose(pose0[:, None].expand(W, T, 3), plans)  # world frame [W, T, 3]
        traj = torch.cat([pose0[:, None], anchored], 1)  # [W, T+1, 3] at t = 0, 0.5, ...
        dy = torch.atan2(torch.sin(traj[:, 1:, 2] - traj[:, :-1, 2]), torch.cos(traj[:, 1:, 2] - traj[:, :-1, 2]))
        traj = torch.cat([traj[..., :2], torch.cat([traj[:, :1, 2], traj[:, :1, 2] + dy.cumsum(-1)], 1)[..., None]], -1)
        events: list[Event] = []
        for k in range(steps):
            tq = k * self.cfg.dt + 0.5 * torch.arange(1, T + 1, device=self.device)  # [T]
            pos = tq / 0.5
            i0 = pos.floor().long().clamp(max=T - 1)
            frac = (pos - i0.float())[None, :, None]  # > 1 past the end: constant-velocity extrapolation
            sampled = traj[:, i0] + (traj[:, i0 + 1] - traj[:, i0]) * frac  # [W, T, 3]
            local = se2_relative(self.ego_pose()[:, None].expand(W, T, 3), sampled)
            events += self.step_plans(local)
        return events

    def step_plans(self, plans: Tensor) -> list[Event]:
        """Track one plan per world for one step (the plan-tracking controller runs inside).

        Args:
            plans: `[W, T, 3]` rear-axle (x, y, yaw) at t = 0.5·(1..T) s in each world's current
                ego frame (re-expressed as time goes on, e.g. by `follow_plans`).
        """
        th, steer, br, err = track_plans(
            plans.float(), self.state["ego"][:, 3], self.ctrl_params, self.state["ctrl_int"]
        )
        lim = self.ctrl_params.integral_limit
        self.state["ctrl_int"] = (self.state["ctrl_int"] + err * self.cfg.dt).clamp(-lim, lim)
        return self.step(torch.stack([th, steer, br], -1))

    # ------------------------------------------------------------------ infractions and route progress
    def _update_progress(self, first: bool = False) -> tuple[Tensor, Tensor]:
        """Project the ego onto the route within a window ahead of the last progress.
        Returns (lateral distance `[W]`, lane width there `[W]`)."""
        st, r = self.state, self.route
        a, bpts = r.xy[:-1], r.xy[1:]  # [R-1, 2]
        seg = bpts - a
        l2 = (seg * seg).sum(-1).clamp(min=1e-9)
        p = st["ego"][:, None, :2]  # [W, 1, 2]
        t = (((p - a[None]) * seg[None]).sum(-1) / l2[None]).clamp(0.0, 1.0)  # [W, R-1]
        foot = a[None] + t[..., None] * seg[None]
        d = (p - foot).norm(dim=-1)
        s_foot = r.s[:-1][None] + t * (r.s[1:] - r.s[:-1])[None]
        if not first:
            window = (s_foot >= st["progress"][:, None] - 5.0) & (s_foot <= st["progress"][:, None] + 20.0)
            d = torch.where(window, d, torch.full_like(d, 1e9))
        k = d.argmin(-1)
        dist = d.gather(1, k[:, None]).squeeze(1)
        s_new = s_foot.gather(1, k[:, None]).squeeze(1)
        st["progress"] = s_new if first else torch.maximum(st["progress"], s_new)
        width = r.width[:-1][k]
        return dist, width

    def route_ahead(self, points: int, spacing: float, start: float = 0.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The route ahead of each world's progress.

        Args:
            points: K.
            spacing: [m] between points.
            start: arc length offset of the first point from the rear-axle progress [m].

        Returns:
            xy `[W, K, 2]`, yaw `[W, K]`, speed limit `[W, K]`, valid `[W, K]` (False past the route's end).
        """
        r = self.route
        q = self.state["progress"][:, None] + start + spacing * torch.arange(points, device=self.device)  # [W, K]
        valid = q <= r.length
        qc = q.clamp(max=r.length)
        R = r.s.shape[0]
        i1 = torch.searchsorted(r.s, qc.contiguous()).clamp(1, R - 1)
        i0 = i1 - 1
        s0, s1 = r.s[i0], r.s[i1]
        frac = ((qc - s0) / (s1 - s0).clamp(min=1e-6)).clamp(0.0, 1.0)
        a, b = r.xy[i0], r.xy[i1]
        xy = a + (b - a) * frac[..., None]
        d = b - a
        yaw = torch.atan2(d[..., 1], d[..., 0])
        return xy, yaw, r.speed_limit[i0], valid

    def route_completion(self) -> Tensor:
        """`[W]` route completion [%] (100 once the front bumper is within 2 m of the end)."""
        r = self.route
        rc = 100.0 * self.state["progress"] / r.length
        return torch.where(self.state["progress"] + FRONT >= r.length - 2.0, torch.full_like(rc, 100.0), rc)

    def _infractions(self, ego_box: Tensor, step_dist: Tensor, lights: Tensor) -> list[Event]:
        st, r, cfg = self.state, self.route, self.cfg
        W = self.num_worlds
        prev_front = st["progress"] + FRONT
        dist, width = self._update_progress()
        front = st["progress"] + FRONT
        speed = st["ego"][:, 3]
        active = ~st["done"]
        events: list[Event] = []
        t = float(st["time"][0])
        ego_xy = st["ego"][:, :2]

        def emit(kind: InfractionKind, mask: Tensor, others: Tensor | None = None, details=None) -> None:
            mask = mask & (active[:, None] if mask.dim() == 2 else active)
            if not bool(mask.any()):
                return
            idx = mask.nonzero().tolist()
            for row in idx:
                w = row[0]
                det = dict(details(row) if callable(details) else (details or {}))
                ids = () if others is None else (int(others[w, row[1]]),)
                loc = (float(ego_xy[w, 0]), float(ego_xy[w, 1]))
                events.append(Event(kind.value, t, loc, ids, det, world=w))

        # collisions (the exact box test only when a bounding circle is close: same result, fewer ops)
        boxes = torch.cat([self.vehicle_boxes(), self.pedestrian_boxes(), st["static_box"]], 1)
        reach = 0.5 * (boxes[..., 3].square() + boxes[..., 4].square()).sqrt() + 0.5 * math.hypot(EGO.length, EGO.width)
        close = (boxes[..., :2] - ego_box[:, None, :2]).square().sum(-1) <= reach.square()
        new = torch.zeros_like(close)
        if bool(close.any()) or bool(st["in_contact"].any()):
            valid = torch.cat(
                [st["veh_valid"], st["ped_valid"], torch.ones_like(st["static_cls"], dtype=torch.bool)], 1
            )
            contact, new, fault = collision_update(ego_box, speed, boxes, valid & close, st["in_contact"])
            st["in_contact"] = contact
        if bool(new.any()):
            cls = torch.cat(
                [st["veh_cls"], torch.full_like(st["ped_id"], int(AgentClass.PEDESTRIAN)), st["static_cls"]], 1
            )
            ids = torch.cat([st["veh_id"], st["ped_id"], st["static_id"]], 1)
            n_dyn = st["veh_cls"].shape[1] + st["ped_id"].shape[1]
            is_static = torch.zeros_like(new)
            is_static[:, n_dyn:] = True
            kinds = {
                InfractionKind.COLLISION_PEDESTRIAN: cls == int(AgentClass.PEDESTRIAN),
                InfractionKind.COLLISION_STATIC: is_static,
            }
            kinds[InfractionKind.COLLISION_VEHICLE] = ~kinds[InfractionKind.COLLISION_PEDESTRIAN] & ~is_static
            for kind, m in kinds.items():
                emit(
                    kind,
                    new & m,
                    ids,
                    lambda row: {
                        "ego_at_fault": bool(fault[row[0], row[1]]),
                        "ego_speed": round(float(speed[row[0]]), 3),
                        "other_class": AgentClass(int(cls[row[0], row[1]])).name.lower(),
                    },
                )
        # red lights
        if r.light_s.numel():
            red = lights[:, r.light_head] == RED  # [W, Hr]
            ran = red_light_crossings(prev_front, front, r.light_s[None].expand(W, -1), red, torch.ones_like(red))
            emit(InfractionKind.RED_LIGHT, ran.any(-1), details={"stop_line_s": None})
        # stop signs
        if r.stop_s.numel():
            sv = torch.ones(W, r.stop_s.shape[0], dtype=torch.bool, device=self.device)
            st["stop_stopped"], st["stop_judged"], vio = stop_sign_update(
                front, speed, r.stop_s[None].expand(W, -1), sv, st["stop_stopped"], st["stop_judged"]
            )
            emit(InfractionKind.STOP_SIGN, vio.any(-1))
        # outside route lanes
        inside = dist <= 0.5 * width + 0.6
        if not bool(inside.all()):
            inside = inside | self._on_allowed_lane(~inside)
        st["outside"] = outside_lanes_update(inside, step_dist * active.float(), st["outside"])
        # min speed per checkpoint
        vxy = st["veh_xy"]
        near = ((vxy - ego_xy[:, None]).square().sum(-1) < 2500.0) & st["veh_valid"] & (st["veh_speed"] > 0.1)
        cnt = near.float().sum(-1)
        mean_traffic = (st["veh_speed"] * near.float()).sum(-1) / cnt.clamp(min=1.0)
        has = cnt > 0
        st["ms_ego"] = st["ms_ego"] + torch.where(has, speed, torch.zeros_like(speed))
        st["ms_traffic"] = st["ms_traffic"] + torch.where(has, mean_traffic, torch.zeros_like(speed))
        st["ms_count"] = st["ms_count"] + has.float()
        cp = st["ms_next"].float() * r.length / MIN_SPEED_CHECKPOINTS
        reached = st["progress"] >= cp
        if bool((reached & active).any()):
            pct = min_speed_percentage(st["ms_ego"], st["ms_traffic"], st["ms_count"])
            emit(
                InfractionKind.MIN_SPEED,
                reached & (pct < 100.0),
                details=lambda row: {"percentage": float(pct[row[0]])},
            )
            z = torch.zeros_like(speed)
            st["ms_ego"] = torch.where(reached, z, st["ms_ego"])
            st["ms_traffic"] = torch.where(reached, z, st["ms_traffic"])
            st["ms_count"] = torch.where(reached, z, st["ms_count"])
            st["ms_next"] = st["ms_next"] + reached.long()
        # terminal criteria
        st["still"], blocked = blocked_update(speed, st["still"], cfg.dt, max_time=cfg.blocked_seconds)
        deviated = route_deviation(dist, cfg.deviation_distance)
        timeout = st["time"] >= r.timeout
        complete = self.route_completion() >= 100.0
        ending = active & (blocked | deviated | timeout | complete)
        if bool(ending.any()):
            emit(InfractionKind.AGENT_BLOCKED, blocked)
            emit(InfractionKind.ROUTE_DEVIATION, deviated)
            emit(InfractionKind.ROUTE_TIMEOUT, timeout & ~blocked & ~deviated)
            pct = outside_percentage(st["outside"], r.length)
            emit(
                InfractionKind.OUTSIDE_ROUTE_LANES,
                ending & (pct > 0.0),
                details=lambda row: {"percentage": float(pct[row[0]])},
            )
        st["done"] = st["done"] | ending
        return events

    def _on_allowed_lane(self, which: Tensor) -> Tensor:
        """`[W]` bool for worlds in `which`: the ego centre lies on a same-direction lane of the route."""
        out = torch.zeros_like(which)
        idx = which.nonzero().flatten().tolist()
        if not idx:
            return out
        ego = self.state["ego"][idx].cpu().numpy().astype(np.float64)
        centre = ego[:, :2] + EGO.rear_axle_to_center * np.stack([np.cos(ego[:, 2]), np.sin(ego[:, 2])], -1)
        lane, _, lateral = self.town.project(centre, ego[:, 2])
        for j, w in enumerate(idx):
            ln = self.town.lanes[int(lane[j])]
            heading_ok = abs(math.remainder(float(ego[j, 2]) - float(ln.yaw[0] if len(ln.yaw) else 0.0), 2 * math.pi))
            same_dir = int(lane[j]) in self.route.lanes or (ln.is_junction and heading_ok < 3.0)
            out[w] = bool(same_dir and abs(lateral[j]) <= 0.5 * ln.width + 0.3)
        return out

    # ------------------------------------------------------------------ views
    def ego_pose(self) -> Tensor:
        """`[W, 3]` rear-axle (x, y, yaw) in the world frame."""
        return self.state["ego"][:, :3]

    def ego_speed(self) -> Tensor:
        return self.state["ego"][:, 3]

    def vehicle_boxes(self) -> Tensor:
        """`[W, N, 5]` (invalid slots far away)."""
        st = self.state
        b = torch.cat([st["veh_xy"], st["veh_yaw"][..., None], st["veh_size"][..., :2]], -1)
        far = torch.full_like(b, 1e6)
        far[..., 2:] = b[..., 2:]
        return torch.where(st["veh_valid"][..., None], b, far)

    def pedestrian_boxes(self) -> Tensor:
        """`[W, P, 5]`."""
        st = self.state
        size = torch.tensor(PED_SIZE[:2], device=self.device).expand(*st["ped_yaw"].shape, 2)
        return torch.cat([st["ped_xy"], st["ped_yaw"][..., None], size], -1)

    def agents_world(self) -> AgentStates:
        """Every agent (vehicles, pedestrians, static objects) in the world frame, `[W, A]`, box centres;
        z is the box centre height above the lane surface."""
        st = self.state
        W = self.num_worlds
        vyaw, pyaw = st["veh_yaw"], st["ped_yaw"]
        sb = st["static_box"]
        xy = torch.cat([st["veh_xy"], st["ped_xy"], sb[..., :2]], 1)
        yaw = torch.cat([vyaw, pyaw, sb[..., 2]], 1)
        speed = torch.cat([st["veh_speed"], st["ped_speed"], torch.zeros_like(sb[..., 0])], 1)
        psize = torch.tensor(PED_SIZE, device=self.device).expand(W, st["ped_u"].shape[1], 3)
        ssize = torch.cat([sb[..., 3:5], st["static_h"][..., None]], -1)
        size = torch.cat([st["veh_size"], psize, ssize], 1)
        ground = torch.cat([st["veh_z"], torch.zeros_like(pyaw), torch.zeros_like(sb[..., 0])], 1)
        z = ground + 0.5 * size[..., 2]
        cls = torch.cat([st["veh_cls"], torch.full_like(st["ped_id"], int(AgentClass.PEDESTRIAN)), st["static_cls"]], 1)
        ids = torch.cat([st["veh_id"], st["ped_id"], st["static_id"]], 1)
        valid = torch.cat([st["veh_valid"], st["ped_valid"], torch.ones_like(st["static_cls"], dtype=torch.bool)], 1)
        return AgentStates.create(
            xy=xy, z=z, yaw=wrap_angle(yaw), speed=speed, size=size, cls=cls, track_id=ids, valid=valid
        )

    def light_states(self) -> Tensor:
        """`[W, H]` int64 head states (0 red, 1 yellow, 2 green)."""
        return light_states(self.state["time"], self.md, self.cfg.green, self.cfg.yellow, self.cfg.all_red)

    def route_light(self) -> tuple[Tensor, Tensor]:
        """The next light on the route ahead of the ego's front: (`LightState` `[W]` int64 — red for red or
        yellow, green, none — and distance `[W]` [m], inf if none)."""
        from planner import LightState

        W = self.num_worlds
        r = self.route
        front = self.state["progress"] + FRONT
        if r.light_s.numel() == 0:
            return torch.full((W,), int(LightState.NONE), dtype=torch.int64), torch.full((W,), math.inf)
        ahead = r.light_s[None] - front[:, None]  # [W, Hr]
        ahead = torch.where(ahead > -0.5, ahead, torch.full_like(ahead, math.inf))
        k = ahead.argmin(-1)
        dist = ahead.gather(1, k[:, None]).squeeze(1)
        st = self.light_states()[:, r.light_head].gather(1, k[:, None]).squeeze(1)
        state = torch.where(st == 2, int(LightState.GREEN), int(LightState.RED))
        state = torch.where(torch.isfinite(dist), state, int(LightState.NONE))
        return state.long(), dist.float()

    def privileged(self):
        """`planner.PrivilegedState` `[W]`: agents in each ego frame, the route's light state/distance."""
        from planner import PrivilegedState

        a = self.agents_world()
        pose = self.ego_pose()
        rel = se2_relative(pose[:, None, :].expand(-1, a.xy.shape[1], 3), torch.cat([a.xy, a.yaw[..., None]], -1))
        c, s = torch.cos(pose[:, 2])[:, None], torch.sin(pose[:, 2])[:, None]
        vel = torch.stack(
            [c * a.velocity[..., 0] + s * a.velocity[..., 1], -s * a.velocity[..., 0] + c * a.velocity[..., 1]], -1
        )
        agents = AgentStates(
            xy=rel[..., :2].contiguous(),
            z=a.z,
            yaw=rel[..., 2].contiguous(),
            speed=a.speed,
            velocity=vel,
            size=a.size,
            cls=a.cls,
            track_id=a.track_id,
            valid=a.valid,
        )
        ls, ld = self.route_light()
        return PrivilegedState(agents=agents, light_state=ls, light_distance=ld).validate()

    def ground_truth(self, world: int = 0) -> dict:
        """World-frame ground truth of one world (for the recorder): `agents` (`AgentStates` `[A]`
        with track ids, classes, z, sizes), `parked` `[A]` bool (parked cars, never move), `agent_color`
        `[A, 3]` uint8, `lights` (pole xy
        `[H, 2]`, yaw `[H]`, state `[H]`), `ego_pose` (x, y, z, yaw) of the rear axle, `ego_speed`, `time`."""
        a = self.agents_world()
        one = AgentStates(**{f: getattr(a, f)[world] for f in a.__dataclass_fields__})
        st = self.state
        n_ped, n_st = st["ped_u"].shape[1], st["static_box"].shape[1]
        color = torch.cat(
            [
                st["veh_color"][world],
                torch.tensor([[60, 60, 160]], device=self.device).expand(n_ped, 3),
                torch.tensor([[230, 120, 20]], device=self.device).expand(n_st, 3),
            ]
        ).to(torch.uint8)
        ego = st["ego"][world]
        lane, _, _ = self.town.project(ego[None, :2].cpu().numpy().astype(np.float64))
        ez = float(self.town.lanes[int(lane[0])].z.mean()) if len(self.town.lanes[int(lane[0])].z) else 0.0
        n_veh = st["veh_lane"].shape[1]
        parked = torch.zeros(one.num_agents, dtype=torch.bool, device=self.device)
        parked[n_veh + n_ped :] = AgentClass.is_vehicle(st["static_cls"][world])
        return {
            "agents": one,
            "parked": parked,
            "agent_color": color,
            "lights": {
                "pole_xy": self.md.head_pole,
                "yaw": self.md.head_yaw,
                "stop_xy": self.md.head_stop_xy,
                "state": self.light_states()[world],
            },
            "ego_pose": torch.tensor([float(ego[0]), float(ego[1]), ez, float(ego[2])]),
            "ego_speed": float(ego[3]),
            "time": float(st["time"][world]),
        }

    def ego_history(self, keyframes: int | None = None) -> Tensor:
        """`[W, H+1, 3]` past rear-axle poses every 0.5 s (the last = now) in each current ego frame."""
        h = self.cfg.history_keyframes if keyframes is None else keyframes
        every = round(0.5 / self.cfg.dt)
        buf = self.state["pose_buf"]
        idx = torch.arange(buf.shape[1] - 1 - h * every, buf.shape[1], every, device=self.device)
        past = buf[:, idx]
        return se2_relative(self.ego_pose()[:, None].expand_as(past), past)
