"""An independent reference for the scorer's hard gates, written plainly: shapely polygons, one
plan and one dense step at a time, numpy for the rest. It shares no geometry code with
`planner.scorer` (own corners, own time interpolation, shapely for every overlap/projection) and
defines each gate exactly as the `planner.scorer` module docstring states. Slow on purpose; used
by tests and `bench/bench_scorer.py` to check that the vectorized scorer makes the same decisions.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from agents import EGO
from planner.contracts import LightState, Prediction
from planner.proposals import Proposals
from planner.scorer import Gate, ScorerConfig
from planner.timebase import DENSE_DT, STEP_SECONDS


def _np(t) -> np.ndarray:
    """float64 numpy copy; a plan dim (dim 1) broadcast with stride 0 stays size 1."""
    if t.dim() > 1 and t.shape[1] > 1 and t.stride(1) == 0:
        t = t[:, :1]
    return t.detach().cpu().double().numpy()


def _wrap(a: float) -> float:
    r = math.fmod(a + math.pi, 2 * math.pi)
    if r <= 0:
        r += 2 * math.pi
    return r - math.pi


def _rect(cx: float, cy: float, yaw: float, length: float, width: float) -> Polygon:
    c, s = math.cos(yaw), math.sin(yaw)
    pts = []
    for sl, sw in ((1, -1), (1, 1), (-1, 1), (-1, -1)):
        lx, ly = 0.5 * length * sl, 0.5 * width * sw
        pts.append((cx + c * lx - s * ly, cy + s * lx + c * ly))
    return Polygon(pts)


def _ego_polygon(x: float, y: float, yaw: float) -> Polygon:
    off = EGO.rear_axle_to_center
    return _rect(x + off * math.cos(yaw), y + off * math.sin(yaw), yaw, EGO.length, EGO.width)


def _cells_union(mask: np.ndarray, lower: tuple[float, float], voxel: tuple[float, float]):
    """Union of the cell squares where `mask [X, Y]` is True (None if empty)."""
    ix, iy = np.nonzero(mask)
    if len(ix) == 0:
        return None
    cells = [
        box(
            lower[0] + i * voxel[0],
            lower[1] + j * voxel[1],
            lower[0] + (i + 1) * voxel[0],
            lower[1] + (j + 1) * voxel[1],
        )
        for i, j in zip(ix.tolist(), iy.tolist())
    ]
    union = shapely.union_all(cells)
    shapely.prepare(union)
    return union


def _agent_pose(traj: np.ndarray, t: float) -> tuple[float, float, float]:
    """Pose of a `[T, 3]` trajectory (frames at 0.5·(1..T) s) at time t: linear between frames,
    extrapolated from the first two before the first frame."""
    n = traj.shape[0]
    if n == 1:
        return float(traj[0, 0]), float(traj[0, 1]), float(traj[0, 2])
    q = t / STEP_SECONDS - 1.0
    f = min(max(math.floor(q + 1e-9), 0), n - 2)
    u = q - f
    a, b = traj[f], traj[f + 1]
    return (
        float(a[0] + u * (b[0] - a[0])),
        float(a[1] + u * (b[1] - a[1])),
        _wrap(float(a[2] + u * _wrap(float(b[2] - a[2])))),
    )


def _reference_inputs(proposals: Proposals, prediction: Prediction, route, route_valid) -> tuple:
    """The scorer's inputs as float64/bool numpy arrays (the obstacle grid stays a tensor: it is converted one
    scene at a time, being the big one): dense, feasible, obstacle_t, drivable, trajs, mode_p, valid, size,
    light_p, light_d, route, route_valid."""
    return (
        proposals.dense.detach().cpu().double().numpy(),
        proposals.feasible.cpu().numpy(),
        prediction.obstacle_prob,
        prediction.drivable_prob.detach().cpu().double().numpy(),
        _np(prediction.agent_trajs),
        _np(prediction.agent_mode_probs),
        prediction.agent_valid.cpu().numpy(),
        prediction.agent_size.detach().cpu().double().numpy(),
        prediction.light_probs.detach().cpu().double().numpy(),
        prediction.light_distance.detach().cpu().double().numpy(),
        np.asarray(route.cpu() if hasattr(route, "cpu") else route, dtype=np.float64),
        np.asarray(route_valid.cpu() if hasattr(route_valid, "cpu") else route_valid, dtype=bool),
    )


def _reference_setup(proposals, prediction, route, route_valid):
    """`_reference_inputs` and the BEV grid's (lower, upper, voxel) corners in x, y."""
    grid = prediction.grid
    inputs = _reference_inputs(proposals, prediction, route, route_valid)
    return inputs, (grid.lower[:2], grid.upper[:2], grid.voxel[:2])


