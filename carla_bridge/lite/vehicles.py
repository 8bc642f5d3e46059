"""Background vehicles: lane following with IDM toward whatever occupies their path (other vehicles,
the ego — also its predicted footprint —, pedestrians, static objects), stopping at red lights and
stop signs (full stop, then go), yielding at junction entries. Vectorized over `[W, N]`; no Python
loop over worlds or agents.
"""

from __future__ import annotations

import torch
from torch import Tensor

from agents.idm import idm_acceleration
from carla_bridge.lite.geometry import point_box_distance, point_box_distance_paired
from carla_bridge.lite.lights import RED, YELLOW
from carla_bridge.lite.map_data import MapData

_HASH_A = 1103515245
_HASH_B = 2654435761
_HASH_M = 2**31 - 1


def hash_choice(key: Tensor, counter: Tensor, salt: int, n: Tensor) -> Tensor:
    """Deterministic pseudo-random index in [0, n) from integer `key`, `counter` (no RNG state, so
    snapshots and branches reproduce the same choices). All `[...]` int64; n ≥ 1."""
    h = (key * _HASH_A + counter * _HASH_B + salt * 97 + 12345) % _HASH_M
    h = (h ^ (h >> 13)) * 1274126177 % _HASH_M
    return h % n.clamp(min=1)


_NOT_SELF: dict[tuple[int, int, str], Tensor] = {}


def _not_self(n: int, m: int, device: torch.device) -> Tensor:
    """`[N, M]` bool, False where obstacle m is vehicle n itself (cached per shape)."""
    key = (n, m, str(device))
    if key not in _NOT_SELF:
        mask = torch.ones(n, m, dtype=torch.bool, device=device)
        mask[:, :n] = ~torch.eye(n, dtype=torch.bool, device=device)
        _NOT_SELF[key] = mask
    return _NOT_SELF[key]


def choose_successor(md: MapData, lane: Tensor, key: Tensor, counter: Tensor) -> Tensor:
    """A successor of `lane` (hash-chosen), -1 at dead ends. `[...]` int64."""
    n = md.num_successors[lane]
    idx = hash_choice(key, counter, 1, n)
    nxt = md.successors[lane, idx]
    return torch.where(n > 0, nxt, torch.full_like(nxt, -1))


