"""`OracleWorldModel` ("oracle"): the lite simulator's true future under each candidate plan.

Built with a handle to the running `LiteWorld`. `rollout` branches the current state into one world
per plan (`LiteWorld.branch`, one batched step for all of them, at most `max_branch` worlds at a time),
executes each plan with the plan-tracking controller while the traffic reacts (IDM vehicles yield to
the ego, pedestrians stop), and returns what really happened as a `Prediction`: every agent's box
(vehicles, pedestrians, parked cars, cones, barriers) rasterized at t = 0.5…3 s in the ego frame of
the planning time, the agents' true trajectories as one-mode futures, the map's drivable area
(driveable-surface cells of the town's ground raster) and the true light state of the route.

The branches step at `dt` = 0.1 s (twice the simulator's step; collisions are judged on the same
boxes) — an upper bound a learned model can be compared against, not a deployable model. It reads
privileged state, so its name says so and the closed-loop runner treats it as privileged.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from agents.se2 import se2_relative
from carla_bridge.closed_loop.tracking import plan_for_controller, plan_in_world
from occupancy import GridSpec
from planner import HORIZON_STEPS, STEP_SECONDS, Observation, Prediction, PrivilegedState, SceneState, validate_plans
from planner.proposals import densify
from planner.world_models import PLANNER_BEV_GRID, rasterize_boxes

DRIVEABLE_SURFACE = 11
"""Occ3D class of the drivable road surface."""


class OracleWorldModel:
    """See the module docstring.

    Args:
        world: the `LiteWorld` being driven (its current state is the branching point).
        grid: BEV grid of the prediction.
        dt: branch step [s] (a multiple of nothing in particular; 0.5 s must be a multiple of it).
        max_branch: worlds stepped together (plans beyond it are run in further batches).
    """

    name = "oracle"
    privileged = True

    def __init__(self, world, grid: GridSpec = PLANNER_BEV_GRID, dt: float = 0.1, max_branch: int = 32) -> None:
        ratio = STEP_SECONDS / dt
        if not dt > 0 or abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(f"dt must divide {STEP_SECONDS} s, got {dt}")
        if max_branch < 1:
            raise ValueError(f"max_branch must be ≥ 1, got {max_branch}")
        self.world = world
        self.grid = grid
        self.dt = dt
        self.max_branch = max_branch

    # ------------------------------------------------------------------ WorldModel protocol
    def encode(self, obs: Observation, prev: SceneState | None = None) -> SceneState:
        """The true agents and light state now (the observation only supplies odometry and route)."""
        return self._scene(obs, self.world.privileged())

    def encode_privileged(
        self, obs: Observation, privileged: PrivilegedState, prev: SceneState | None = None
    ) -> SceneState:
        """Same as `encode` with the runner's privileged state."""
        return self._scene(obs, privileged)

    def rollout(self, scene: SceneState, plans: Tensor) -> Prediction:
        """True futures of the current simulator state under each plan (`plans [1, N, T, 3]`)."""
        validate_plans(plans, 1)
        _, n, t, _ = plans.shape
        if t != HORIZON_STEPS:
            raise ValueError(f"plans must have T = {HORIZON_STEPS} steps, got {t}")
        world = self.world
        pose0 = world.ego_pose()[0].clone()
        dense = densify(plans.float(), scene.speed.float())[0]  # [N, D, 3]
        boxes, valid = [], []
        for lo in range(0, n, self.max_branch):
            b, v = self._branch_boxes(dense[lo : lo + self.max_branch], pose0)
            boxes.append(b)
            valid.append(v)
        boxes_t = torch.cat(boxes)  # [N, T, A, 5] ego frame at planning time
        valid_a = valid[0]  # [A] (valid at planning time, the same for all branches)
        occ = rasterize_boxes(boxes_t, valid_a[None].expand(n, -1), self.grid)  # [N, T, X, Y]
        agents = world.agents_world()
        a = boxes_t.shape[2]
        trajs = boxes_t[..., :3].permute(0, 2, 1, 3)  # [N, A, T, 3]
        probs = torch.nn.functional.one_hot(scene.extras["light_state"], 3).float()
        return Prediction(
            grid=self.grid,
            obstacle_prob=occ[None],
            drivable_prob=self._drivable(pose0)[None],
            light_probs=probs,
            light_distance=scene.extras["light_distance"].float(),
            agent_trajs=trajs[None, :, :, None],
            agent_mode_probs=torch.ones(1, n, a, 1),
            agent_valid=valid_a[None],
            agent_size=agents.size[:1].float(),
            agent_cls=agents.cls[:1],
        )

    # ------------------------------------------------------------------ internals
    def _scene(self, obs: Observation, privileged: PrivilegedState) -> SceneState:
        w_time = self.world.time
        if abs(float(obs.timestamp[0]) - w_time) > 1e-3:
            raise ValueError(
                f"the oracle's simulator is at t={w_time:.3f} s but the observation is at t={float(obs.timestamp[0]):.3f} s"
            )
        return SceneState(
            agents=privileged.agents,
            speed=obs.speed,
            ego_pose=obs.ego_pose,
            route=obs.route,
            route_valid=obs.route_valid,
            timestamp=obs.timestamp,
            extras={"light_state": privileged.light_state, "light_distance": privileged.light_distance},
        ).validate()

    def _branch_boxes(self, dense: Tensor, pose0: Tensor) -> tuple[Tensor, Tensor]:
        """Run `dense [W, D, 3]` plans in W branches; agent boxes `[W, T, A, 5]` in the ego frame of
        `pose0` at t = 0.5·(1..T) s and the agents' validity `[A]` now."""
        w = dense.shape[0]
        branch = self.world.branch(w)
        branch.cfg = dataclasses.replace(branch.cfg, dt=self.dt)
        plan_world, times = plan_in_world(pose0.expand(w, 3), dense)
        valid0 = branch.agents_world().valid[0].clone()
        per_keyframe = round(STEP_SECONDS / self.dt)
        out = []
        for k in range(1, HORIZON_STEPS * per_keyframe + 1):
            rel = plan_for_controller(plan_world, times, (k - 1) * self.dt, branch.ego_pose())
            branch.step_plans(rel.float())
            if k % per_keyframe == 0:
                a = branch.agents_world()
                poses = torch.cat([a.xy, a.yaw[..., None]], -1)  # [W, A, 3] world
                rel_p = se2_relative(pose0.expand_as(poses), poses)
                far = ~a.valid
                rel_p = torch.where(far[..., None], torch.full_like(rel_p, 1e4), rel_p)
                out.append(torch.cat([rel_p, a.size[..., :2]], -1))
        return torch.stack(out, 1).float(), valid0

    def _drivable(self, pose0: Tensor) -> Tensor:
        x, y, yaw = (float(v) for v in pose0)
        ground = self.world.town.static.raster(np.array([x, y]), yaw, self.grid)
        return torch.from_numpy(np.asarray(ground) == DRIVEABLE_SURFACE).float()


__all__ = ["DRIVEABLE_SURFACE", "OracleWorldModel"]
