"""occupancy: 3D semantic occupancy.

Owns the voxel `GridSpec` (bounds, voxel size, world↔voxel), the 18-class Occ3D-nuScenes table,
ground-truth builders (oriented boxes, ground layers, static structures → labels), visibility
masks, Occ3D `labels.npz` reading/writing, metrics (IoU, mIoU per class and per horizon, on the
camera mask), explicit resampling between grids, and BEV rendering for reports. It depends only
on `agents/`.
"""

from occupancy.grid import GridSpec

__all__ = ["GridSpec"]
