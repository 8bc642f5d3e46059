"""Random scenes that are hard on purpose, for cross-checking the vectorized scorer against the
shapely reference (tests and `bench/bench_scorer.py`).

Each scene places obstacle cells, agent modes and non-drivable cells right next to the ego box of
randomly chosen plans at randomly chosen dense steps: gaps drawn in [-0.3, 0.25] m, so many plans
fail a gate and many pass by less than 0.2 m; a red light sits a random distance ahead. The exact
gap of every constructed placement is measured with shapely and returned for reporting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
import torch
from shapely.geometry import Polygon

from agents import EGO
from occupancy import GridSpec
from planner.contracts import Prediction
from planner.proposals import Proposals, coarse_from_dense
from planner.timebase import DENSE_DT, DENSE_PER_STEP, HORIZON_STEPS, STEP_SECONDS

SYNTHETIC_GRID = GridSpec((-10.0, -20.0, -1.0), (50.0, 20.0, 1.0), (0.5, 0.5, 2.0))


@dataclass
class SyntheticScenes:
    """A batch of B synthetic scenes with N plans each.

    Attributes:
        proposals, prediction, route `[B, R, 2]`, route_valid `[B, R]`.
        gaps: measured polygon distances [m] of every constructed placement (0 = overlapping).
    """

    proposals: Proposals
    prediction: Prediction
    route: torch.Tensor
    route_valid: torch.Tensor
    gaps: np.ndarray


def _rect(cx: float, cy: float, yaw: float, length: float, width: float) -> Polygon:
    c, s = math.cos(yaw), math.sin(yaw)
    return Polygon(
        [
            (cx + c * 0.5 * length * sl - s * 0.5 * width * sw, cy + s * 0.5 * length * sl + c * 0.5 * width * sw)
            for sl, sw in ((1, -1), (1, 1), (-1, 1), (-1, -1))
        ]
    )


def _ego_box(p: np.ndarray) -> tuple[float, float, float]:
    off = EGO.rear_axle_to_center
    return float(p[0] + off * math.cos(p[2])), float(p[1] + off * math.sin(p[2])), float(p[2])


def random_scenes(
    num_scenes: int,
    num_plans: int = 4,
    num_agents: int = 1,
    num_modes: int = 2,
    seed: int = 0,
    grid: GridSpec = SYNTHETIC_GRID,
    per_plan_obstacles: bool = True,
) -> SyntheticScenes:
    """Build `num_scenes` hard random scenes (see the module docstring). With `per_plan_obstacles`
    the obstacle grid differs per plan (`[B, N, T, X, Y]`, like a plan-conditioned model), else one
    grid is shared by all plans (`[B, 1, T, X, Y]` broadcast, like a plan-blind model)."""
    rng = np.random.default_rng(seed)
    t_count, d_count = HORIZON_STEPS, HORIZON_STEPS * DENSE_PER_STEP
    nx, ny = grid.bev_shape
    lower, voxel = grid.lower[:2], grid.voxel[:2]
    b_count, n_count, a_count, k_count = num_scenes, num_plans, num_agents, num_modes
    dense = np.zeros((b_count, n_count, d_count, 3))
    speed0 = rng.uniform(0.0, 12.0, b_count)
    n_obst = n_count if per_plan_obstacles else 1
    obstacle = rng.random((b_count, n_obst, t_count, nx, ny), dtype=np.float32) * 0.45
    drivable = np.ones((b_count, nx, ny))
    trajs = np.zeros((b_count, n_count, a_count, k_count, t_count, 3))
    sizes = np.zeros((b_count, a_count, 3))
    routes = np.zeros((b_count, 41, 2))
    gaps: list[float] = []
    frame_t = np.arange(1, t_count + 1) * STEP_SECONDS
    for b in range(b_count):
        # route: a gentle arc with a lateral offset, from 10 m behind to 70 m ahead
        kappa, lat = rng.uniform(-0.02, 0.02), rng.uniform(-1.0, 1.0)
        s = np.linspace(-10.0, 70.0, 41)
        th = s * kappa
        routes[b] = np.stack(
            [
                s if abs(kappa) < 1e-6 else np.sin(th) / kappa,
                lat + (s * th / 2 if abs(kappa) < 1e-6 else (1 - np.cos(th)) / kappa),
            ],
            -1,
        )
        # plans: unicycles with random acceleration and yaw rate
        acc, rate = rng.uniform(-3.0, 2.0, (n_count, 1)), rng.uniform(-0.4, 0.4, (n_count, 1))
        t = np.arange(0, d_count + 1) * DENSE_DT
        v = np.maximum(speed0[b] + acc * t, 0.0)  # [N, D+1]
        dist = 0.5 * (v[:, 1:] + v[:, :-1]) * DENSE_DT
        yaw = rate * t  # [N, D+1]
        yaw_mid = 0.5 * (yaw[:, 1:] + yaw[:, :-1])
        dense[b, :, :, 0] = np.cumsum(dist * np.cos(yaw_mid), -1)
        dense[b, :, :, 1] = np.cumsum(dist * np.sin(yaw_mid), -1)
        dense[b, :, :, 2] = yaw[:, 1:]

        def pick(b: int = b) -> tuple[int, int, tuple[float, float, float], Polygon]:
            n, i = int(rng.integers(n_count)), int(rng.integers(d_count // 3, d_count))
            cx, cy, cyaw = _ego_box(dense[b, n, i])
            return n, i, (cx, cy, cyaw), _rect(cx, cy, cyaw, EGO.length, EGO.width)

        # obstacle cells at a target gap from an ego box, in a frame bracketing that step
        for _ in range(2):
            n, i, (cx, cy, cyaw), ego = pick()
            target = rng.uniform(-0.3, 0.25)
            ang = rng.uniform(-math.pi, math.pi)
            r = 0.5 * math.hypot(EGO.length, EGO.width) * rng.uniform(0.5, 1.0) + 0.5
            px, py = cx + r * math.cos(ang), cy + r * math.sin(ang)
            bx, by = int((px - lower[0]) / voxel[0]), int((py - lower[1]) / voxel[1])
            cand = [
                (ix, iy)
                for ix in range(bx - 3, bx + 4)
                for iy in range(by - 3, by + 4)
                if 0 <= ix < nx and 0 <= iy < ny
            ]
            best = None
            if cand:
                ci = np.asarray(cand, dtype=float)
                cells = shapely.box(
                    lower[0] + ci[:, 0] * voxel[0],
                    lower[1] + ci[:, 1] * voxel[1],
                    lower[0] + (ci[:, 0] + 1) * voxel[0],
                    lower[1] + (ci[:, 1] + 1) * voxel[1],
                )
                gap = shapely.distance(cells, ego) if target > 0 else -shapely.area(shapely.intersection(cells, ego))
                j = int(np.argmin(np.abs(gap - max(target, -0.25 * voxel[0] * voxel[1]))))
                best = (cand[j][0], cand[j][1], cells[j])
            if best is None:
                continue
            ix, iy, cell = best
            frame = min(max((i + 1) // DENSE_PER_STEP - 1 + int(rng.integers(2)), 0), t_count - 1)
            plans = range(n_obst) if rng.random() < 0.5 or n_obst == 1 else [n]
            for m in plans:
                obstacle[b, m, frame, ix, iy] = rng.uniform(0.4, 0.95)
            gaps.append(cell.distance(ego))
        # agent modes at a target gap along an ego axis, moving at constant velocity through that pose
        for a in range(a_count):
            ped = rng.random() < 0.3
            length, width = (0.6, 0.6) if ped else (rng.uniform(3.8, 5.5), rng.uniform(1.7, 2.2))
            sizes[b, a] = (length, width, 1.7)
            for k in range(k_count):
                n, i, (cx, cy, cyaw), ego = pick()
                delta = float(rng.choice([0.0, 0.5 * math.pi, math.pi, -0.5 * math.pi])) + rng.normal(0.0, 0.08)
                ayaw = cyaw + delta
                ext_x = abs(0.5 * length * math.cos(delta)) + abs(0.5 * width * math.sin(delta))
                ext_y = abs(0.5 * length * math.sin(delta)) + abs(0.5 * width * math.cos(delta))
                g = rng.uniform(-0.2, 0.3)
                if rng.random() < 0.5:  # beside the ego
                    side = rng.choice([-1.0, 1.0])
                    lx, ly = rng.uniform(-0.5 * EGO.length, 0.5 * EGO.length), side * (0.5 * EGO.width + ext_y + g)
                else:  # ahead or behind
                    side = rng.choice([-1.0, 1.0])
                    lx, ly = side * (0.5 * EGO.length + ext_x + g), rng.uniform(-0.5 * EGO.width, 0.5 * EGO.width)
                ax = cx + math.cos(cyaw) * lx - math.sin(cyaw) * ly
                ay = cy + math.sin(cyaw) * lx + math.cos(cyaw) * ly
                gaps.append(_rect(ax, ay, ayaw, length, width).distance(ego))
                speed = rng.uniform(0.0, 1.0 if ped else 3.0)
                vx, vy = speed * math.cos(ayaw), speed * math.sin(ayaw)
                t_star = (i + 1) * DENSE_DT
                trajs[b, :, a, k, :, 0] = ax + vx * (frame_t - t_star)
                trajs[b, :, a, k, :, 1] = ay + vy * (frame_t - t_star)
                trajs[b, :, a, k, :, 2] = math.atan2(math.sin(ayaw), math.cos(ayaw))
        # non-drivable cells at ego corners
        for _ in range(2):
            n, i, (cx, cy, cyaw), ego = pick()
            corner = np.asarray(ego.exterior.coords[int(rng.integers(4))]) + rng.uniform(-0.4, 0.4, 2)
            ix, iy = (
                math.floor((corner[0] - lower[0]) / voxel[0]),
                math.floor((corner[1] - lower[1]) / voxel[1]),
            )
            if 0 <= ix < nx and 0 <= iy < ny:
                drivable[b, ix, iy] = rng.uniform(0.0, 0.55)
    mode_p = rng.dirichlet(np.ones(k_count), (b_count, a_count))
    light = rng.dirichlet(np.ones(3), b_count)
    light_d = EGO.front_overhang + rng.uniform(-1.0, 25.0, b_count)
    f32 = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    dense_t = f32(dense)
    proposals = Proposals(
        plans=coarse_from_dense(dense_t),
        dense=dense_t,
        speed0=f32(speed0),
        source=torch.ones(b_count, n_count, dtype=torch.int64),
        feasible=torch.as_tensor(rng.random((b_count, n_count)) < 0.95),
    )
    prediction = Prediction(
        grid=grid,
        obstacle_prob=f32(obstacle).expand(b_count, n_count, t_count, nx, ny),
        drivable_prob=f32(drivable),
        light_probs=f32(light),
        light_distance=f32(light_d),
        agent_trajs=f32(trajs),
        agent_mode_probs=f32(mode_p)[:, None].expand(b_count, n_count, a_count, k_count).contiguous(),
        agent_valid=torch.as_tensor(rng.random((b_count, a_count)) < 0.9),
        agent_size=f32(sizes),
        agent_cls=torch.zeros(b_count, a_count, dtype=torch.int64),
    ).validate(finite=False)  # shapes only: values are finite by construction
    route = f32(routes)
    return SyntheticScenes(
        proposals, prediction, route, torch.ones(route.shape[:2], dtype=torch.bool), np.asarray(gaps)
    )
