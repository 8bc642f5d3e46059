"""Explicit resampling of voxel grids between `GridSpec`s and between ego frames.

The spatial dims are always the last three `[..., X, Y, Z]`; anything before them (batch, time,
class logits `C`) is carried along. Three operations:
- `resample_nearest`: every destination voxel takes the value of the source voxel containing its
  centre (labels or logits; coarse → fine upsampling, or any grid → any grid). Outside the source
  grid: `fill`.
- `downsample_labels`: every destination voxel takes a vote over the source voxels whose centres it
  contains (fine label grid → coarse model grid). `occupied_first` (default): any occupied source
  voxel makes the destination occupied, with the most frequent occupied class; otherwise plain
  majority. Ties go to the lowest class id.
- `warp_labels_se2`: labels given in one ego frame re-expressed in another (e.g. a future frame's
  labels in the current ego frame), by nearest lookup under an SE(2) transform (z unchanged).
"""

from __future__ import annotations

import torch
from torch import Tensor

from agents.se2 import se2_apply, se2_inverse
from occupancy.classes import NUM_CLASSES, Occ3DClass
from occupancy.grid import GridSpec

__all__ = ["downsample_labels", "resample_nearest", "upsample_nearest", "warp_labels_se2"]


def _check_spatial(values: Tensor, grid: GridSpec, name: str) -> None:
    if not isinstance(values, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if values.dim() < 3 or tuple(values.shape[-3:]) != grid.shape:
        raise ValueError(f"{name} must have shape [..., X, Y, Z] = [..., {grid.shape}], got {tuple(values.shape)}")


def _axis_lookup(src: GridSpec, dst: GridSpec, axis: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """`[n_dst]` index of the source voxel containing each destination centre along `axis`, and validity."""
    centres = (
        dst.lower[axis] + (torch.arange(dst.shape[axis], device=device, dtype=torch.float64) + 0.5) * dst.voxel[axis]
    )
    idx = torch.floor((centres - src.lower[axis]) / src.voxel[axis] + 1e-9).long()
    ok = (idx >= 0) & (idx < src.shape[axis])
    return idx.clamp(0, src.shape[axis] - 1), ok


def resample_nearest(values: Tensor, src: GridSpec, dst: GridSpec, fill: float | int = Occ3DClass.FREE) -> Tensor:
    """Nearest resampling between axis-aligned grids in the same frame.

    Args:
        values: `[..., X, Y, Z]` on `src` (labels uint8, logits `[..., C, X, Y, Z]` float, masks...).
        src: grid of `values`; dst: target grid.
        fill: value for destination voxels whose centre lies outside `src`.

    Returns:
        `[..., X', Y', Z']` on `dst`, same dtype.
    """
    _check_spatial(values, src, "values")
    device = values.device
    (ix, okx), (iy, oky), (iz, okz) = (_axis_lookup(src, dst, a, device) for a in range(3))
    out = values.index_select(-3, ix).index_select(-2, iy).index_select(-1, iz)
    ok = okx[:, None, None] & oky[None, :, None] & okz[None, None, :]  # [X', Y', Z']
    if not bool(ok.all()):
        out = torch.where(ok, out, torch.as_tensor(fill, dtype=out.dtype, device=device))
    return out


def upsample_nearest(values: Tensor, src: GridSpec, dst: GridSpec, fill: float | int = Occ3DClass.FREE) -> Tensor:
    """Coarse → fine by nearest (each fine voxel copies the coarse voxel containing its centre); the
    same as `resample_nearest`, named for the common model-grid → label-grid direction."""
    return resample_nearest(values, src, dst, fill)


def downsample_labels(labels: Tensor, src: GridSpec, dst: GridSpec, occupied_first: bool = True) -> Tensor:
    """Vote fine labels into a coarser grid.

    Args:
        labels: `[..., X, Y, Z]` integer Occ3D labels on `src`.
        src: the fine grid; dst: the coarse grid (same frame; any bounds and voxel sizes).
        occupied_first: a destination voxel holding any occupied (non-free) source voxel gets the most
            frequent occupied class; False = plain majority with free counted as a class.

    Returns:
        `[..., X', Y', Z']` uint8 on `dst`; destination voxels containing no source centre are `FREE`.
    """
    _check_spatial(labels, src, "labels")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids, got {labels.dtype}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"labels must be in 0..{NUM_CLASSES - 1}")
    device = labels.device
    lead = labels.shape[:-3]
    b = int(torch.tensor(lead).prod()) if lead else 1
    flat_dst = None
    valid = None
    for a in range(3):
        centres = src.axis_centers(a, device).double()
        idx = torch.floor((centres - dst.lower[a]) / dst.voxel[a]).long()  # [n_src]
        ok = (idx >= 0) & (idx < dst.shape[a])
        shape = [1, 1, 1]
        shape[a] = -1
        idx, ok = idx.view(shape), ok.view(shape)
        flat_dst = idx if flat_dst is None else flat_dst * dst.shape[a] + idx
        valid = ok if valid is None else valid & ok
    n_dst = dst.shape[0] * dst.shape[1] * dst.shape[2]
    cell = torch.where(valid, flat_dst, n_dst).expand(src.shape).reshape(-1)  # [X·Y·Z] dst voxel or n_dst
    lab = labels.reshape(b, -1).long()  # [B, X·Y·Z]
    key = (torch.arange(b, device=device)[:, None] * (n_dst + 1) + cell[None, :]) * NUM_CLASSES + lab
    counts = torch.bincount(key.reshape(-1), minlength=b * (n_dst + 1) * NUM_CLASSES)
    counts = counts.view(b, n_dst + 1, NUM_CLASSES)[:, :n_dst]  # [B, N', C]
    if occupied_first:
        occ = counts[..., : Occ3DClass.FREE]
        best = occ.argmax(-1)  # first maximum → lowest class id on ties
        out = torch.where(occ.sum(-1) > 0, best, torch.full_like(best, Occ3DClass.FREE))
    else:
        best = counts.argmax(-1)
        out = torch.where(counts.sum(-1) > 0, best, torch.full_like(best, Occ3DClass.FREE))
    return out.to(torch.uint8).view(*lead, *dst.shape)


def warp_labels_se2(
    labels: Tensor,
    grid: GridSpec,
    src_in_dst: Tensor,
    dst_grid: GridSpec | None = None,
    fill: float | int = Occ3DClass.FREE,
) -> Tensor:
    """Re-express a grid given in a source frame in a destination frame (nearest lookup).

    For a future sample's labels (frame = ego at t_k) seen from the current ego (t_0):
    `src_in_dst = se2_relative(ego_pose_t0, ego_pose_tk)`, the pose of the t_k ego in the t_0 ego frame.

    Args:
        labels: `[..., X, Y, Z]` on `grid` in the source frame (any dtype: labels, masks, logits).
        grid: the source grid.
        src_in_dst: `[3]` or `[..., 3]` (x, y, yaw) pose of the source frame in the destination
            frame; with leading dims they must equal the leading dims of `labels`.
        dst_grid: destination grid (default: `grid`); z is looked up by height, unchanged by SE(2).
        fill: value for destination voxels whose centre falls outside the source grid.

    Returns:
        `[..., X', Y', Z']` on `dst_grid`, same dtype.
    """
    _check_spatial(labels, grid, "labels")
    dst = dst_grid or grid
    device = labels.device
    pose = torch.as_tensor(src_in_dst, dtype=torch.float64, device=device)
    lead = labels.shape[:-3]
    if pose.shape[-1:] != (3,) or (pose.dim() > 1 and pose.shape[:-1] != lead):
        raise ValueError(f"src_in_dst must have shape [3] or [{', '.join(map(str, lead))}, 3], got {tuple(pose.shape)}")
    if not torch.isfinite(pose).all():
        raise ValueError("src_in_dst contains NaN or inf")
    b = int(torch.tensor(lead).prod()) if lead else 1
    pose = pose.reshape(-1, 3).expand(b, 3)  # [B, 3]
    centres = dst.bev_centers(device).double().reshape(1, -1, 2)  # [1, X'·Y', 2] destination frame
    src_xy = se2_apply(se2_inverse(pose), centres.expand(b, -1, -1))  # [B, X'·Y', 2] source frame
    ix = torch.floor((src_xy[..., 0] - grid.lower[0]) / grid.voxel[0] + 1e-9).long()
    iy = torch.floor((src_xy[..., 1] - grid.lower[1]) / grid.voxel[1] + 1e-9).long()
    ok_xy = (ix >= 0) & (ix < grid.shape[0]) & (iy >= 0) & (iy < grid.shape[1])  # [B, X'·Y']
    col = ix.clamp(0, grid.shape[0] - 1) * grid.shape[1] + iy.clamp(0, grid.shape[1] - 1)  # [B, X'·Y']
    iz, ok_z = _axis_lookup(grid, dst, 2, device)  # [Z']
    x, y, z = grid.shape
    flat = labels.reshape(b, x * y, z).index_select(-1, iz)  # [B, X·Y, Z']
    out = torch.gather(flat, 1, col[..., None].expand(-1, -1, iz.numel()))  # [B, X'·Y', Z']
    ok = ok_xy[..., None] & ok_z[None, None, :]
    out = torch.where(ok, out, torch.as_tensor(fill, dtype=out.dtype, device=device))
    return out.view(*lead, *dst.shape)
