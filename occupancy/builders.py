"""Ground-truth builders: oriented 3D boxes, ground layers and static structures → Occ3D labels.

All inputs are in the grid's frame (for labels: the ego frame of the sample). Torch, batched over
boxes: a box only tests the voxels of its own axis-aligned bounding range (padded to the largest
range of its chunk), never the whole grid, and no Python loop runs over voxels.

Labelling rules (documented once, used everywhere):
- A voxel belongs to a box when its **centre** lies inside the oriented box, boundary included.
- Overlapping boxes: the box with the **larger index** in the input wins (later boxes are painted
  over earlier ones), independent of chunking or scatter order.
- `compose_labels` paints, in order: ground layer, static structures, dynamic boxes, then clears the
  ego vehicle (its voxels become free; the ground layer under it keeps its ground class).
"""

from __future__ import annotations

import torch
from torch import Tensor

from agents.ego import EGO, EgoVehicle
from agents.se2 import se2_relative
from occupancy.classes import NUM_CLASSES, Occ3DClass
from occupancy.grid import GridSpec

__all__ = [
    "boxes_to_frame",
    "compose_labels",
    "ego_box3d",
    "ego_mask",
    "ground_layer_index",
    "paint_boxes",
    "paint_ground",
    "paint_structures",
    "voxelize_box_index",
    "voxelize_boxes",
]

_CHUNK_POINTS = 4_000_000  # voxel tests per chunk (bounds peak memory to ~100 MB)


def _check_boxes(boxes: Tensor, labels: Tensor | None, name: str) -> tuple[Tensor, Tensor | None]:
    boxes = torch.as_tensor(boxes)
    if boxes.dim() != 2 or boxes.shape[-1] != 7:
        raise ValueError(f"{name} must have shape [M, 7] (x, y, z_centre, yaw, l, w, h), got {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        boxes = boxes.float()
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{name} contains NaN or inf")
    if (boxes[:, 4:7] < 0).any():
        raise ValueError(f"{name} has a negative size (l, w, h)")
    if labels is None:
        return boxes, None
    labels = torch.as_tensor(labels, device=boxes.device)
    if labels.shape != boxes.shape[:1]:
        raise ValueError(f"labels for {name} must have shape [{boxes.shape[0]}], got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels for {name} must be integer class ids, got {labels.dtype}")
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= Occ3DClass.FREE):
        raise ValueError(f"labels for {name} must be Occ3D classes 0..{Occ3DClass.FREE - 1}, got {labels.tolist()}")
    return boxes, labels


