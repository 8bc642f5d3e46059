"""`OracleWorldModel` ("oracle"): the lite simulator's true future under each candidate plan.

Built with a handle to the running `LiteWorld` (or a `LiteBackend`, whose `.world` is used). `rollout`
runs every plan in its own copy of the current state (`carla_bridge.lite.branching.run_plans`: N
copies advanced together, at most `max_branch` at a time, each ego following its plan with a
`PlanFollower`) while the traffic reacts (IDM vehicles yield to the ego, pedestrians stop), and
returns what really happened as a `Prediction`:

- `obstacle_prob [1, N, T, X, Y]`: every agent's true box (vehicles, pedestrians, parked cars,
  cones, barriers; the ego excluded) rasterized (cell centre inside the box) at t = 0.5…3 s on the
  forward-shifted planner BEV grid, in the ego frame of the planning time;
- `agent_trajs [1, N, A, 1, T, 3]`: the agents' true poses under each plan, one mode of probability 1;
- `drivable_prob [1, X, Y]`: driveable-surface cells of the town's ground raster;
- `light_probs`/`light_distance`: the true state of the route's next light now (one-hot).

The branches step at `dt` = 0.1 s by default (twice the simulator's 0.05 s step, to stay fast;
`dt=None` uses the simulator's own step). The driven world is never touched: branches are copies,
so the simulator state after `rollout` equals the state before. `simulate` also returns what the
scorer cannot see in a `Prediction` — the executed ego poses and the true collision / off-road /
red-light outcome of every plan — which the action-relevance evaluation uses as its truth.

It reads privileged state, so its name says so; lite backend only.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import Tensor

from agents import box_corners, ego_boxes
from agents.se2 import se2_relative
from carla_bridge.lite.branching import run_plans
from carla_bridge.scoring import InfractionKind
from occupancy import GridSpec
from planner import HORIZON_STEPS, STEP_SECONDS, Observation, Prediction, PrivilegedState, SceneState, validate_plans
from planner.proposals import DENSE_DT, densify
from planner.world_models import PLANNER_BEV_GRID, rasterize_boxes

DRIVEABLE_SURFACE = 11
"""Occ3D class of the drivable road surface."""

COLLISION_KINDS = frozenset(
    {
        InfractionKind.COLLISION_VEHICLE.value,
        InfractionKind.COLLISION_PEDESTRIAN.value,
        InfractionKind.COLLISION_STATIC.value,
    }
)
FAR = 1.0e4
"""Where agents that are not in the world (invalid slots) are put [m]."""


@dataclasses.dataclass(frozen=True)
class OracleOutcome:
    """What simulating N plans from the current state really gave.

    Attributes:
        prediction: the oracle's `Prediction` (B = 1) of those plans.
        boxes: `[N, T, A, 5]` true agent boxes (x, y, yaw, length, width) at t = 0.5·(1..T) s in the
            ego frame of the planning time (invalid agents far away).
        agent_valid: `[A]` bool, the agents that exist now.
        ego_poses: `[N, S, 3]` executed rear-axle poses at t = dt·(1..S) s, planning-time ego frame.
        collision: `[N]` bool, the ego collided (the simulator's collision event) within the horizon.
        collision_time: `[N]` time [s] of the first collision (inf if none).
        off_road: `[N]` bool, a corner of the executed ego box left the driveable surface (cells that were
            already off it at t = 0 are not counted).
        red_light: `[N]` bool, the ego ran a red light (the simulator's red-light event).
        dt: branch step [s].
    """

    prediction: Prediction
    boxes: Tensor
    agent_valid: Tensor
    ego_poses: Tensor
    collision: Tensor
    collision_time: Tensor
    off_road: Tensor
    red_light: Tensor
    dt: float

    @property
    def unsafe(self) -> Tensor:
        """`[N]` bool: the plan truly collides or leaves the road."""
        return self.collision | self.off_road


def rasterize_near(boxes: Tensor, valid: Tensor, grid: GridSpec) -> Tensor:
    """`planner.world_models.rasterize_boxes` of `boxes [N, T, A, 5]` (agents `valid [A]`) on `grid`,
    skipping agents whose bounding circle never reaches the grid (same result, much faster: most of
    a town's agents are far away). Returns `[N, T, X, Y]`."""
    n, t = boxes.shape[:2]
    r = 0.5 * boxes[..., 3:5].norm(dim=-1)  # [N, T, A]
    (x0, y0), (x1, y1) = grid.lower[:2], grid.upper[:2]
    x, y = boxes[..., 0], boxes[..., 1]
    near = (x + r >= x0) & (x - r <= x1) & (y + r >= y0) & (y - r <= y1)
    idx = (near.flatten(0, 1).any(0) & valid).nonzero()[:, 0]
    if idx.numel() == 0:
        return torch.zeros(n, t, *grid.bev_shape)
    return rasterize_boxes(boxes[:, :, idx], valid[idx][None].expand(n, -1), grid)


class OracleWorldModel:
    """See the module docstring.

    Args:
        world: the `LiteWorld` being driven (its current state is the branching point), or a
            `LiteBackend` (its `.world`).
        grid: BEV grid of the prediction (default: the planner's forward-shifted grid).
        dt: branch step [s]; 0.5 s must be a multiple of it; None = the simulator's step.
        max_branch: worlds stepped together (default 32; more plans run in further batches).
    """

    name = "oracle"
    privileged = True

    def __init__(self, world, grid: GridSpec = PLANNER_BEV_GRID, dt: float | None = 0.1, max_branch: int = 32) -> None:
        world = getattr(world, "world", world)
        if not hasattr(world, "branch") or not hasattr(world, "agents_world"):
            raise ValueError(f"world must be a LiteWorld or LiteBackend, got {type(world).__name__}")
        dt = float(world.cfg.dt) if dt is None else float(dt)
        ratio = STEP_SECONDS / dt if dt > 0 else math.nan
        if not dt > 0 or abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(f"dt must divide {STEP_SECONDS} s, got {dt}")
        if max_branch < 1:
            raise ValueError(f"max_branch must be ≥ 1, got {max_branch}")
        self.world = world
        self.grid = grid
        self.dt = dt
        self.max_branch = int(max_branch)
        self.last_outcome: OracleOutcome | None = None

    # ------------------------------------------------------------------ WorldModel protocol
    def encode(self, obs: Observation, prev: SceneState | None = None) -> SceneState:
        """The true agents and light state now (the observation supplies odometry and the route)."""
        return self._scene(obs, self.world.privileged())

    def encode_privileged(
        self, obs: Observation, privileged: PrivilegedState, prev: SceneState | None = None
    ) -> SceneState:
        """Same as `encode`, with the runner's privileged state."""
        return self._scene(obs, privileged)

    def rollout(self, scene: SceneState, plans: Tensor) -> Prediction:
        """True futures of the current simulator state under each plan.

        Args:
            scene: from `encode` at the current simulator time (B = 1).
            plans: `[1, N, T, 3]` ego plans.

        Returns:
            `Prediction` (B = 1, K = 1); `last_outcome` keeps the full `OracleOutcome`.
        """
        return self.simulate(scene, plans).prediction

    def simulate(self, scene: SceneState, plans: Tensor) -> OracleOutcome:
        """Run every plan in its own branch of the current state; see `OracleOutcome`."""
        validate_plans(plans, 1)
        _, n, t, _ = plans.shape
        if t != HORIZON_STEPS:
            raise ValueError(f"plans must have T = {HORIZON_STEPS} steps, got {t}")
        if n < 1:
            raise ValueError("plans must hold at least one plan (N ≥ 1)")
        if scene.batch_size != 1:
            raise ValueError(f"the oracle simulates one scene (B = 1), got B = {scene.batch_size}")
        if abs(float(scene.timestamp[0]) - self.world.time) > 1e-3:
            raise ValueError(
                f"scene.timestamp {float(scene.timestamp[0]):.3f} s is not the simulator's time {self.world.time:.3f} s"
            )
        world = self.world
        pose0 = world.ego_pose()[0].clone()
        dense = densify(plans.float(), scene.speed.float())[0]  # [N, D, 3] at DENSE_DT
        per_keyframe = round(STEP_SECONDS / self.dt)
        out = run_plans(
            world, dense, HORIZON_STEPS * per_keyframe, DENSE_DT, self.dt, per_keyframe, max_worlds=self.max_branch
        )
        a_now = world.agents_world()
        valid_a = a_now.valid[0].clone()  # [A]
        fut = out.agents  # [N, T, A] world frame
        poses = torch.cat([fut.xy, fut.yaw[..., None]], -1)
        rel_p = se2_relative(pose0.expand_as(poses), poses)
        rel_p = torch.where(fut.valid[..., None], rel_p, torch.full_like(rel_p, FAR))
        boxes = torch.cat([rel_p, fut.size[..., :2]], -1).float()  # [N, T, A, 5]
        ego_poses = se2_relative(pose0.double().expand(*out.ego.shape[:2], 3), out.ego[..., :3]).float()  # [N, S, 3]
        coll_t = out.first_event_time(COLLISION_KINDS).float()
        red = torch.isfinite(out.first_event_time([InfractionKind.RED_LIGHT.value]))
        a = boxes.shape[2]
        occ = rasterize_near(boxes, valid_a, self.grid)  # [N, T, X, Y]
        agents = a_now
        light_state = scene.extras.get("light_state")
        light_distance = scene.extras.get("light_distance")
        if light_state is None or light_distance is None:
            light_state, light_distance = world.route_light()
        pred = Prediction(
            grid=self.grid,
            obstacle_prob=occ[None],
            drivable_prob=self.drivable(pose0, self.grid)[None],
            light_probs=torch.nn.functional.one_hot(light_state.long(), 3).float(),
            light_distance=light_distance.float(),
            agent_trajs=boxes[..., :3].permute(0, 2, 1, 3)[None, :, :, None].contiguous(),
            agent_mode_probs=torch.ones(1, n, a, 1),
            agent_valid=valid_a[None],
            agent_size=agents.size[:1].float(),
            agent_cls=agents.cls[:1].long(),
        )
        outcome = OracleOutcome(
            prediction=pred,
            boxes=boxes,
            agent_valid=valid_a,
            ego_poses=ego_poses,
            collision=torch.isfinite(coll_t),
            collision_time=coll_t,
            off_road=self._off_road(pose0, ego_poses),
            red_light=red,
            dt=self.dt,
        )
        self.last_outcome = outcome
        return outcome

    def rasterize(self, outcome: OracleOutcome, grid: GridSpec) -> Tensor:
        """The true occupancy of `outcome` on another BEV `grid` (e.g. a learned model's): `[N, T, X, Y]`."""
        return rasterize_near(outcome.boxes, outcome.agent_valid, grid)

    def drivable(self, pose: Tensor, grid: GridSpec) -> Tensor:
        """`[X, Y]` 1 where the town's ground raster is driveable surface, for `grid` at world `pose [3]`."""
        x, y, yaw = (float(v) for v in pose)
        ground = self.world.town.static.raster(np.array([x, y]), yaw, grid)
        return torch.from_numpy(np.asarray(ground) == DRIVEABLE_SURFACE).float()

    # ------------------------------------------------------------------ internals
    def _scene(self, obs: Observation, privileged: PrivilegedState) -> SceneState:
        w_time = self.world.time
        if abs(float(obs.timestamp[0]) - w_time) > 1e-3:
            raise ValueError(
                f"the oracle's simulator is at t={w_time:.3f} s "
                f"but the observation is at t={float(obs.timestamp[0]):.3f} s"
            )
        extras = {"light_state": privileged.light_state, "light_distance": privileged.light_distance}
        return SceneState.from_observation(obs, privileged.agents, extras=extras)

    def _off_road(self, pose0: Tensor, ego_poses: Tensor) -> Tensor:
        """`[N]` bool: some corner of the executed ego box lies off the driveable surface (ignoring the
        corners that were off it at t = 0, e.g. a car starting on a painted shoulder)."""
        static = self.world.town.static
        zero = torch.zeros(1, 3)
        poses = torch.cat([zero.expand(ego_poses.shape[0], 1, 3), ego_poses], 1)  # [N, 1+S, 3]
        corners = box_corners(ego_boxes(poses))  # [N, 1+S, 4, 2] planning-time ego frame
        c, s = math.cos(float(pose0[2])), math.sin(float(pose0[2]))
        rot = torch.tensor([[c, -s], [s, c]], dtype=corners.dtype)
        world_xy = corners @ rot.T + pose0[:2].to(corners.dtype)
        off = torch.from_numpy(static.ground_at(world_xy.double().numpy()) != DRIVEABLE_SURFACE)  # [N, 1+S, 4]
        return (off[:, 1:] & ~off[:, :1]).flatten(1).any(-1)


__all__ = ["COLLISION_KINDS", "DRIVEABLE_SURFACE", "OracleOutcome", "OracleWorldModel", "rasterize_near"]