def vehicle_poses(md: MapData, lane: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Box-centre (xy `[..., 2]`, yaw, z) of vehicles at `(lane, s)`."""
    return md.interp(lane, s)


def vehicle_step(
    md: MapData,
    v: dict[str, Tensor],
    obstacles: Tensor,
    obstacle_vel: Tensor,
    obstacle_valid: Tensor,
    lights: Tensor,
    ego_xy: Tensor,
    cfg,
    ego_sweep: Tensor | None = None,
) -> dict[str, Tensor]:
    """Advance all background vehicles one step.

    Args:
        md: map tensors.
        v: vehicle fields (`[W, N]` unless noted): lane, s (box centre arc length), speed,
            factor (share of the speed limit), next, key, trans (lane transitions), stop_done, still,
            size `[W, N, 3]`, valid.
        obstacles: `[W, M, 5]` boxes; the first N rows are these vehicles themselves.
        obstacle_vel: `[W, M, 2]` world velocities.
        obstacle_valid: `[W, M]`.
        lights: `[W, H]` head states.
        ego_xy: `[W, 2]` ego position (stuck vehicles far from it are respawned).
        cfg: `LiteConfig`.
        ego_sweep: `[W, S, 5]` the ego's box and its predicted boxes over the next seconds; a
            vehicle about to enter a junction yields (stops at the entry) while the sweep crosses
            the junction part of its path, unless the ego is behind it. None: no junction yield to the ego.

    Returns:
        The updated vehicle fields (new dict).
    """
    lane, s, spd = v["lane"], v["s"], v["speed"]
    nxt = v["next"]
    W, N = lane.shape
    dev = s.device
    half_len = 0.5 * v["size"][..., 0]
    half_w = 0.5 * v["size"][..., 1]
    lane_len = md.length[lane]
    has_next = nxt >= 0
    nxt_safe = nxt.clamp(min=0)

    # --- path points ahead of the front bumper ---------------------------------------------
    K, step = cfg.lookahead_points, cfg.lookahead_step
    d = step * torch.arange(1, K + 1, device=dev, dtype=torch.float32)  # [K]
    path_s = (s + half_len)[..., None] + d  # [W, N, K]
    beyond = path_s > lane_len[..., None]
    on_next = beyond & has_next[..., None]
    path_lane = torch.where(on_next, nxt_safe[..., None].expand_as(path_s), lane[..., None].expand_as(path_s))
    path_s2 = torch.where(on_next, path_s - lane_len[..., None], torch.minimum(path_s, lane_len[..., None]))
    pxy, pyaw, _ = md.interp(path_lane, path_s2, with_z=False)  # [W, N, K, 2], [W, N, K]
    dead_end = beyond & ~has_next[..., None]

    # --- obstacles on the path -------------------------------------------------------------
    # pre-select the C obstacles nearest to each vehicle's path (ranked by distance to its path
    # points, coarse), then test the path points against those boxes exactly
    M_all = obstacles.shape[1]
    not_self = _not_self(N, M_all, dev)
    usable = obstacle_valid[:, None, :] & not_self[None]  # [W, N, M]
    coarse = pxy[:, :, :: max(1, K // 5)]  # [W, N, K', 2]
    dc = (coarse[:, :, :, None, :] - obstacles[:, None, None, :, :2]).norm(dim=-1).amin(2)  # [W, N, M]
    dc = torch.where(usable, dc - 0.5 * obstacles[:, None, :, 3], torch.full_like(dc, 1e9))
    C = min(cfg.obstacle_candidates, M_all)
    rank_d, cand = dc.topk(C, dim=-1, largest=False)  # [W, N, C]
    cboxes = obstacles.gather(1, cand.reshape(W, N * C, 1).expand(W, N * C, 5)).reshape(W, N, C, 5)
    cvel = obstacle_vel.gather(1, cand.reshape(W, N * C, 1).expand(W, N * C, 2)).reshape(W, N, C, 2)
    dist = point_box_distance_paired(pxy, cboxes)  # [W, N, K, C]
    M = C
    on_path = (dist < (half_w + cfg.clearance_margin)[..., None, None]) & (rank_d < 1e8)[:, :, None, :]
    hit_k = on_path.any(-1)  # [W, N, K]
    any_hit = hit_k.any(-1)
    first = torch.where(any_hit, hit_k.float().argmax(-1), torch.full_like(lane, K))  # [W, N]
    gap_agent = torch.where(any_hit, (first.float() + 0.5) * step - step, torch.full_like(s, float("inf")))
    gap_agent = gap_agent.clamp(min=0.0)
    fk = first.clamp(max=K - 1)
    dist_k = dist.gather(2, fk[:, :, None, None].expand(W, N, 1, M)).squeeze(2)  # [W, N, M]
    dist_k = torch.where(on_path.gather(2, fk[:, :, None, None].expand(W, N, 1, M)).squeeze(2), dist_k, 1e9)
    lead = dist_k.argmin(-1)  # [W, N]
    lead_vel = cvel.gather(2, lead[..., None, None].expand(W, N, 1, 2)).squeeze(2)  # [W, N, 2]
    yaw_k = pyaw.gather(2, fk[..., None]).squeeze(-1)
    lead_v = (lead_vel[..., 0] * torch.cos(yaw_k) + lead_vel[..., 1] * torch.sin(yaw_k)).clamp(min=0.0)
    # the path point where the obstacle sits, and the lane it lies on
    hit_lane = path_lane.gather(2, fk[..., None]).squeeze(-1)

    # --- stop lines: lights, stop signs, junction yield ------------------------------------
    front = s + half_len
    inf = torch.full_like(s, float("inf"))
    to_end = lane_len - front
    stop_gap = inf.clone()
    # lights on the current lane and the next one
    for lane_q, base, exists in ((lane, -s - half_len, v["valid"]), (nxt_safe, to_end, has_next)):
        h = md.lane_head[lane_q]
        valid_q = (h >= 0) & exists
        if md.num_heads:
            st = lights.gather(1, h.clamp(min=0))
        else:
            st = torch.full_like(h, 2)
        line = md.lane_light_s[lane_q] + base
        brake_dist = spd * spd / (2.0 * 4.0)
        must = (st == RED) | ((st == YELLOW) & (line > brake_dist))
        applies = valid_q & must & (line > -1.0)
        stop_gap = torch.where(applies, torch.minimum(stop_gap, line), stop_gap)
    # stop signs (full stop on the current lane, then go)
    sign_cur = md.lane_stop_s[lane] - front
    sign_applies = torch.isfinite(sign_cur) & (sign_cur > -1.0) & ~v["stop_done"]
    stop_gap = torch.where(sign_applies, torch.minimum(stop_gap, sign_cur), stop_gap)
    sign_next = md.lane_stop_s[nxt_safe] + to_end
    sign_next_ok = has_next & torch.isfinite(sign_next)
    stop_gap = torch.where(sign_next_ok, torch.minimum(stop_gap, sign_next), stop_gap)
    stop_done = v["stop_done"] | (torch.isfinite(sign_cur) & (sign_cur < 3.0) & (spd < 0.1))
    # junction yield: about to enter a junction whose path is occupied, or a conflicting lane is in use
    entering = has_next & md.is_junction[nxt_safe] & ~md.is_junction[lane]
    near_entry = entering & (to_end < cfg.yield_distance) & (to_end > -0.5)
    blocked_inside = any_hit & (hit_lane == nxt_safe) & md.is_junction[hit_lane]
    in_junction = md.is_junction[lane] & v["valid"]  # [W, N]
    conf = md.conflict[nxt_safe[:, :, None], lane[:, None, :]]  # [W, N, N]
    conflict_busy = (conf & in_junction[:, None, :]).any(-1)
    # a vehicle that has waited long at the entry stops yielding to conflicts (deadlock breaker;
    # whatever physically occupies its path still stops it)
    if ego_sweep is not None:
        conflict_busy = conflict_busy | _ego_crosses_junction(
            pxy, path_lane, nxt_safe, md, ego_sweep, v["xy"], v["yaw"], half_w + cfg.clearance_margin
        )
    must_yield = near_entry & (blocked_inside | (conflict_busy & (v["still"] < cfg.yield_patience)))
    stop_gap = torch.where(must_yield, torch.minimum(stop_gap, to_end), stop_gap)

    # --- desired speed (speed limit share, curve limit) ------------------------------------
    v0 = v["factor"] * md.speed_limit[lane]
    dyaw = torch.atan2(torch.sin(pyaw[..., 1:] - pyaw[..., :-1]), torch.cos(pyaw[..., 1:] - pyaw[..., :-1]))
    curv = (dyaw.abs() / step)[..., : max(1, K // 2)].amax(-1)  # [W, N]
    v_curve = torch.sqrt(cfg.lat_accel / curv.clamp(min=1e-4))
    v0 = torch.minimum(v0, v_curve)
    # dead end ahead: stop at the lane end (vehicle is respawned there)
    end_gap = torch.where(dead_end.any(-1), to_end + 1.0, inf)

    acc_agent = idm_acceleration(spd, v0, gap_agent, lead_v, cfg.idm)
    acc_stop = idm_acceleration(spd, v0, torch.minimum(stop_gap + 1.0, end_gap), torch.zeros_like(spd), cfg.idm)
    acc = torch.minimum(acc_agent, acc_stop)
    new_v = (spd + acc * cfg.dt).clamp(min=0.0)
    new_v = torch.where(v["valid"], new_v, torch.zeros_like(new_v))
    new_s = s + new_v * cfg.dt

    # --- lane transitions -------------------------------------------------------------------
    over = (new_s > lane_len) & has_next
    trans = v["trans"] + over.long()
    new_lane = torch.where(over, nxt_safe, lane)
    new_s = torch.where(over, new_s - lane_len, new_s)
    chosen = choose_successor(md, new_lane, v["key"], trans)
    new_next = torch.where(over, chosen, nxt)
    stop_done = torch.where(over, torch.zeros_like(stop_done), stop_done)
    new_s = torch.minimum(new_s, md.length[new_lane])

    still = torch.where(new_v < 0.1, v["still"] + cfg.dt, torch.zeros_like(v["still"]))
    out = dict(v)
    out.update(lane=new_lane, s=new_s, speed=new_v, next=new_next, trans=trans, stop_done=stop_done, still=still)
    # --- respawn: dead ends and long-stuck vehicles far from the ego --------------------------
    xy, yaw, z = md.interp(new_lane, new_s)
    out.update(xy=xy, yaw=yaw, z=z)
    far = (xy - ego_xy[:, None, :]).norm(dim=-1) > 40.0
    at_dead_end = (~has_next) & (new_s >= md.length[new_lane] - half_len - 0.5)
    need = v["valid"] & ((far & (at_dead_end | (still > cfg.stuck_respawn))) | (still > 3.0 * cfg.stuck_respawn))
    if bool(need.any()):
        out = _respawn(md, out, need, xy, ego_xy)
        out["xy"], out["yaw"], out["z"] = md.interp(out["lane"], out["s"])
    return out


def _ego_crosses_junction(
    pxy: Tensor,
    path_lane: Tensor,
    nxt: Tensor,
    md: MapData,
    ego_sweep: Tensor,
    xy: Tensor,
    yaw: Tensor,
    reach: Tensor,
) -> Tensor:
    """`[W, N]` bool: the ego's sweep `[W, S, 5]` touches (within `reach [W, N]`) the junction part
    of a vehicle's path (path points `pxy [W, N, K, 2]` on the next lane `nxt [W, N]` when it is a
    junction lane) and the ego is not behind the vehicle (its centre ahead of the vehicle's)."""
    in_junction = (path_lane == nxt[..., None]) & md.is_junction[path_lane]  # [W, N, K]
    d = point_box_distance(pxy, ego_sweep)  # [W, N, K, S]
    touch = ((d.amin(-1) < reach[..., None]) & in_junction).any(-1)
    rel = ego_sweep[:, None, 0, :2] - xy  # [W, N, 2]
    ahead = rel[..., 0] * torch.cos(yaw) + rel[..., 1] * torch.sin(yaw) > 0.0
    return touch & ahead


def _respawn(md: MapData, v: dict[str, Tensor], need: Tensor, xy: Tensor, ego_xy: Tensor) -> dict[str, Tensor]:
    """Move the `need` vehicles `[W, N]` to free spawn points (4 hash-chosen candidates each)."""
    P = md.spawn.shape[0]
    C = 4
    salt = torch.arange(C, device=need.device)
    cand = hash_choice(
        v["key"][..., None], v["trans"][..., None] * 7 + salt, 3, torch.full_like(v["key"][..., None], P)
    )
    cxy = md.spawn[cand, :2]  # [W, N, C, 2]
    d_veh = (cxy[:, :, :, None, :] - xy[:, None, None, :, :]).norm(dim=-1)  # [W, N, C, N]
    d_veh = torch.where(v["valid"][:, None, None, :], d_veh, torch.full_like(d_veh, 1e9)).amin(-1)
    d_ego = (cxy - ego_xy[:, None, None, :]).norm(dim=-1)
    ok = (d_veh > 12.0) & (d_ego > 40.0)
    has = ok.any(-1)
    pick = cand.gather(2, ok.float().argmax(-1, keepdim=True)).squeeze(-1)  # [W, N]
    go = need & has
    lane = torch.where(go, md.spawn[pick, 3].long(), v["lane"])
    s = torch.where(go, md.spawn_s[pick], v["s"])
    trans = v["trans"] + go.long()
    nxt = torch.where(go, choose_successor(md, lane, v["key"], trans), v["next"])
    out = dict(v)
    out.update(
        lane=lane,
        s=s,
        trans=trans,
        next=nxt,
        speed=torch.where(go, torch.zeros_like(v["speed"]), v["speed"]),
        still=torch.where(go, torch.zeros_like(v["still"]), v["still"]),
        stop_done=torch.where(go, torch.zeros_like(v["stop_done"]), v["stop_done"]),
    )
    return out