def _axis_range(grid: GridSpec, axis: int, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Index range `[first, last]` (int64, clamped to the grid) of voxels whose centre lies in [lo, hi]."""
    n = grid.shape[axis]
    v, low = grid.voxel[axis], grid.lower[axis]
    first = torch.ceil((lo - low) / v - 0.5 - 1e-6).long().clamp(0, n)
    last = torch.floor((hi - low) / v - 0.5 + 1e-6).long().clamp(-1, n - 1)
    return first, last


def voxelize_box_index(grid: GridSpec, boxes: Tensor) -> Tensor:
    """For each voxel, the index of the box whose volume contains its centre (the largest such index).

    Args:
        grid: the voxel grid.
        boxes: `[M, 7]` (x, y, z_centre, yaw, length, width, height) in the grid's frame [m, rad].

    Returns:
        `[X, Y, Z]` int64: box index in 0..M-1, or -1 where no box contains the voxel centre.
    """
    boxes, _ = _check_boxes(boxes, None, "boxes")
    X, Y, Z = grid.shape
    device = boxes.device
    winner = torch.full((X * Y * Z,), -1, dtype=torch.long, device=device)
    m = boxes.shape[0]
    if m == 0:
        return winner.view(X, Y, Z)
    x, y, zc, yaw, length, width, height = boxes.double().unbind(-1)
    c, s = torch.cos(yaw), torch.sin(yaw)
    ex = 0.5 * (length * c.abs() + width * s.abs())  # [M] half extent of the xy bounding box along x
    ey = 0.5 * (length * s.abs() + width * c.abs())
    ix0, ix1 = _axis_range(grid, 0, x - ex, x + ex)  # [M]
    iy0, iy1 = _axis_range(grid, 1, y - ey, y + ey)
    iz0, iz1 = _axis_range(grid, 2, zc - 0.5 * height, zc + 0.5 * height)
    nx, ny, nz = (ix1 - ix0 + 1).clamp(min=0), (iy1 - iy0 + 1).clamp(min=0), (iz1 - iz0 + 1).clamp(min=0)
    cost = nx * ny * nz  # [M] voxels tested per box
    keep = (cost > 0).nonzero().squeeze(-1)
    if keep.numel() == 0:
        return winner.view(X, Y, Z)
    keep = keep[torch.argsort(cost[keep])]  # similar sizes share a chunk → little padding

    start = 0
    while start < keep.numel():
        # the longest chunk whose padded voxel count stays under budget (at least one box)
        rest = keep[start:]
        count = torch.arange(1, rest.numel() + 1, device=device)
        padded = count * nx[rest].cummax(0).values * ny[rest].cummax(0).values * nz[rest].cummax(0).values
        end = start + max(1, int((padded <= _CHUNK_POINTS).sum()))
        k = keep[start:end]
        start = end
        wx, wy, wz = int(nx[k].max()), int(ny[k].max()), int(nz[k].max())
        ix = ix0[k, None] + torch.arange(wx, device=device)  # [m, wx]
        iy = iy0[k, None] + torch.arange(wy, device=device)  # [m, wy]
        iz = iz0[k, None] + torch.arange(wz, device=device)  # [m, wz]
        okx, oky, okz = ix <= ix1[k, None], iy <= iy1[k, None], iz <= iz1[k, None]
        cx = grid.lower[0] + (ix.double() + 0.5) * grid.voxel[0]  # [m, wx] voxel centres
        cy = grid.lower[1] + (iy.double() + 0.5) * grid.voxel[1]
        cz = grid.lower[2] + (iz.double() + 0.5) * grid.voxel[2]
        dx = cx - x[k, None]  # [m, wx]
        dy = cy - y[k, None]  # [m, wy]
        ck, sk = c[k, None, None], s[k, None, None]
        u = ck * dx[:, :, None] + sk * dy[:, None, :]  # [m, wx, wy] box-frame coordinates
        v = -sk * dx[:, :, None] + ck * dy[:, None, :]
        in_xy = (u.abs() <= 0.5 * length[k, None, None]) & (v.abs() <= 0.5 * width[k, None, None])
        in_xy &= okx[:, :, None] & oky[:, None, :]
        in_z = ((cz - zc[k, None]).abs() <= 0.5 * height[k, None]) & okz  # [m, wz]
        inside = in_xy[:, :, :, None] & in_z[:, None, None, :]  # [m, wx, wy, wz]
        flat = (ix[:, :, None, None] * Y + iy[:, None, :, None]) * Z + iz[:, None, None, :]  # [m, wx, wy, wz]
        box_id = k[:, None, None, None].expand_as(flat)
        winner.scatter_reduce_(0, flat[inside], box_id[inside], reduce="amax")
    return winner.view(X, Y, Z)


def voxelize_boxes(grid: GridSpec, boxes: Tensor, labels: Tensor) -> Tensor:
    """Voxelize oriented 3D boxes with class labels.

    Args:
        grid: the voxel grid.
        boxes: `[M, 7]` (x, y, z_centre, yaw, length, width, height) in the grid's frame [m, rad].
        labels: `[M]` integer Occ3D classes in 0..16.

    Returns:
        `[X, Y, Z]` uint8: the label of the box containing each voxel centre (boundary included;
        where boxes overlap the one with the larger index wins), `FREE` (17) elsewhere.
    """
    boxes, labels = _check_boxes(boxes, labels, "boxes")
    winner = voxelize_box_index(grid, boxes)
    out = torch.full(winner.shape, Occ3DClass.FREE, dtype=torch.uint8, device=boxes.device)
    hit = winner >= 0
    out[hit] = labels[winner[hit]].to(torch.uint8)
    return out


def _check_semantics(semantics: Tensor, grid: GridSpec | None = None) -> Tensor:
    if not isinstance(semantics, Tensor):
        raise ValueError(f"semantics must be a torch.Tensor, got {type(semantics).__name__}")
    if semantics.dim() != 3:
        raise ValueError(f"semantics must have shape [X, Y, Z], got {tuple(semantics.shape)}")
    if grid is not None and tuple(semantics.shape) != grid.shape:
        raise ValueError(f"semantics shape {tuple(semantics.shape)} does not match grid {grid.shape}")
    if semantics.dtype != torch.uint8:
        raise ValueError(f"semantics must be uint8, got {semantics.dtype}")
    return semantics


def paint_boxes(semantics: Tensor, grid: GridSpec, boxes: Tensor, labels: Tensor) -> Tensor:
    """Return `semantics` with the voxels inside `boxes` set to their labels (boxes over what was there).

    Args:
        semantics: `[X, Y, Z]` uint8 labels.
        grid: the grid of `semantics`.
        boxes: `[M, 7]` (x, y, z_centre, yaw, l, w, h); labels: `[M]` classes 0..16.

    Returns:
        `[X, Y, Z]` uint8 (a new tensor).
    """
    _check_semantics(semantics, grid)
    painted = voxelize_boxes(grid, boxes, labels).to(semantics.device)
    return torch.where(painted != Occ3DClass.FREE, painted, semantics)


def paint_structures(semantics: Tensor, grid: GridSpec, structures: Tensor, labels: Tensor) -> Tensor:
    """Paint static structures (buildings → 15 manmade, trees → 16 vegetation, poles, walls...) given as
    oriented boxes `[S, 7]` with labels `[S]`; the same rule as `paint_boxes`. Returns a new tensor."""
    return paint_boxes(semantics, grid, structures, labels)


def ground_layer_index(grid: GridSpec, ground_z: Tensor | float) -> Tensor:
    """`[X, Y]` int64 index of the voxel layer containing the ground surface height `ground_z`
    (scalar or `[X, Y]` [m]); values outside 0..Z-1 mean the surface is outside the grid."""
    X, Y, _ = grid.shape
    gz = torch.as_tensor(ground_z, dtype=torch.float64)
    if gz.dim() == 0:
        gz = gz.expand(X, Y)
    if tuple(gz.shape) != (X, Y):
        raise ValueError(f"ground_z must be a scalar or [X, Y] = {(X, Y)}, got {tuple(gz.shape)}")
    if not torch.isfinite(gz).all():
        raise ValueError("ground_z contains NaN or inf")
    return torch.floor((gz - grid.lower[2]) / grid.voxel[2] + 1e-9).long()


def paint_ground(
    semantics: Tensor,
    ground_classes: Tensor,
    ground_z: Tensor | float = 0.0,
    grid: GridSpec | None = None,
    thickness: int = 1,
) -> Tensor:
    """Paint the ground surface from a BEV semantic raster.

    Args:
        semantics: `[X, Y, Z]` uint8 labels.
        ground_classes: `[X, Y]` integer Occ3D classes per column (11 driveable_surface, 12 other_flat,
            13 sidewalk, 14 terrain, or any class 0..16); `FREE` (17) leaves the column unpainted.
        ground_z: ground surface height [m], scalar or `[X, Y]`.
        grid: the grid of `semantics` (default: the Occ3D grid).
        thickness: number of voxel layers painted: the layer containing the surface and
            `thickness - 1` layers below it.

    Returns:
        `[X, Y, Z]` uint8, a new tensor; painted voxels overwrite what was there.
    """
    grid = grid or GridSpec.occ3d()
    _check_semantics(semantics, grid)
    gc = torch.as_tensor(ground_classes, device=semantics.device)
    if tuple(gc.shape) != grid.bev_shape:
        raise ValueError(f"ground_classes must have shape [X, Y] = {grid.bev_shape}, got {tuple(gc.shape)}")
    if gc.is_floating_point() or gc.dtype == torch.bool:
        raise ValueError(f"ground_classes must be integer class ids, got {gc.dtype}")
    if gc.numel() and (gc.min() < 0 or gc.max() >= NUM_CLASSES):
        raise ValueError(f"ground_classes must be in 0..{NUM_CLASSES - 1}")
    if thickness < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness}")
    top = ground_layer_index(grid, ground_z).to(semantics.device)  # [X, Y]
    iz = torch.arange(grid.shape[2], device=semantics.device)  # [Z]
    layer = (iz <= top[..., None]) & (iz > top[..., None] - thickness)  # [X, Y, Z]
    layer &= (gc != Occ3DClass.FREE)[..., None]
    return torch.where(layer, gc.to(torch.uint8)[..., None].expand_as(semantics), semantics)


def boxes_to_frame(boxes: Tensor, frame_pose: Tensor) -> Tensor:
    """Express 3D boxes given in a parent (world) frame in a child frame (e.g. the ego frame).

    Args:
        boxes: `[M, 7]` (x, y, z_centre, yaw, l, w, h) in the parent frame.
        frame_pose: `[3]` (x, y, yaw) or `[4]` (x, y, z, yaw) of the child frame in the parent frame
            (e.g. the ego's rear-axle pose; z = the ego's ground height).

    Returns:
        `[M, 7]` boxes in the child frame (yaw wrapped to (-π, π]).
    """
    boxes, _ = _check_boxes(boxes, None, "boxes")
    pose = torch.as_tensor(frame_pose, dtype=boxes.dtype, device=boxes.device)
    if pose.shape not in ((3,), (4,)):
        raise ValueError(f"frame_pose must have shape [3] (x, y, yaw) or [4] (x, y, z, yaw), got {tuple(pose.shape)}")
    if not torch.isfinite(pose).all():
        raise ValueError("frame_pose contains NaN or inf")
    pose2 = pose[[0, 1, -1]]
    z0 = pose[2] if pose.shape == (4,) else torch.zeros((), dtype=boxes.dtype, device=boxes.device)
    rel = se2_relative(pose2, boxes[:, [0, 1, 3]])  # [M, 3] (x, y, yaw) in the child frame
    return torch.stack([rel[:, 0], rel[:, 1], boxes[:, 2] - z0, rel[:, 2], *boxes[:, 4:7].unbind(-1)], dim=-1)


def ego_box3d(ego: EgoVehicle = EGO, device: torch.device | str = "cpu") -> Tensor:
    """`[1, 7]` the ego vehicle's box in the ego frame (rear axle on the ground at the origin)."""
    return torch.tensor(
        [[ego.rear_axle_to_center, 0.0, 0.5 * ego.height, 0.0, ego.length, ego.width, ego.height]],
        dtype=torch.float32,
        device=device,
    )


def ego_mask(grid: GridSpec, ego: EgoVehicle = EGO, device: torch.device | str = "cpu") -> Tensor:
    """`[X, Y, Z]` bool, True for voxels whose centre lies inside the ego box (e.g. an `ignore` mask
    for metrics). The grid must be in the ego frame."""
    return voxelize_box_index(grid, ego_box3d(ego, device)) >= 0


def compose_labels(
    grid: GridSpec,
    ground_classes: Tensor | None = None,
    ground_z: Tensor | float = 0.0,
    boxes: Tensor | None = None,
    labels: Tensor | None = None,
    structures: Tensor | None = None,
    structure_labels: Tensor | None = None,
    ego: EgoVehicle | None = EGO,
    ground_thickness: int = 1,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Occ3D semantics of one ego-frame scene.

    Order: ground layer → static structures → dynamic boxes (each over the previous) → the ego
    vehicle cleared to free (the ground layer under it keeps its ground class).

    Args:
        grid: label grid in the ego frame (e.g. `GridSpec.occ3d()`).
        ground_classes: `[X, Y]` ground classes per column (`FREE` = no ground), or None.
        ground_z: ground height [m], scalar or `[X, Y]` (0 = the ego's ground plane).
        boxes, labels: `[M, 7]` dynamic-object boxes (x, y, z_centre, yaw, l, w, h) and `[M]` classes.
        structures, structure_labels: `[S, 7]` static-structure boxes and `[S]` classes (15, 16, ...).
        ego: the ego vehicle to clear, or None to keep everything.
        ground_thickness: voxel layers of ground painted (see `paint_ground`).

    Returns:
        `[X, Y, Z]` uint8 labels.
    """
    sem = torch.full(grid.shape, Occ3DClass.FREE, dtype=torch.uint8, device=device)
    top = None
    if ground_classes is not None:
        sem = paint_ground(sem, ground_classes, ground_z, grid, ground_thickness)
        top = ground_layer_index(grid, ground_z).to(device)
    if structures is not None:
        if structure_labels is None:
            raise ValueError("structure_labels are required when structures are given")
        sem = paint_structures(sem, grid, torch.as_tensor(structures).to(device), structure_labels)
    if boxes is not None:
        if labels is None:
            raise ValueError("labels are required when boxes are given")
        sem = paint_boxes(sem, grid, torch.as_tensor(boxes).to(device), labels)
    if ego is not None:
        inside = ego_mask(grid, ego, device)
        if ground_classes is not None:
            gc = torch.as_tensor(ground_classes, device=device)
            iz = torch.arange(grid.shape[2], device=device)
            ground = (
                (iz <= top[..., None]) & (iz > top[..., None] - ground_thickness) & (gc != Occ3DClass.FREE)[..., None]
            )
            keep = torch.where(
                ground, gc.to(torch.uint8)[..., None].expand_as(sem), torch.full_like(sem, Occ3DClass.FREE)
            )
        else:
            keep = torch.full_like(sem, Occ3DClass.FREE)
        sem = torch.where(inside, keep, sem)
    return sem
