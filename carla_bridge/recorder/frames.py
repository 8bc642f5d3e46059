"""One recorded keyframe: render the rig, write the sensor files and Occ3D labels, annotate.

Everything is derived from the simulator's exact state at that instant: a `RenderScene` (what
the renderers draw: agent boxes with their instance ids, static structures, the ground patch) and
a `WorldSnapshot` (agent identities, classes, velocities, the ego pose). Labels are built from the
same boxes the cameras see, so pixels, annotations and voxels agree by construction; the tests and
`drivewm data check` verify it.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agents.states import AgentClass
from carla_bridge.recorder.tables import AnnotationMeta, KeyframeMeta
from occupancy.builders import compose_labels
from occupancy.classes import AGENT_CLASS_TO_NUSCENES_CATEGORY, Occ3DClass, agent_class_to_occ3d_lut
from occupancy.grid import GridSpec
from occupancy.io import write_labels
from occupancy.visibility import camera_rays, lidar_rays, ray_cast_mask

ANNOTATION_RADIUS = 50.0  # [m] agents whose box centre is within this distance of the ego are annotated
MOVING_SPEED = 0.5  # [m/s] vehicles faster than this are `vehicle.moving`
WALKING_SPEED = 0.3  # [m/s] pedestrians faster than this are `pedestrian.moving`
CAMERA_MASK_RAYS = 16_000  # camera rays cast for mask_camera (pixels are strided to about this many)
LIDAR_MASK_RAYS = 16_000  # lidar returns cast for mask_lidar (subsampled to about this many)
MASK_STEP = 0.4  # [m] ray sampling step of the visibility masks (one voxel edge)
MIN_BOX2D_PIXELS = 4  # instances with fewer pixels in a camera get no 2D box there
_VEHICLES = {AgentClass.CAR, AgentClass.TRUCK, AgentClass.BUS, AgentClass.CONSTRUCTION_VEHICLE, AgentClass.TRAILER}
_CYCLES = {AgentClass.BICYCLE, AgentClass.MOTORCYCLE}


@dataclass
class WorldSnapshot:
    """Ground truth at one instant, world frame (A agents).

    Attributes:
        time: simulation time since the scene start [s].
        ego: `[4]` ego rear-axle pose (x, y, z_ground, yaw).
        ego_speed: [m/s].
        track_id: `[A]` int64 identities (the renderer's instance ids).
        cls: `[A]` int64 `AgentClass`.
        center: `[A, 3]` box centres (x, y, z) [m].
        yaw: `[A]` [rad].
        size: `[A, 3]` (length, width, height) [m].
        velocity: `[A, 2]` [m/s].
        parked: `[A]` bool: parked for good (never moves in this scene).
    """

    time: float
    ego: np.ndarray
    ego_speed: float
    track_id: np.ndarray
    cls: np.ndarray
    center: np.ndarray
    yaw: np.ndarray
    size: np.ndarray
    velocity: np.ndarray
    parked: np.ndarray

    def boxes_ego(self) -> np.ndarray:
        """`[A, 7]` (x, y, z_centre, yaw, l, w, h) in the ego frame (z relative to the ego's ground)."""
        return world_boxes_to_ego(np.concatenate([self.center, self.yaw[:, None], self.size], axis=1), self.ego)


def world_boxes_to_ego(boxes: np.ndarray, ego: np.ndarray) -> np.ndarray:
    """`[M, 7]` world boxes (x, y, z, yaw, l, w, h) → ego frame of `ego` (x, y, z, yaw)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    c, s = math.cos(ego[3]), math.sin(ego[3])
    d = boxes[:, :2] - ego[:2]
    out = boxes.copy()
    out[:, 0] = c * d[:, 0] + s * d[:, 1]
    out[:, 1] = -s * d[:, 0] + c * d[:, 1]
    out[:, 2] = boxes[:, 2] - ego[2]
    out[:, 3] = np.remainder(boxes[:, 3] - ego[3] + math.pi, 2 * math.pi) - math.pi
    return out


def match_render_heights(snap: WorldSnapshot, render_scene: object) -> WorldSnapshot:
    """The snapshot with each agent's box-centre z taken from the render scene's box of the same
    instance id (what the cameras and lidar saw), so annotations, labels and pixels agree."""
    ids = np.asarray(render_scene.instance_id, dtype=np.int64)
    z_of = dict(zip(ids.tolist(), np.asarray(render_scene.boxes, dtype=np.float64)[:, 2].tolist()))
    center = snap.center.copy()
    for a, tid in enumerate(snap.track_id.tolist()):
        if tid in z_of:
            center[a, 2] = z_of[tid]
    return dataclasses.replace(snap, center=center)


def attribute_name(cls: int, speed: float, parked: bool) -> str | None:
    """nuScenes attribute of an agent (vehicle.moving/stopped/parked, pedestrian.moving/standing,
    cycle.with_rider; none for barriers and cones)."""
    c = AgentClass(int(cls))
    if c in _VEHICLES:
        if parked:
            return "vehicle.parked"
        return "vehicle.moving" if speed > MOVING_SPEED else "vehicle.stopped"
    if c == AgentClass.PEDESTRIAN:
        return "pedestrian.moving" if speed > WALKING_SPEED else "pedestrian.standing"
    if c in _CYCLES:
        return "cycle.with_rider"
    return None


def silhouette_pixels(rig: object, boxes_ego: np.ndarray) -> np.ndarray:
    """`[M]` number of camera pixels (all cameras) whose ray hits each box, ignoring occluders.

    Ray/oriented-box slab test on the pixels inside each box's projected bounding rectangle (the
    whole image when a corner lies behind the camera).
    """
    rays = rig.camera_rays()  # [V, h, w, 3] ego frame
    origins = rig.cam_to_ego_np()[:, :3, 3]  # [V, 3]
    v_n, h, w = rays.shape[:3]
    out = np.zeros(len(boxes_ego), dtype=np.int64)
    for m, (x, y, z, yaw, length, width, height) in enumerate(boxes_ego):
        c, s = math.cos(yaw), math.sin(yaw)
        half = np.array([length, width, height]) / 2.0
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        pts = corners @ rot.T + [x, y, z]
        uv, depth = rig.project(pts)  # [V, 8, 2], [V, 8]
        for v in range(v_n):
            if (depth[v] <= 0.05).all():
                continue
            if (depth[v] > 0.05).all():
                u0, v0 = np.floor(uv[v].min(0)).astype(int)
                u1, v1 = np.ceil(uv[v].max(0)).astype(int)
                u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1 + 1, w), min(v1 + 1, h)
                if u0 >= u1 or v0 >= v1:
                    continue
            else:
                u0, v0, u1, v1 = 0, 0, w, h
            d = rays[v, v0:v1, u0:u1].reshape(-1, 3).astype(np.float64) @ rot  # box frame directions
            o = (origins[v] - [x, y, z]) @ rot
            with np.errstate(divide="ignore", invalid="ignore"):
                t0 = (-half - o) / d
                t1 = (half - o) / d
            t_near = np.nanmax(np.minimum(t0, t1), axis=1)
            t_far = np.nanmin(np.maximum(t0, t1), axis=1)
            out[m] += int(((t_near <= t_far) & (t_far > 0)).sum())
    return out


def instance_boxes2d(instance: np.ndarray) -> dict[int, dict[int, list[int]]]:
    """Per instance id, per camera index: `[u0, v0, u1, v1, pixels]` (inclusive pixel bounds)."""
    out: dict[int, dict[int, list[int]]] = {}
    for v, img in enumerate(instance):
        ids = np.unique(img)
        for i in ids[ids >= 0]:
            rows, cols = np.nonzero(img == i)
            if len(rows) < MIN_BOX2D_PIXELS:
                continue
            out.setdefault(int(i), {})[v] = [
                int(cols.min()),
                int(rows.min()),
                int(cols.max()),
                int(rows.max()),
                len(rows),
            ]
    return out


def ground_classes_on_grid(patch: object, ego: np.ndarray, grid: GridSpec) -> np.ndarray:
    """`[X, Y]` uint8 ground class of each label column (nearest cell of the renderer's `GroundPatch`;
    14 terrain outside it)."""
    centers = grid.bev_centers().numpy().astype(np.float64)  # [X, Y, 2] ego frame
    c, s = math.cos(ego[3]), math.sin(ego[3])
    wx = ego[0] + c * centers[..., 0] - s * centers[..., 1]
    wy = ego[1] + s * centers[..., 0] + c * centers[..., 1]
    i, j, inside = patch.to_patch(np.stack([wx.reshape(-1), wy.reshape(-1)], axis=1))
    out = np.full(wx.size, 14, dtype=np.uint8)
    out[inside] = np.asarray(patch.classes)[i[inside], j[inside]]
    out = out.reshape(grid.bev_shape)
    out[~np.isin(out, (11, 12, 13, 14))] = 14
    return out


def static_structures(render_scene: object, ego: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The renderer's static primitives (buildings, walls, poles, tree trunks and crowns, light heads —
    exactly the boxes the cameras and lidar see) in the ego frame of `ego`: `[S, 7]` boxes and `[S]`
    int64 Occ3D classes."""
    from carla_bridge.sensors.mesh import scene_primitives

    prim = scene_primitives(render_scene)
    keep = (prim.instance < 0) & (prim.cls < Occ3DClass.FREE)
    return world_boxes_to_ego(prim.boxes[keep], ego), prim.cls[keep].astype(np.int64)


def occupancy_labels(
    render_scene: object,
    snap: WorldSnapshot,
    grid: GridSpec,
    camera_depth: np.ndarray,
    lidar_points: np.ndarray,
    rig: object,
) -> dict[str, np.ndarray]:
    """Occ3D labels of one keyframe in its ego frame: `semantics`, `mask_lidar`, `mask_camera`
    (`[X, Y, Z]` uint8). Agents and structures are the render scene's boxes; the ground is its
    ground patch; masks are ray cast from the camera depth images and the lidar returns."""
    ego = np.asarray(snap.ego, dtype=np.float64)
    lut = agent_class_to_occ3d_lut()
    boxes = snap.boxes_ego() if len(snap.track_id) else np.zeros((0, 7))
    labels = lut[snap.cls.astype(np.int64)] if len(snap.cls) else np.zeros(0, dtype=np.int64)
    structures, structure_labels = static_structures(render_scene, ego)
    ground = ground_classes_on_grid(render_scene.ground, ego, grid)
    semantics = compose_labels(
        grid,
        ground_classes=torch.from_numpy(ground),
        ground_z=0.0,
        boxes=torch.from_numpy(boxes).float(),
        labels=torch.from_numpy(labels),
        structures=torch.from_numpy(structures).float(),
        structure_labels=torch.from_numpy(structure_labels),
    )
    v, h, w = camera_depth.shape
    stride = max(1, round(math.sqrt(v * h * w / CAMERA_MASK_RAYS)))
    o, d, r = camera_rays(rig.intrinsics, rig.cam_to_ego, torch.from_numpy(camera_depth), stride=stride)
    mask_camera = ray_cast_mask(grid, o, d, r, step=MASK_STEP)
    every = max(1, math.ceil(len(lidar_points) / LIDAR_MASK_RAYS))
    pts = torch.from_numpy(np.ascontiguousarray(lidar_points[::every, :3]))
    o, d, r = lidar_rays(pts, torch.from_numpy(rig.lidar_to_ego_np()[:3, 3]).float())
    mask_lidar = ray_cast_mask(grid, o, d, r, step=MASK_STEP)
    return {
        "semantics": semantics.numpy().astype(np.uint8),
        "mask_lidar": mask_lidar.numpy(),
        "mask_camera": mask_camera.numpy(),
    }


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@dataclass(frozen=True)
class FrameContext:
    """What stays fixed while recording one scene.

    Attributes:
        root: output folder mirroring the dataset root (the scene's temporary folder).
        scene_name: nuScenes scene name.
        logfile: the log's file stem (prefix of every sensor file name).
        rig: the `CameraRig` at the recording resolution.
        offset: `(ox, oy)` world → global translation [m].
        grid: the Occ3D label grid.
        lidar_beams: lidar channels.
    """

    root: Path
    scene_name: str
    logfile: str
    rig: object
    offset: tuple[float, float]
    grid: GridSpec
    lidar_beams: int = 32


def record_keyframe(
    ctx: FrameContext, render_scene: object, snap: WorldSnapshot, timestamp_us: int, sample_token: str
) -> tuple[KeyframeMeta, dict]:
    """Render, write `samples/…` and `gts/…/labels.npz`, and describe the keyframe.

    Returns:
        the `KeyframeMeta` for the tables, and the keyframe's 2D instance boxes
        `{track_id: {camera_name: [u0, v0, u1, v1, pixels]}}`.
    """
    from carla_bridge.sensors.camera import render_cameras
    from carla_bridge.sensors.lidar import render_lidar
    from carla_bridge.sensors.mesh import build_mesh

    rig = ctx.rig
    ego = np.asarray(snap.ego, dtype=np.float64)
    snap = match_render_heights(snap, render_scene)
    mesh = build_mesh(render_scene)
    cams = render_cameras(render_scene, rig, ego, mesh=mesh)
    lidar = render_lidar(render_scene, rig, ego, beams=ctx.lidar_beams, mesh=mesh)
    files: dict[str, tuple[str, int, int]] = {}
    for v, name in enumerate(rig.names):
        rel = f"samples/{name}/{ctx.logfile}__{name}__{timestamp_us}.jpg"
        path = ctx.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg_bytes(cams.rgb[v]))
        files[name] = (rel, rig.width, rig.height)
    rel = f"samples/LIDAR_TOP/{ctx.logfile}__LIDAR_TOP__{timestamp_us}.pcd.bin"
    (ctx.root / rel).parent.mkdir(parents=True, exist_ok=True)
    (ctx.root / rel).write_bytes(lidar.points_sensor(rig).astype(np.float32).tobytes())
    files["LIDAR_TOP"] = (rel, 0, 0)

    labels = occupancy_labels(render_scene, snap, ctx.grid, cams.depth, lidar.points, rig)
    write_labels(ctx.root / "gts" / ctx.scene_name / sample_token / "labels.npz", **labels)

    # annotations
    boxes = snap.boxes_ego() if len(snap.track_id) else np.zeros((0, 7))
    near = np.hypot(boxes[:, 0], boxes[:, 1]) <= ANNOTATION_RADIUS
    idx = np.nonzero(near)[0]
    sil = silhouette_pixels(rig, boxes[idx]) if len(idx) else np.zeros(0, dtype=np.int64)
    inst_ids, inst_counts = np.unique(cams.instance[cams.instance >= 0], return_counts=True)
    pixels = dict(zip(inst_ids.tolist(), inst_counts.tolist()))
    lid_ids, lid_counts = np.unique(lidar.instance[lidar.instance >= 0], return_counts=True)
    lidar_pts = dict(zip(lid_ids.tolist(), lid_counts.tolist()))
    anns = []
    for k, a in enumerate(idx):
        tid = int(snap.track_id[a])
        speed = float(np.hypot(*snap.velocity[a]))
        vis = min(1.0, pixels.get(tid, 0) / sil[k]) if sil[k] > 0 else 0.0
        cx, cy, cz = snap.center[a]
        anns.append(
            AnnotationMeta(
                track_id=tid,
                category=AGENT_CLASS_TO_NUSCENES_CATEGORY[AgentClass(int(snap.cls[a]))],
                translation=(float(cx + ctx.offset[0]), float(cy + ctx.offset[1]), float(cz)),
                size_lwh=tuple(float(x) for x in snap.size[a]),  # type: ignore[arg-type]
                yaw=float(snap.yaw[a]),
                attribute=attribute_name(int(snap.cls[a]), speed, bool(snap.parked[a])),
                visible_fraction=vis,
                num_lidar_pts=int(lidar_pts.get(tid, 0)),
                speed=speed,
            )
        )
    annotated = {int(snap.track_id[a]) for a in idx}
    boxes2d = {
        tid: {rig.names[v]: b for v, b in per_cam.items()}
        for tid, per_cam in instance_boxes2d(cams.instance).items()
        if tid in annotated
    }
    meta = KeyframeMeta(
        timestamp_us=int(timestamp_us),
        ego_translation=(float(ego[0] + ctx.offset[0]), float(ego[1] + ctx.offset[1]), float(ego[2])),
        ego_yaw=float(ego[3]),
        files=files,
        annotations=anns,
    )
    return meta, boxes2d


__all__ = [
    "ANNOTATION_RADIUS",
    "FrameContext",
    "WorldSnapshot",
    "attribute_name",
    "instance_boxes2d",
    "occupancy_labels",
    "record_keyframe",
    "silhouette_pixels",
    "world_boxes_to_ego",
]
