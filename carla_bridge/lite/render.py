"""Build the sensors' `RenderScene` from a lite world's state and render its cameras on request."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from occupancy import GridSpec

GROUND_RADIUS = 80.0  # [m] ground patch half-size
GROUND_RES = 0.2  # [m]
HEAD_HEIGHT = 5.0  # [m] traffic-light head above the ground


@lru_cache(maxsize=4)
def _rig(width: int, height: int):
    from carla_bridge.sensors.rig import CameraRig

    return CameraRig.nuscenes(width, height)


def render_scene(world, w: int = 0):
    """`RenderScene` of world `w`: ground patch + markings around the ego, every agent as a box with
    `instance_id == track_id`, roadside structures, traffic-light heads with their states."""
    from carla_bridge.sensors.scene import MARK_NONE, MARK_WHITE, GroundPatch, RenderScene
    from occupancy.classes import agent_class_to_occ3d_lut

    gt = world.ground_truth(w)
    a = gt["agents"]
    ego = gt["ego_pose"].double().numpy()
    static = world.town.static
    grid = GridSpec(
        (-GROUND_RADIUS, -GROUND_RADIUS, -1.0), (GROUND_RADIUS, GROUND_RADIUS, 5.4), (GROUND_RES, GROUND_RES, 0.2)
    )
    centre, yaw = ego[:2], float(ego[3])
    classes = static.raster(centre, yaw, grid)
    marks = static.marking_raster(centre, yaw, grid)
    paint = np.where((marks == 1) | (marks == 3), MARK_WHITE, MARK_NONE).astype(np.uint8)
    ground = GroundPatch(
        classes=classes,
        resolution=GROUND_RES,
        pose=(float(centre[0]), float(centre[1]), yaw),
        lower=(-GROUND_RADIUS, -GROUND_RADIUS),
        height=float(ego[2]),
        markings=paint,
        crosswalk=marks == 2,
    )
    valid = a.valid.numpy()
    lut = agent_class_to_occ3d_lut()
    boxes = np.concatenate(
        [a.xy.numpy(), a.z.numpy()[:, None] + ego[2], a.yaw.numpy()[:, None], a.size.numpy()], axis=1
    ).astype(np.float64)[valid]
    sboxes, slabels = static.structures_near(centre, GROUND_RADIUS + 20.0)
    trees = sboxes[slabels == 16]
    buildings = sboxes[slabels != 16]
    lights = world.md.head_pole.numpy()
    lamp_yaw = np.array([math.remainder(float(y) + math.pi, 2 * math.pi) for y in world.md.head_yaw.numpy()])
    light_rows = np.column_stack(
        [lights.reshape(-1, 2), np.full(len(lights), ego[2]), lamp_yaw.reshape(-1), np.full(len(lights), HEAD_HEIGHT)]
    )
    return RenderScene(
        ground=ground,
        ego_pose=ego,
        boxes=boxes,
        occ_class=lut[a.cls.numpy()][valid].astype(np.uint8),
        color=gt["agent_color"].numpy()[valid],
        instance_id=a.track_id.numpy()[valid].astype(np.int32),
        static_boxes=buildings,
        static_class=slabels[slabels != 16],
        trees=trees,
        lights=light_rows,
        light_state=gt["lights"]["state"].numpy(),
    )


def render_images(world, w: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render the 6 cameras of world `w`.

    Returns:
        images `[V, 3, h, w]` uint8, intrinsics `[V, 3, 3]`, cam_to_ego `[V, 4, 4]`.
    """
    from carla_bridge.sensors.camera import render_cameras

    rig = _rig(int(size[0]), int(size[1]))
    scene = render_scene(world, w)
    frame = render_cameras(scene, rig)
    return frame.images(), rig.intrinsics.float(), rig.cam_to_ego.float()
