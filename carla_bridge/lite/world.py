"""`LiteWorld`: W copies of one town world — its typed state, the step and the criteria behind one handle.

The state (`state.WorldState`) has a leading world dim W, so W counterfactual copies (each with its own
ego control) advance in one step; `branch(k)` copies one world k times. The step (`step.advance`)
draws no random numbers and never writes a tensor in place, so a state object is its own snapshot
and a restored state reproduces the identical future; each world's future is bit-identical whether
it is stepped alone or batched with others.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from agents import AgentClass, AgentStates
from carla_bridge.backend import Event, SimState
from carla_bridge.lite import criteria, views
from carla_bridge.lite.config import LiteConfig
from carla_bridge.lite.lights import head_states
from carla_bridge.lite.map_data import MapData, build_map_data
from carla_bridge.lite.pedestrians import path_cumulative, pedestrian_poses
from carla_bridge.lite.population import populate
from carla_bridge.lite.route import RouteData, route_ahead, route_data
from carla_bridge.lite.state import EgoState, PedestrianState, ScenarioState, StaticState, VehicleState, WorldState
from carla_bridge.lite.step import advance, apply_light_override, compile_noise_kernel
from carla_bridge.lite.vehicles import choose_successors, vehicle_poses
from carla_bridge.scenarios import PackedScenarios, ScenarioRecord, build_scenarios, pack
from carla_bridge.scenarios.criteria import scenario_events
from carla_bridge.scenarios.views import ScenarioActorView, ScenarioView, scenario_actors, scenario_views
from planner import PrivilegedState

_F64, _I64, _BOOL = torch.float64, torch.int64, torch.bool
PEDESTRIAN_ID0, STATIC_ID0 = 1000, 2000
"""Track ids: vehicles from 0, pedestrians from 1000, statics from 2000."""


def _t(a, dtype=_F64) -> Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype)


class LiteWorld:
    """W copies of one town world (see the module docstring).

    Build with `LiteWorld(town, config)`, then `reset(route_plan, seed)`. Views (`ego_pose`,
    `agents_world`, `privileged`, `ground_truth`, …) read the current state; `step(controls)` advances
    all worlds and returns the new `Event`s.
    """

    def __init__(self, town, config: LiteConfig | None = None, map_data: MapData | None = None) -> None:
        self.town = town
        self.cfg = config or LiteConfig()
        self.md = map_data if map_data is not None else build_map_data(town, seed=town.seed)
        self.state: WorldState | None = None
        self.route: RouteData | None = None
        self.seed = 0
        self.scenarios: PackedScenarios = pack([], 0, 0, 0, 0)
        self.scenario_records: list[ScenarioRecord] = []

    # ------------------------------------------------------------------ setup
    @property
    def num_worlds(self) -> int:
        return self._state().num_worlds

    @property
    def time(self) -> float:
        return float(self._state().time[0])

    def _state(self) -> WorldState:
        if self.state is None:
            raise RuntimeError("LiteWorld has no state: call reset() first")
        return self.state

    def reset(self, route_plan, seed: int, num_worlds: int = 1, scenarios=()) -> None:
        """Populate the world(s) for a route.

        Args:
            route_plan: a `RoutePlan` (polyline, s, point_lane, lane_ids) of the ego's route.
            seed: seeds the population (the step itself is deterministic).
            num_worlds: W identical copies.
            scenarios: the route's `carla_bridge.routes.ScenarioConfig`s; their actors get agent slots
                after the background agents (`self.scenario_records` says what became of each).
        """
        self.seed = int(seed)
        self.route = route_data(self.town, route_plan, self.cfg.rules)
        rng = np.random.default_rng(seed)
        poly = np.asarray(route_plan.polyline)
        d = poly[min(3, len(poly) - 1)] - poly[0]
        yaw0 = math.atan2(d[1], d[0]) if np.linalg.norm(d) > 1e-6 else float(route_plan.yaw[0])
        pop = populate(self.town, self.md, self.cfg, rng, poly, np.asarray(poly[0]))
        ego = EgoState(
            pose=_t([[poly[0][0], poly[0][1], yaw0]]),
            speed=_t([0.0]),
            control=torch.zeros(1, 3, dtype=_F64),
            history=torch.zeros(1, 1, 3, dtype=_F64),
        )
        n, p, s = len(pop["veh_lane"]), len(pop["ped_path"]), len(pop["static_box"])
        statics = StaticState(
            box=_t(pop["static_box"]).reshape(1, s, 5),
            height=_t(pop["static_h"]).reshape(1, s),
            cls=_t(pop["static_cls"], _I64).reshape(1, s),
            track_id=(STATIC_ID0 + torch.arange(s))[None],
            parked=_t(pop["static_parked"], _BOOL).reshape(1, s),
            valid=torch.ones(1, s, dtype=_BOOL),
        )
        self.state = WorldState(
            time=torch.zeros(1, dtype=_F64),
            ego=ego,
            vehicles=self._vehicles(
                pop["veh_lane"],
                pop["veh_s"],
                pop["veh_speed"],
                pop["veh_cls"],
                pop["veh_size"],
                pop["veh_key"],
                pop["veh_factor"],
                pop["veh_color"],
            ),
            pedestrians=self._pedestrians(pop["ped_path"], pop["ped_road"], pop["ped_u"], pop["ped_v0"]),
            statics=statics,
            route=criteria.initial_route_state(
                self.route, self.town, _t([[poly[0][0], poly[0][1], yaw0]]), n + p + s, self.cfg
            ),
            scenarios=ScenarioState.initial(1, 0, 0, 0, 0, 0, 0, self.md.num_heads),
        )
        specs, self.scenario_records = build_scenarios(self.town, self.md, route_plan, scenarios, self.seed)
        self._add_scenario_actors(pack(specs, n, p, s, self.seed))
        start = next((sp.ego_start for sp in specs if sp.ego_start is not None), None)
        self.set_ego(*(start if start is not None else (poly[0][0], poly[0][1], yaw0)))
        self._compile_kernels()
        if num_worlds > 1:
            self.state = self.state.repeat(num_worlds)

    def _compile_kernels(self) -> None:
        """Compile (or load from numba's on-disk cache) every kernel a step of this world can call, by
        stepping a throwaway copy of world 0, so that no compilation happens inside a caller's
        per-step watchdog budget: a SIGALRM raised in the middle of numba's compiler leaves it unable
        to build or cache that kernel for the rest of the process ("no compiled object yet")."""
        self.branch(1).step(torch.zeros(1, 3, dtype=_F64))
        compile_noise_kernel()

    def _add_scenario_actors(self, packed: PackedScenarios) -> None:
        """Append the scenario actors' slots (invalid until their scenario places them) to every group of
        the one-world state, and the scenario bookkeeping."""
        st = self._state()
        T = packed.tables
        k, q, j = len(packed.vehicles), len(packed.walkers), len(packed.props)
        veh = st.vehicles
        if k:
            lane0 = T.seg_lane[T.va_seg0].astype(np.int64)
            extra = self._vehicles(
                lane0,
                T.seg_s0[T.va_seg0],
                np.zeros(k),
                [c for c, _ in packed.vehicles],
                [sz for _, sz in packed.vehicles],
                np.arange(1, k + 1) * 104729,
                np.ones(k),
                np.full((k, 3), (200, 40, 40)),
            )
            extra = replace(
                extra, valid=torch.zeros(1, k, dtype=_BOOL), track_id=(100_000 + 1000 * torch.arange(k))[None]
            )
            veh = VehicleState(
                **{f: torch.cat([getattr(veh, f), getattr(extra, f)], 1) for f in veh.__dataclass_fields__}
            )
        peds = st.pedestrians
        if q:
            start = np.array([w[0] for w in packed.walkers])
            end = start + np.array([[math.cos(w[1]) * w[3], math.sin(w[1]) * w[3]] for w in packed.walkers])
            paths = start[:, None] + (end - start)[:, None] * np.array([0.0, 1 / 3, 2 / 3, 1.0])[None, :, None]
            extra = self._pedestrians(paths, np.ones((q, 3), dtype=bool), np.zeros(q), [w[2] for w in packed.walkers])
            extra = replace(extra, valid=torch.zeros(1, q, dtype=_BOOL), track_id=(200_000 + torch.arange(q))[None])
            peds = PedestrianState(
                **{f: torch.cat([getattr(peds, f), getattr(extra, f)], 1) for f in peds.__dataclass_fields__}
            )
        stat = st.statics
        if j:
            extra = StaticState(
                box=_t([b for _, b, _ in packed.props]).reshape(1, j, 5),
                height=_t([h for _, _, h in packed.props]).reshape(1, j),
                cls=_t([c for c, _, _ in packed.props], _I64).reshape(1, j),
                track_id=(300_000 + torch.arange(j))[None],
                parked=torch.zeros(1, j, dtype=_BOOL),
                valid=torch.zeros(1, j, dtype=_BOOL),
            )
            stat = StaticState(
                **{f: torch.cat([getattr(stat, f), getattr(extra, f)], 1) for f in stat.__dataclass_fields__}
            )
        a = sum(g.valid.shape[1] for g in (veh, peds, stat))
        scen = ScenarioState.initial(
            1, len(packed.specs), packed.num_conditions, k, q, j, len(T.fl_scen), self.md.num_heads
        )
        self.scenarios = packed
        self.state = replace(
            st,
            vehicles=veh,
            pedestrians=peds,
            statics=stat,
            scenarios=scen,
            route=replace(st.route, in_contact=torch.zeros(1, a, dtype=_BOOL)),
        ).validate()

    def _vehicles(self, lane, s, speed, cls, size, key, factor, color) -> VehicleState:
        n = len(np.asarray(lane).reshape(-1))
        lane_t = _t(lane, _I64).reshape(1, n)
        key_t = _t(key, _I64).reshape(1, n)
        s_t = _t(s).reshape(1, n)
        lateral = torch.zeros(1, n, dtype=_F64)
        nxt = choose_successors(self.md.lanes, lane_t.numpy(), key_t.numpy(), np.zeros((1, n), dtype=np.int64))
        xy, yaw, z = vehicle_poses(self.md.lanes, lane_t.numpy(), s_t.numpy(), lateral.numpy())
        return VehicleState(
            lane=lane_t,
            s=s_t,
            next=torch.from_numpy(nxt),
            lateral=lateral,
            speed=_t(speed).reshape(1, n),
            factor=_t(factor).reshape(1, n),
            key=key_t,
            trans=torch.zeros(1, n, dtype=_I64),
            stop_done=torch.zeros(1, n, dtype=_BOOL),
            still=torch.zeros(1, n, dtype=_F64),
            size=_t(size).reshape(1, n, 3),
            cls=_t(cls, _I64).reshape(1, n),
            track_id=torch.arange(n)[None],
            color=_t(color, _I64).reshape(1, n, 3),
            valid=torch.ones(1, n, dtype=_BOOL),
            xy=torch.from_numpy(xy),
            yaw=torch.from_numpy(yaw),
            z=torch.from_numpy(z),
        )

    def _pedestrians(self, paths, road, u, v0) -> PedestrianState:
        paths = np.asarray(paths, dtype=np.float64).reshape(-1, 4, 2)
        n = len(paths)
        u_t, d_t = _t(u).reshape(1, n), torch.ones(1, n, dtype=_F64)
        path_t, cum_t = _t(paths)[None], _t(path_cumulative(paths) if n else np.zeros((0, 4)))[None]
        xy, yaw = pedestrian_poses(path_t.numpy(), cum_t.numpy(), u_t.numpy(), d_t.numpy())
        return PedestrianState(
            path=path_t,
            cum=cum_t,
            road=_t(np.asarray(road, dtype=bool).reshape(n, 3), _BOOL)[None],
            u=u_t,
            direction=d_t,
            v0=_t(v0).reshape(1, n),
            speed=torch.zeros(1, n, dtype=_F64),
            track_id=(PEDESTRIAN_ID0 + torch.arange(n))[None],
            valid=torch.ones(1, n, dtype=_BOOL),
            xy=torch.from_numpy(xy),
            yaw=torch.from_numpy(yaw),
        )

    def _replace_agents(self, **groups) -> None:
        """Swap agent groups (one world each) in every world (scene building in tests); contacts restart.

        Raises:
            ValueError: the route has scenario actors (their slots follow the background agents).
        """
        st = self._state()
        if self.scenarios.slots:
            raise ValueError("cannot replace agents of a world with scenario actors (reset without scenarios)")
        W = st.num_worlds
        st = replace(st, **{k: g.select(torch.zeros(W, dtype=_I64)) for k, g in groups.items()})
        self.scenarios = pack(
            [], st.vehicles.valid.shape[1], st.pedestrians.valid.shape[1], st.statics.valid.shape[1], 0
        )
        a = sum(g.valid.shape[1] for g in (st.vehicles, st.pedestrians, st.statics))
        self.state = replace(st, route=replace(st.route, in_contact=torch.zeros(W, a, dtype=_BOOL))).validate()

    # ------------------------------------------------------------------ scenario building
    def set_ego(self, x: float, y: float, yaw: float, speed: float = 0.0) -> None:
        """Place the ego (rear axle, world frame) in every world; history and route progress restart there."""
        st = self._state()
        W = st.num_worlds
        pose = _t([x, y, yaw])
        hist = int(self.cfg.history_keyframes * self.steps_per_keyframe) + 1
        ego = EgoState(
            pose=pose[None].expand(W, 3).clone(),
            speed=torch.full((W,), float(speed), dtype=_F64),
            control=torch.zeros(W, 3, dtype=_F64),
            history=pose[None, None].expand(W, hist, 3).clone(),
        )
        agents = st.route.in_contact.shape[1]
        self.state = replace(
            st, ego=ego, route=criteria.initial_route_state(self.route, self.town, ego.pose, agents, self.cfg)
        )

    def set_vehicles(self, lane, s, speed, cls=None, size=None) -> None:
        """Replace the background vehicles of every world (scenario building, tests).

        Args:
            lane: `[N]` lane ids; s: `[N]` box-centre arc lengths [m]; speed: `[N]` [m/s].
            cls: `[N]` `AgentClass` ids (default cars); size: `[N, 3]` (default 4.6 × 1.9 × 1.5 m).
        """
        n = len(np.asarray(lane).reshape(-1))
        cls = np.full(n, int(AgentClass.CAR)) if cls is None else cls
        size = np.tile([4.6, 1.9, 1.5], (n, 1)) if size is None else size
        key = (np.arange(1, n + 1) * 7919).astype(np.int64)
        veh = self._vehicles(lane, s, speed, cls, size, key, np.ones(n), np.full((n, 3), 128))
        self._replace_agents(vehicles=veh)

    def set_pedestrians(self, paths, road, u, v0) -> None:
        """Replace the pedestrians of every world.

        Args:
            paths: `[P, 4, 2]` world polylines; road: `[P, 3]` bool (segment crosses the road);
            u: `[P]` start arc positions [m]; v0: `[P]` walking speeds [m/s].
        """
        self._replace_agents(pedestrians=self._pedestrians(paths, road, u, v0))

    def clear_static(self) -> None:
        """Remove parked cars and props from every world."""
        s = self._state().statics
        self._replace_agents(statics=replace(s, **{k: v[:1, :0].contiguous() for k, v in s.flat().items()}))

    # ------------------------------------------------------------------ snapshots and branches
    def snapshot(self) -> SimState:
        """A copy of the state (all worlds)."""
        return SimState({k: v.clone() for k, v in self._state().flat().items()}, {"seed": self.seed})

    def restore(self, snap: SimState) -> None:
        """Restore a `snapshot()` (identical futures follow); `ValueError` if it is not this world's."""
        state = WorldState.from_flat({k: v.clone() for k, v in snap.tensors.items()}).validate()
        if self.state is not None and self.state.flat().keys() != state.flat().keys():
            raise ValueError("SimState does not match this world's state fields")
        self.state = state
        self.seed = int(snap.meta.get("seed", self.seed))

    def branch(self, k: int, world: int = 0, config: LiteConfig | None = None) -> LiteWorld:
        """A new `LiteWorld` holding `k` copies of world `world` (shares the map and route; `config`
        replaces the settings, e.g. a coarser step)."""
        out = LiteWorld(self.town, config or self.cfg, map_data=self.md)
        out.route, out.seed = self.route, self.seed
        out.scenarios, out.scenario_records = self.scenarios, self.scenario_records
        out.state = self._state().repeat(k, world)
        return out

    # ------------------------------------------------------------------ step
    def step(self, controls: Tensor) -> list[Event]:
        """Advance every world by dt with ego controls.

        Args:
            controls: `[W, 3]` (throttle [0, 1], steer [-1, 1] positive left, brake [0, 1]).

        Returns:
            Events of this step (all worlds; `Event.world` says which).
        """
        st = self._state()
        controls = torch.as_tensor(controls, dtype=_F64)
        W = st.num_worlds
        if controls.shape != (W, 3):
            raise ValueError(f"controls must have shape [{W}, 3], got {list(controls.shape)}")
        if not bool(torch.isfinite(controls).all()):
            raise ValueError("controls contain NaN or inf")
        lo = torch.tensor([0.0, -1.0, 0.0], dtype=_F64)
        if bool(((controls < lo) | (controls > 1.0)).any()):
            raise ValueError("controls out of range: throttle and brake must lie in [0, 1], steer in [-1, 1]")
        new, info = advance(st, controls, self.md, self.cfg, self.scenarios)
        self.state, events = criteria.judge(st, new, info, self.route, self.cfg, self.town)
        if self.scenarios.specs:
            events += scenario_events(st, self.state, self.scenarios, ~st.route.done)
        return events

    def finish(self) -> list[Event]:
        """End the route of every world still running (a run stopped from outside): the criteria's
        final events (`criteria.finish`)."""
        self.state, events = criteria.finish(self._state(), self.route, self.cfg)
        return events

    # ------------------------------------------------------------------ views
    @property
    def steps_per_keyframe(self) -> int:
        return round(0.5 / self.cfg.dt)

    @property
    def done(self) -> Tensor:
        """`[W]` bool: the route ended (completed, blocked, deviated or timed out)."""
        return self._state().route.done.clone()

    @property
    def progress(self) -> Tensor:
        """`[W]` float32 rear-axle progress along the route [m]."""
        return self._state().route.progress.float()

    def ego_pose(self) -> Tensor:
        """`[W, 3]` float32 rear-axle (x, y, yaw) in the world frame."""
        return self._state().ego.pose.float()

    def ego_speed(self) -> Tensor:
        """`[W]` float32 [m/s]."""
        return self._state().ego.speed.float()

    def light_states(self) -> Tensor:
        """`[W, H]` int64 `HeadState` of every light head (with the scenarios' frozen lights)."""
        st = self._state()
        heads = head_states(st.time.numpy(), self.md.lights, self.cfg.green, self.cfg.yellow, self.cfg.all_red)
        return torch.from_numpy(apply_light_override(heads, st.scenarios.light_override.numpy()))

    # ------------------------------------------------------------------ scenarios
    def scenario_views(self, world: int = 0) -> list[ScenarioView]:
        """Every built scenario of the route in world `world`: phase, flags, expert hint (see `scenarios.views`)."""
        return scenario_views(self._state(), self.scenarios, world)

    def scenario_actors(self, world: int = 0, live_only: bool = True) -> list[ScenarioActorView]:
        """The scenario actors of world `world` (by default only those present now), with their scenario,
        role, behaviour, phase and pose — what an expert needs to react to them."""
        return scenario_actors(self._state(), self.scenarios, world, live_only)

    def route_light(self) -> tuple[Tensor, Tensor]:
        """The next light on the route: (`LightState` `[W]`, distance to its stop line `[W]` [m], inf if none)."""
        return views.route_light(self._state(), self.route, self.light_states())

    def route_ahead(self, points: int, spacing: float, start: float = 0.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`route.route_ahead` of each world's progress: xy `[W, K, 2]`, yaw, speed limit, valid."""
        return route_ahead(self.route, self._state().route.progress, points, spacing, start)

    def route_completion(self) -> Tensor:
        """`[W]` route completion [%] (RouteCompletionTest)."""
        return self._state().route.completion.clone()

    def agents_world(self) -> AgentStates:
        """Every agent in the world frame, `[W, A]` (see `views.agents_world`)."""
        return views.agents_world(self._state())

    def privileged(self) -> PrivilegedState:
        """`planner.PrivilegedState` `[W]` (see `views.privileged`)."""
        return views.privileged(self._state(), self.route, self.light_states())

    def ego_history(self, keyframes: int | None = None) -> Tensor:
        """`[W, H+1, 3]` past rear-axle poses every 0.5 s (the last = now) in each current ego frame."""
        h = self.cfg.history_keyframes if keyframes is None else keyframes
        return views.ego_history(self._state(), h, self.steps_per_keyframe)

    def ground_truth(self, world: int = 0) -> dict:
        """World-frame ground truth of one world (for the recorder): `agents` (`AgentStates` `[A]`),
        `parked` `[A]` bool, `agent_color` `[A, 3]` uint8, `lights` (pole_xy `[H, 2]`, yaw `[H]`,
        stop_xy `[H, 2]`, state `[H]` `HeadState`), `ego_pose` (x, y, z, yaw) of the rear axle,
        `ego_speed`, `time`."""
        st = self._state()
        a = self.agents_world()
        one = AgentStates(**{f: getattr(a, f)[world] for f in a.__dataclass_fields__})
        ego = st.ego.pose[world]
        return {
            "agents": one,
            "parked": views.parked_mask(st, world),
            "agent_color": views.agent_colors(st, world),
            "lights": {
                "pole_xy": self.md.head_pole,
                "yaw": self.md.head_yaw,
                "stop_xy": self.md.head_stop_xy,
                "state": self.light_states()[world],
            },
            "ego_pose": torch.tensor([float(ego[0]), float(ego[1]), self.ground_height(ego[:2]), float(ego[2])]),
            "ego_speed": float(st.ego.speed[world]),
            "time": float(st.time[world]),
        }

    def ground_height(self, xy: Tensor) -> float:
        """Height [m] of the lane surface nearest to world point `xy [2]`."""
        lane, _, _ = self.town.project(np.asarray(xy, dtype=np.float64)[None, :2])
        z = self.town.lanes[int(lane[0])].z
        return float(z.mean()) if len(z) else 0.0