def reference_gates(
    proposals: Proposals,
    prediction: Prediction,
    route: np.ndarray | object,
    route_valid: np.ndarray | object,
    cfg: ScorerConfig | None = None,
) -> np.ndarray:
    """Hard gates of every plan, one plan and one step at a time.

    Args: as `planner.scorer.score_plans`.

    Returns:
        `[B, len(Gate), N]` bool (True = passes).
    """
    cfg = cfg or ScorerConfig()
    (dense, feasible, obstacle_t, drivable, trajs, mode_p, valid, size, light_p, light_d, route, route_valid), box = (
        _reference_setup(proposals, prediction, route, route_valid)
    )
    lower, upper, voxel = box
    b_count, n_count, d_count = dense.shape[:3]
    t_count = obstacle_t.shape[2]
    out = np.zeros((b_count, len(Gate), n_count), dtype=bool)
    for b in range(b_count):
        obstacle = _np(obstacle_t[b : b + 1])
        arrays = (obstacle[0], drivable[b], trajs[b], mode_p[b], size[b], light_p[b])
        if not all(np.isfinite(a).all() for a in arrays) or np.isnan(light_d[b]):
            continue  # a non-finite prediction fails every gate
        off_road_cells = _cells_union(drivable[b] < cfg.drivable_threshold, lower, voxel)
        line = LineString(route[b][route_valid[b]])
        s0 = line.project(Point(0.0, 0.0))
        red = light_p[b, LightState.RED] >= cfg.red_threshold and light_d[b] >= EGO.front_overhang
        unions: dict[tuple[int, int], object] = {}
        for n in range(n_count):
            n_pred = n if obstacle.shape[1] > 1 else 0
            n_agents = n if trajs.shape[1] > 1 else 0
            hit = np.zeros(trajs.shape[2:4], dtype=bool)  # [A, K] a mode has hit so far
            collides = off_road = False
            max_progress = -math.inf
            for i in range(d_count):
                x, y, yaw = (float(v) for v in dense[b, n, i])
                t = (i + 1) * DENSE_DT
                poly = _ego_polygon(x, y, yaw)
                # obstacle cells of the predicted frames bracketing t
                frames = (
                    set()
                    if collides
                    else {min(max((i + 1) // 5 - 1, 0), t_count - 1), min(max(-(-(i + 1) // 5) - 1, 0), t_count - 1)}
                )
                for f in frames:
                    key = (n_pred, f)
                    if key not in unions:
                        unions[key] = _cells_union(obstacle[0, n_pred, f] >= cfg.obstacle_threshold, lower, voxel)
                    if unions[key] is not None and poly.intersects(unions[key]):
                        collides = True
                # agent modes
                for a in range(0 if collides else trajs.shape[2]):
                    if not valid[b, a]:
                        continue
                    for k in range(trajs.shape[3]):
                        if hit[a, k]:
                            continue
                        ax, ay, ayaw = _agent_pose(trajs[b, n_agents, a, k], t)
                        if poly.intersects(_rect(ax, ay, ayaw, size[b, a, 0], size[b, a, 1])):
                            hit[a, k] = True
                    if (mode_p[b, n if mode_p.shape[1] > 1 else 0, a] * hit[a]).sum() >= cfg.agent_threshold:
                        collides = True
                # drivable: corners inside the grid must not lie on a non-drivable cell
                if off_road_cells is not None and not off_road:
                    for cx, cy in list(poly.exterior.coords)[:4]:
                        if (
                            lower[0] <= cx < upper[0]
                            and lower[1] <= cy < upper[1]
                            and off_road_cells.intersects(Point(cx, cy))
                        ):
                            off_road = True
                max_progress = max(max_progress, line.project(Point(x, y)) - s0)
            out[b, Gate.FEASIBLE, n] = bool(feasible[b, n])
            out[b, Gate.NO_COLLISION, n] = not collides
            out[b, Gate.DRIVABLE, n] = not off_road
            out[b, Gate.NO_RED_LIGHT, n] = not (red and max_progress + EGO.front_overhang > light_d[b])
    return out


def _rect_coords(cx: np.ndarray, cy: np.ndarray, yaw: np.ndarray, length, width) -> np.ndarray:
    """Corners `[..., 4, 2]` (front-right, front-left, rear-left, rear-right) with numpy."""
    c, s = np.cos(yaw)[..., None], np.sin(yaw)[..., None]
    sl = np.array([1.0, 1.0, -1.0, -1.0])
    sw = np.array([-1.0, 1.0, 1.0, -1.0])
    lx = 0.5 * np.asarray(length)[..., None] * sl
    ly = 0.5 * np.asarray(width)[..., None] * sw
    return np.stack([cx[..., None] + c * lx - s * ly, cy[..., None] + s * lx + c * ly], -1)


def reference_gates_vectorized(
    proposals: Proposals,
    prediction: Prediction,
    route: np.ndarray | object,
    route_valid: np.ndarray | object,
    cfg: ScorerConfig | None = None,
) -> np.ndarray:
    """The same gates with shapely's array functions (`shapely.intersects` on polygon arrays), one
    scene at a time: the "vectorized shapely" baseline of the benchmark. Returns `[B, len(Gate), N]` bool."""
    cfg = cfg or ScorerConfig()
    (dense, feasible, obstacle_t, drivable, trajs, mode_p, valid, size, light_p, light_d, route, route_valid), box = (
        _reference_setup(proposals, prediction, route, route_valid)
    )
    lower, upper, voxel = box
    b_count, n_count, d_count = dense.shape[:3]
    t_count = obstacle_t.shape[2]
    steps = np.arange(1, d_count + 1)
    lo = np.clip(steps // 5 - 1, 0, t_count - 1)
    hi = np.clip(-(-steps // 5) - 1, 0, t_count - 1)
    times = steps * DENSE_DT
    out = np.zeros((b_count, len(Gate), n_count), dtype=bool)
    for b in range(b_count):
        obstacle = _np(obstacle_t[b : b + 1])
        arrays = (obstacle[0], drivable[b], trajs[b], mode_p[b], size[b], light_p[b])
        if not all(np.isfinite(a).all() for a in arrays) or np.isnan(light_d[b]):
            continue
        x, y, yaw = dense[b, ..., 0], dense[b, ..., 1], dense[b, ..., 2]  # [N, D]
        off = EGO.rear_axle_to_center
        corners = _rect_coords(x + off * np.cos(yaw), y + off * np.sin(yaw), yaw, EGO.length, EGO.width)
        ego = shapely.polygons(corners)  # [N, D]
        # obstacles: union of the cells ≥ threshold per (plan, frame)
        n_pred = obstacle.shape[1]
        unions = np.empty((n_pred, t_count), dtype=object)
        for m in range(n_pred):
            for f in range(t_count):
                u = _cells_union(obstacle[0, m, f] >= cfg.obstacle_threshold, lower, voxel)
                unions[m, f] = u if u is not None else shapely.Polygon()
        rows = np.arange(n_count) if n_pred > 1 else np.zeros(n_count, dtype=int)
        obst_hit = shapely.intersects(ego, unions[rows][:, lo]) | shapely.intersects(ego, unions[rows][:, hi])
        # agents: poses at the dense times, linear between frames
        tr = trajs[b]  # [N', A, K, T, 3]
        if t_count > 1:
            q = times / STEP_SECONDS - 1.0
            f = np.clip(np.floor(q + 1e-9).astype(int), 0, t_count - 2)
            u = q - f
            a0, a1 = tr[..., f, :], tr[..., f + 1, :]  # [N', A, K, D, 3]
            pos = a0[..., :2] + u[:, None] * (a1[..., :2] - a0[..., :2])
            dyaw = np.arctan2(np.sin(a1[..., 2] - a0[..., 2]), np.cos(a1[..., 2] - a0[..., 2]))
            ayaw = a0[..., 2] + u * dyaw
        else:
            pos = np.repeat(tr[..., :1, :2], d_count, -2)
            ayaw = np.repeat(tr[..., :1, 2], d_count, -1)
        a_count = tr.shape[1]
        if a_count and tr.shape[2]:
            length = np.broadcast_to(size[b, :, 0][None, :, None, None], ayaw.shape)
            width = np.broadcast_to(size[b, :, 1][None, :, None, None], ayaw.shape)
            agent_poly = shapely.polygons(_rect_coords(pos[..., 0], pos[..., 1], ayaw, length, width))
            hits = shapely.intersects(ego[:, None, None, :], agent_poly if tr.shape[0] > 1 else agent_poly[0][None])
            hits &= valid[b][None, :, None, None]  # [N, A, K, D]
            cum = np.maximum.accumulate(hits, axis=-1)
            mp = mode_p[b] if mode_p.shape[1] > 1 else np.broadcast_to(mode_p[b], (n_count, *mode_p.shape[2:]))
            expected = (cum * mp[..., None]).sum(2)  # [N, A, D]
            agent_hit = (expected >= cfg.agent_threshold).any(1)
        else:
            agent_hit = np.zeros((n_count, d_count), dtype=bool)
        collides = (obst_hit | agent_hit).any(-1)
        # drivable: corners inside the grid vs the non-drivable cells
        off_cells = _cells_union(drivable[b] < cfg.drivable_threshold, lower, voxel)
        if off_cells is None:
            off_road = np.zeros(n_count, dtype=bool)
        else:
            inside = (corners[..., 0] >= lower[0]) & (corners[..., 0] < upper[0])
            inside &= (corners[..., 1] >= lower[1]) & (corners[..., 1] < upper[1])
            off_road = (shapely.intersects(off_cells, shapely.points(corners)) & inside).any(axis=(1, 2))
        # red light: route progress by shapely's line_locate_point
        line = LineString(route[b][route_valid[b]])
        s0 = line.project(Point(0.0, 0.0))
        progress = shapely.line_locate_point(line, shapely.points(dense[b, ..., :2])) - s0  # [N, D]
        red = light_p[b, LightState.RED] >= cfg.red_threshold and light_d[b] >= EGO.front_overhang
        runs_red = red & (progress.max(-1) + EGO.front_overhang > light_d[b])
        out[b, Gate.FEASIBLE] = feasible[b]
        out[b, Gate.NO_COLLISION] = ~collides
        out[b, Gate.DRIVABLE] = ~off_road
        out[b, Gate.NO_RED_LIGHT] = ~runs_red
    return out
