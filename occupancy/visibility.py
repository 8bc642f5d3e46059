"""Visibility masks by ray casting through the voxel grid (Occ3D `mask_lidar` / `mask_camera`).

A ray observes every voxel it traverses before its hit (observed free space) and the voxel of the
hit itself (observed surface). `mask_camera` = voxels observed by any camera ray, `mask_lidar` = by
any lidar ray. Rays are sampled at a fixed step (default: half the smallest voxel edge), vectorized
over rays and samples, in chunks that bound memory; a voxel the ray only clips at a corner shorter
than the step may be missed, which is the usual sampling approximation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from occupancy.grid import GridSpec

__all__ = ["camera_rays", "lidar_rays", "ray_cast_mask", "ray_cast_observed"]

_CHUNK_SAMPLES = 4_000_000  # ray samples per chunk


def _check_rays(origins: Tensor, directions: Tensor, hit_range: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    origins = torch.as_tensor(origins, dtype=torch.float32)
    directions = torch.as_tensor(directions, dtype=torch.float32, device=origins.device)
    hit_range = torch.as_tensor(hit_range, dtype=torch.float32, device=origins.device)
    if directions.dim() != 2 or directions.shape[-1] != 3:
        raise ValueError(f"directions must have shape [R, 3], got {tuple(directions.shape)}")
    r = directions.shape[0]
    if origins.shape == (3,):
        origins = origins.expand(r, 3)
    if tuple(origins.shape) != (r, 3):
        raise ValueError(f"origins must have shape [R, 3] or [3], got {tuple(origins.shape)} for R = {r}")
    if tuple(hit_range.shape) != (r,):
        raise ValueError(f"hit_range must have shape [R] = [{r}], got {tuple(hit_range.shape)}")
    if not torch.isfinite(origins).all():
        raise ValueError("origins contain NaN or inf")
    if not torch.isfinite(directions).all():
        raise ValueError("directions contain NaN or inf")
    if torch.isnan(hit_range).any() or (hit_range < 0).any():
        raise ValueError("hit_range must be >= 0 (inf = no hit), found NaN or a negative value")
    norm = directions.norm(dim=-1)
    if r and ((norm - 1).abs() > 1e-3).any():
        raise ValueError("directions must be unit vectors")
    return origins, directions, hit_range


def _grid_span(grid: GridSpec, origins: Tensor, directions: Tensor) -> tuple[Tensor, Tensor]:
    """`[R]` distances (t_near, t_far) along each ray where it enters and leaves the grid's box
    (t_near >= 0; t_far < t_near when the ray never enters)."""
    lower = torch.tensor(grid.lower, dtype=torch.float32, device=origins.device)
    upper = torch.tensor(grid.upper, dtype=torch.float32, device=origins.device)
    safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    t0, t1 = (lower - origins) / safe, (upper - origins) / safe  # [R, 3]
    return torch.minimum(t0, t1).amax(-1).clamp(min=0), torch.maximum(t0, t1).amin(-1)


def ray_cast_observed(
    grid: GridSpec,
    origins: Tensor,
    directions: Tensor,
    hit_range: Tensor,
    max_range: float = 100.0,
    step: float | None = None,
) -> Tensor:
    """Voxels observed by rays.

    Args:
        grid: the voxel grid (rays are in its frame).
        origins: `[R, 3]` (or `[3]`, shared) ray origins [m].
        directions: `[R, 3]` unit directions.
        hit_range: `[R]` distance to the first surface [m]; inf = no hit up to `max_range`.
        max_range: rays are followed at most this far [m]; a hit beyond it is not observed.
        step: sampling step [m]; default half the smallest voxel edge.

    Returns:
        `[X, Y, Z]` bool, True for voxels traversed before the hit and the hit voxel.
    """
    origins, directions, hit_range = _check_rays(origins, directions, hit_range)
    if not max_range > 0:
        raise ValueError(f"max_range must be positive, got {max_range}")
    step = 0.5 * min(grid.voxel) if step is None else float(step)
    if not step > 0:
        raise ValueError(f"step must be positive, got {step}")
    X, Y, Z = grid.shape
    device = origins.device
    if directions.shape[0] == 0:
        return torch.zeros(grid.shape, dtype=torch.bool, device=device)
    hit_ok = torch.isfinite(hit_range) & (hit_range <= max_range)  # [R] the hit voxel itself is observed
    t_near, t_far = _grid_span(grid, origins, directions)  # [R]
    free_len = (torch.minimum(hit_range.clamp(max=max_range), t_far) - t_near).clamp(min=0)  # [R]
    n_samples = torch.ceil(free_len / step).long()  # [R] samples at t = t_near + (k + 0.5)·step
    lower = torch.tensor(grid.lower, dtype=torch.float32, device=device)
    voxel = torch.tensor(grid.voxel, dtype=torch.float32, device=device)
    n_vox = X * Y * Z
    observed = torch.zeros(n_vox + 1, dtype=torch.bool, device=device)  # last slot collects misses
    entry = (origins + t_near[:, None] * directions - lower) / voxel  # [R, 3] entry point, voxel units
    advance = directions * (step / voxel)  # [R, 3] voxel units per sample

    # free space; rays sorted by sample count, so each chunk pads to its last ray's count
    order = torch.argsort(n_samples)
    ns = n_samples[order]  # [R] non-decreasing
    start, r = 0, order.numel()
    while start < r:
        padded = torch.arange(1, r - start + 1, device=device) * ns[start:]  # chunk [start, j] costs (j-start+1)·ns[j]
        end = start + max(1, int((padded <= _CHUNK_SAMPLES).sum()))
        k, s = order[start:end], int(ns[end - 1])
        start = end
        if s == 0:
            continue
        kk = torch.arange(s, device=device, dtype=torch.float32) + 0.5  # [S]
        flat = None
        for a, n in enumerate((X, Y, Z)):  # voxel index per axis, as exact float32 integers
            f = torch.addcmul(entry[k, a, None], kk[None, :], advance[k, a, None]).floor_().clamp_(0, n - 1)
            flat = f if flat is None else flat.mul_(n).add_(f)  # [r, S] flat index (x·Y + y)·Z + z
        flat.masked_fill_(kk[None, :] * step >= free_len[k, None], n_vox)
        observed[flat.long()] = True
    # surfaces: the voxel of each hit
    hit = origins + hit_range.clamp(max=max_range)[:, None] * directions  # [R, 3]
    idx = torch.floor((hit - lower) / voxel).long()
    hit_ok &= ((idx >= 0) & (idx < torch.tensor([X, Y, Z], device=device))).all(-1)
    flat_hit = (idx[:, 0] * Y + idx[:, 1]) * Z + idx[:, 2]
    observed[torch.where(hit_ok, flat_hit, n_vox)] = True
    return observed[:n_vox].view(X, Y, Z)


def ray_cast_mask(
    grid: GridSpec,
    origins: Tensor,
    directions: Tensor,
    hit_range: Tensor,
    max_range: float = 100.0,
    step: float | None = None,
) -> Tensor:
    """`ray_cast_observed` as an Occ3D mask: `[X, Y, Z]` uint8, 1 = observed."""
    return ray_cast_observed(grid, origins, directions, hit_range, max_range, step).to(torch.uint8)


def camera_rays(
    intrinsics: Tensor, cam_to_ego: Tensor, depth: Tensor, stride: int = 1, depth_is_z: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Rays of camera pixels, in the ego frame.

    Args:
        intrinsics: `[V, 3, 3]` pinhole intrinsics of the depth images' resolution.
        cam_to_ego: `[V, 4, 4]` camera (OpenCV: x right, y down, z forward) → ego transforms.
        depth: `[V, h, w]` depth per pixel [m]; inf = nothing hit (sky).
        stride: use every `stride`-th pixel in each image direction.
        depth_is_z: `depth` is the z-depth along the optical axis (True) or the range along the ray.

    Returns:
        origins `[R, 3]`, unit directions `[R, 3]`, hit ranges `[R]` (inf = no hit), R = V·⌈h/s⌉·⌈w/s⌉.
    """
    intrinsics = torch.as_tensor(intrinsics, dtype=torch.float32)
    cam_to_ego = torch.as_tensor(cam_to_ego, dtype=torch.float32)
    depth = torch.as_tensor(depth, dtype=torch.float32)
    if depth.dim() != 3:
        raise ValueError(f"depth must have shape [V, h, w], got {tuple(depth.shape)}")
    v, h, w = depth.shape
    if tuple(intrinsics.shape) != (v, 3, 3):
        raise ValueError(f"intrinsics must have shape [V, 3, 3] = [{v}, 3, 3], got {tuple(intrinsics.shape)}")
    if tuple(cam_to_ego.shape) != (v, 4, 4):
        raise ValueError(f"cam_to_ego must have shape [V, 4, 4] = [{v}, 4, 4], got {tuple(cam_to_ego.shape)}")
    if torch.isnan(depth).any() or (depth < 0).any():
        raise ValueError("depth must be >= 0 (inf = no hit), found NaN or a negative value")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    vs = torch.arange(0, h, stride, dtype=torch.float32) + 0.5
    us = torch.arange(0, w, stride, dtype=torch.float32) + 0.5
    d = depth[:, ::stride, ::stride]  # [V, h', w']
    uu, vv = torch.meshgrid(us, vs, indexing="xy")  # [h', w']
    pix = torch.stack([uu, vv, torch.ones_like(uu)], -1)  # [h', w', 3]
    cam_dirs = torch.einsum("vij,hwj->vhwi", torch.linalg.inv(intrinsics), pix)  # [V, h', w', 3], z = 1
    ray_len = cam_dirs.norm(dim=-1)  # [V, h', w'] range per unit z-depth
    rng = d * ray_len if depth_is_z else d
    dirs = torch.einsum("vij,vhwj->vhwi", cam_to_ego[:, :3, :3], cam_dirs / ray_len[..., None])
    origins = cam_to_ego[:, None, None, :3, 3].expand_as(dirs)
    return origins.reshape(-1, 3), dirs.reshape(-1, 3), rng.reshape(-1)


def lidar_rays(points: Tensor, origin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Rays of lidar returns: `points` `[P, >=3]` (x, y, z, ...) in the ego frame and the sensor
    `origin` `[3]` → origins `[P, 3]`, unit directions `[P, 3]`, ranges `[P]`."""
    points = torch.as_tensor(points, dtype=torch.float32)
    if points.dim() != 2 or points.shape[-1] < 3:
        raise ValueError(f"points must have shape [P, >=3], got {tuple(points.shape)}")
    origin = torch.as_tensor(origin, dtype=torch.float32).reshape(3)
    offset = points[:, :3] - origin
    rng = offset.norm(dim=-1)
    keep = rng > 1e-6
    offset, rng = offset[keep], rng[keep]
    return origin.expand(offset.shape[0], 3), offset / rng[:, None], rng
