"""Seeded population of a lite world at reset: background vehicles, pedestrians, parked cars and
road-edge props (numpy RNG; the step itself never draws random numbers)."""

from __future__ import annotations

import math

import numpy as np

from agents import AgentClass
from carla_bridge.lite.pedestrians import _offroad, build_pedestrian_paths, path_cumulative

# class, (length, width, height), share
VEHICLE_TYPES = [
    (AgentClass.CAR, (4.6, 1.9, 1.5), 0.82),
    (AgentClass.TRUCK, (6.5, 2.3, 2.8), 0.10),
    (AgentClass.BUS, (10.5, 2.6, 3.2), 0.03),
    (AgentClass.MOTORCYCLE, (2.1, 0.8, 1.5), 0.05),
]
PED_SIZE = (0.6, 0.6, 1.75)
PROP_TYPES = [(AgentClass.TRAFFIC_CONE, (0.4, 0.4, 0.7)), (AgentClass.BARRIER, (0.5, 2.0, 1.0))]


def _near_route(points: np.ndarray, route_xy: np.ndarray | None, radius: float | None) -> np.ndarray:
    if route_xy is None or radius is None:
        return np.ones(len(points), dtype=bool)
    sub = route_xy[:: max(1, len(route_xy) // 400)]
    d = np.linalg.norm(points[:, None, :2] - sub[None], axis=-1).min(1)
    return d < radius


def populate(town, md, cfg, rng: np.random.Generator, route_xy: np.ndarray | None, ego_xy: np.ndarray) -> dict:
    """Sample the agents of one world.

    Returns:
        numpy arrays: veh_lane/veh_s/veh_speed/veh_factor/veh_key/veh_size/veh_cls/veh_color `[N, ...]`,
        ped_path `[P, 4, 2]`, ped_cum `[P, 4]`, ped_road `[P, 3]`, ped_u/ped_dir/ped_v0 `[P]`,
        static_box `[S, 5]`, static_h `[S]`, static_cls `[S]`, static_parked `[S]` (parked cars, not props).
    """
    spawn = md.lanes.spawn
    spawn_s = md.lanes.spawn_s
    ok = _near_route(spawn, route_xy, cfg.spawn_radius)
    ok &= np.linalg.norm(spawn[:, :2] - ego_xy[None], axis=1) > cfg.ego_clearance
    idx = np.flatnonzero(ok)
    if len(idx) < cfg.num_vehicles:
        extra = np.flatnonzero(~ok & (np.linalg.norm(spawn[:, :2] - ego_xy[None], axis=1) > cfg.ego_clearance))
        idx = np.concatenate([idx, rng.permutation(extra)[: cfg.num_vehicles - len(idx)]])
    if len(idx) < cfg.num_vehicles:
        raise ValueError(
            f"town {town.name} has only {len(idx)} free spawn points for num_vehicles={cfg.num_vehicles}; lower it"
        )
    pick = rng.permutation(idx)[: cfg.num_vehicles]
    n = len(pick)
    shares = np.array([t[2] for t in VEHICLE_TYPES])
    kinds = rng.choice(len(VEHICLE_TYPES), size=n, p=shares / shares.sum())
    out = {
        "veh_lane": spawn[pick, 3].astype(np.int64),
        "veh_s": spawn_s[pick],
        "veh_factor": rng.uniform(0.7, 1.0, size=n),
        "veh_key": rng.integers(1, 2**30, size=n),
        "veh_size": np.array([VEHICLE_TYPES[k][1] for k in kinds]).reshape(n, 3),
        "veh_cls": np.array([int(VEHICLE_TYPES[k][0]) for k in kinds], dtype=np.int64),
        "veh_color": rng.integers(20, 235, size=(n, 3)),
    }
    out["veh_speed"] = out["veh_factor"] * md.lanes.speed_limit[out["veh_lane"]] * rng.uniform(0.0, 0.8, n)

    centre = ego_xy if route_xy is None else route_xy[len(route_xy) // 2]
    radius = None if cfg.spawn_radius is None else cfg.spawn_radius + (0 if route_xy is None else _half_span(route_xy))
    paths, road = build_pedestrian_paths(
        town, rng, cfg.num_pedestrians, centre, radius, cfg.pedestrian_cross_prob, cfg.jaywalk_prob
    )
    cum = path_cumulative(paths) if len(paths) else np.zeros((0, 4))
    out.update(
        ped_path=paths,
        ped_road=road,
        ped_cum=cum,
        ped_u=rng.uniform(0.0, 1.0, size=len(paths)) * (cum[:, -1] if len(paths) else 0.0) * 0.3,
        ped_dir=np.ones(len(paths)),
        ped_v0=rng.uniform(1.0, 1.6, size=len(paths)),
    )

    boxes, heights, classes, parked = [], [], [], []
    lanes = [ln for ln in town.lanes if not ln.is_junction and ln.length > 15.0]
    if route_xy is not None and cfg.spawn_radius is not None:
        near = [ln for ln in lanes if _near_route(ln.points[::5], route_xy, cfg.spawn_radius).any()]
        lanes = near or lanes
    want = cfg.num_parked + cfg.num_props
    tries = 0
    while len(boxes) < want and tries < 20 * max(want, 1):
        tries += 1
        i = len(boxes)
        ln = lanes[int(rng.integers(len(lanes)))]
        s = rng.uniform(3.0, ln.length - 3.0)
        xy, yaw = ln.interpolate(np.array([s]))
        h = float(yaw[0])
        right = np.array([math.sin(h), -math.cos(h)])
        if i < cfg.num_parked:
            cls, size = AgentClass.CAR, (4.5, 1.9, 1.5)
        else:
            cls, size = PROP_TYPES[int(rng.integers(len(PROP_TYPES)))]
        off = 0.5 * ln.width + 0.5 * size[1] + 0.4
        c = xy[0] + off * right
        if np.linalg.norm(c - ego_xy) < cfg.ego_clearance:
            continue
        if not _offroad(town, c[None], 0.5 * size[1] - 0.1)[0]:
            continue  # that road edge is another driving lane: parked cars and props stay off lanes
        boxes.append([c[0], c[1], h, size[0], size[1]])
        heights.append(size[2])
        classes.append(int(cls))
        parked.append(i < cfg.num_parked)
    out.update(
        static_box=np.array(boxes, dtype=np.float64).reshape(-1, 5),
        static_h=np.array(heights, dtype=np.float64),
        static_cls=np.array(classes, dtype=np.int64),
        static_parked=np.array(parked, dtype=bool),
    )
    return out


def _half_span(route_xy: np.ndarray) -> float:
    c = route_xy[len(route_xy) // 2]
    return float(np.linalg.norm(route_xy - c[None], axis=1).max())
