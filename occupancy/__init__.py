"""occupancy: 3D semantic occupancy.

Owns the voxel `GridSpec` (bounds, voxel size, world↔voxel), the 18-class Occ3D-nuScenes table
(`Occ3DClass`, the one numbering of the class ids),
ground-truth builders (oriented boxes, ground layers, static structures → labels), visibility
masks, Occ3D `labels.npz` reading/writing, metrics (IoU, mIoU per class and per horizon, on the
camera mask), explicit resampling between grids, and BEV rendering for reports. It depends only
on `agents/`. `occupancy.render` (matplotlib) is imported on demand, not from here.
"""

from occupancy.builders import (
    compose_labels,
    ego_mask,
    paint_boxes,
    paint_ground,
    paint_structures,
    voxelize_box_index,
    voxelize_boxes,
)
from occupancy.classes import (
    AGENT_CLASS_TO_NUSCENES_CATEGORY,
    AGENT_CLASS_TO_OCC3D,
    NUM_CLASSES,
    NUSCENES_CATEGORY_TO_OCC3D,
    OCC3D_CLASSES,
    OCC3D_COLORS,
    Occ3DClass,
)
from occupancy.grid import GridSpec
from occupancy.io import labels_path, read_labels, write_labels
from occupancy.metrics import OccupancyMetrics, confusion_matrix, iou_summary
from occupancy.resample import downsample_labels, resample_nearest, upsample_nearest, warp_labels_se2
from occupancy.visibility import camera_rays, lidar_rays, ray_cast_mask, ray_cast_observed

__all__ = [
    "AGENT_CLASS_TO_NUSCENES_CATEGORY",
    "AGENT_CLASS_TO_OCC3D",
    "NUM_CLASSES",
    "NUSCENES_CATEGORY_TO_OCC3D",
    "OCC3D_CLASSES",
    "OCC3D_COLORS",
    "GridSpec",
    "Occ3DClass",
    "OccupancyMetrics",
    "camera_rays",
    "compose_labels",
    "confusion_matrix",
    "downsample_labels",
    "ego_mask",
    "iou_summary",
    "labels_path",
    "lidar_rays",
    "paint_boxes",
    "paint_ground",
    "paint_structures",
    "ray_cast_mask",
    "ray_cast_observed",
    "read_labels",
    "resample_nearest",
    "upsample_nearest",
    "voxelize_box_index",
    "voxelize_boxes",
    "warp_labels_se2",
    "write_labels",
]
