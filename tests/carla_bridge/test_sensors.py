"""Camera rig and renderer: calibration, agents visible where they project, depth vs an independent
slab-test reference, traffic-light colours, appearance by class, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pyquaternion import Quaternion

from carla_bridge.sensors import CAMERAS, Appearance, CameraRig, GroundPatch, RenderScene, build_mesh, render_cameras
from carla_bridge.sensors.reference import slab_cast
from carla_bridge.sensors.rig import RIG_PATH

SHARED_RIG = Path("/work/shared/nuscenes/rig_n015.json")
EGO = np.array([105.3, -42.7, 1.0, 0.7])  # (x, y, z, yaw): off the origin, rotated, ground at z = 1
GROUND_Z = 1.0
# (class, length, width, height) for a ring of unoccluded agents
AGENTS = [(4, 4.5, 1.9, 1.6), (7, 0.6, 0.6, 1.8), (3, 10.0, 2.6, 3.2), (10, 7.5, 2.5, 3.4), (2, 1.8, 0.6, 1.5),
          (4, 4.2, 1.8, 1.5), (6, 2.1, 0.8, 1.5), (9, 6.0, 2.4, 3.0), (1, 2.0, 0.5, 1.0), (4, 4.8, 2.0, 1.7),
          (7, 0.5, 0.5, 1.6), (8, 0.5, 0.5, 0.8)]  # fmt: skip


def to_world(local_xy: np.ndarray) -> np.ndarray:
    c, s = math.cos(EGO[3]), math.sin(EGO[3])
    return np.stack(
        [EGO[0] + c * local_xy[:, 0] - s * local_xy[:, 1], EGO[1] + s * local_xy[:, 0] + c * local_xy[:, 1]], 1
    )


def world_to_ego(p: np.ndarray) -> np.ndarray:
    c, s = math.cos(EGO[3]), math.sin(EGO[3])
    d = p - EGO[:3]
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], 1)


def ring_scene(lights: np.ndarray | None = None, light_state=(), with_static: bool = True) -> RenderScene:
    """12 agents on a 16 m ring around the ego (30° apart, tangential), buildings/trees far behind."""
    n = len(AGENTS)
    ang = np.arange(n) * 2 * np.pi / n + 0.1
    local = 16.0 * np.stack([np.cos(ang), np.sin(ang)], 1)
    xy = to_world(local)
    cls = np.array([a[0] for a in AGENTS])
    lwh = np.array([a[1:] for a in AGENTS], dtype=float)
    yaw = ang + EGO[3] + np.pi / 2
    boxes = np.c_[xy, GROUND_Z + lwh[:, 2] / 2, yaw, lwh]
    res, half = 0.2, 90.0
    nx = int(2 * half / res)
    x = -half + (np.arange(nx) + 0.5) * res
    xx, yy = np.meshgrid(x, x, indexing="ij")
    classes = np.where(np.abs(yy) < 7, 11, np.where(np.abs(yy) < 10, 13, 14)).astype(np.uint8)
    markings = ((np.abs(yy) < 0.1) & (np.mod(xx, 6) < 3)).astype(np.uint8)
    ground = GroundPatch(classes, res, pose=(EGO[0], EGO[1], EGO[3]), lower=(-half, -half), height=GROUND_Z,
                         markings=markings)  # fmt: skip
    static = np.zeros((0, 7))
    trees = np.zeros((0, 7))
    if with_static:
        sxy = to_world(np.array([[45.0, 30.0], [-40.0, -35.0], [10.0, -50.0]]))
        static = np.c_[sxy, np.full(3, GROUND_Z + 6), np.zeros(3), np.full((3, 2), 12.0), np.full(3, 12.0)]
        txy = to_world(np.array([[30.0, -30.0], [-30.0, 28.0]]))
        trees = np.c_[txy, np.full(2, GROUND_Z + 3), np.zeros(2), np.full((2, 2), 3.0), np.full(2, 6.0)]
    rng = np.random.default_rng(0)
    return RenderScene(
        ground=ground,
        ego_pose=EGO.copy(),
        boxes=boxes,
        occ_class=cls,
        color=rng.integers(30, 230, (n, 3)),
        instance_id=np.arange(100, 100 + n),
        static_boxes=static,
        static_class=np.full(len(static), 15),
        trees=trees,
        lights=np.zeros((0, 5)) if lights is None else lights,
        light_state=np.asarray(light_state, dtype=int),
    )


@pytest.fixture(scope="module")
def rig() -> CameraRig:
    return CameraRig.nuscenes(400, 225)


@pytest.fixture(scope="module")
def frame(rig):
    scene = ring_scene()
    return scene, render_cameras(scene, rig)


def test_rig_matches_real_n015_calibration():
    assert json.loads(RIG_PATH.read_text()) == json.loads(SHARED_RIG.read_text())
    data = json.loads(SHARED_RIG.read_text())
    full = CameraRig.nuscenes()
    small = CameraRig.nuscenes(400, 225)
    assert full.names == CAMERAS == ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT",
                                     "CAM_BACK_RIGHT")  # fmt: skip
    for v, name in enumerate(CAMERAS):
        rec = data[name]
        ref = Quaternion(rec["rotation"]).transformation_matrix
        ref[:3, 3] = rec["translation"]
        np.testing.assert_allclose(full.cam_to_ego_np()[v], ref, atol=1e-9)
        np.testing.assert_allclose(full.cam_to_ego[v].numpy(), ref, atol=1e-6)
        np.testing.assert_allclose(full.intrinsics[v].numpy(), np.array(rec["camera_intrinsic"]), rtol=1e-6)
        np.testing.assert_allclose(
            small.intrinsics[v].numpy()[:2], np.array(rec["camera_intrinsic"])[:2] / 4, rtol=1e-6
        )
        np.testing.assert_array_equal(full.cam_rotation[v], rec["rotation"])
    lid = Quaternion(data["LIDAR_TOP"]["rotation"]).transformation_matrix
    lid[:3, 3] = data["LIDAR_TOP"]["translation"]
    np.testing.assert_allclose(full.lidar_to_ego_np(), lid, atol=1e-9)
    # Optical axes point where the names say (ego x forward, y left).
    axes = full.cam_to_ego_np()[:, :3, 2]
    az = np.degrees(np.arctan2(axes[:, 1], axes[:, 0]))
    np.testing.assert_allclose(az, [0, -55, 55, 180, 110, -110], atol=6)
    assert np.abs(az[3]) > 174  # CAM_BACK


def test_agents_visible_where_they_project(rig, frame):
    """Centre and 16 inner points of every agent project onto pixels of that agent's instance and class."""
    scene, fr = frame
    checked = np.zeros(len(scene.boxes), int)
    for k, (x, y, zc, yaw, ln, w, h) in enumerate(scene.boxes):
        fx, fy = np.meshgrid([-0.3, 0.3], [-0.3, 0.3])
        lx = np.r_[0.0, np.tile(fx.ravel() * ln, 2)]
        ly = np.r_[0.0, np.tile(fy.ravel() * w, 2)]
        lz = np.r_[0.0, np.full(4, -0.25 * h), np.full(4, -0.05 * h)]
        c, s = math.cos(yaw), math.sin(yaw)
        pts = np.stack([x + c * lx - s * ly, y + s * lx + c * ly, zc + lz], 1)
        uv, depth = rig.project(world_to_ego(pts))
        for v in range(rig.num_cameras):
            col, row = np.round(uv[v, :, 0]).astype(int), np.round(uv[v, :, 1]).astype(int)
            ok = (depth[v] > 0.5) & (col >= 1) & (col < rig.width - 1) & (row >= 1) & (row < rig.height - 1)
            for cc, rr in zip(col[ok], row[ok]):
                assert fr.instance[v, rr, cc] == scene.instance_id[k], (k, CAMERAS[v], rr, cc)
                assert fr.semantic[v, rr, cc] == scene.occ_class[k]
                checked[k] += 1
    assert (checked >= 5).all(), checked
    # Pixels of each instance exist only where it was placed; nothing else carries an instance id.
    ids = np.unique(fr.instance)
    assert set(ids.tolist()) == {-1, *scene.instance_id.tolist()}


def test_depth_matches_independent_slab_reference(rig):
    scene = ring_scene()
    small = CameraRig.nuscenes(96, 54)
    fr = render_cameras(scene, small)
    mesh = build_mesh(scene)
    c, s = math.cos(EGO[3]), math.sin(EGO[3])
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    dirs = small.camera_rays().reshape(6, -1, 3) @ rot.T
    org = small.cam_to_ego_np()[:, :3, 3] @ rot.T + EGO[:3]
    origins = np.repeat(org, dirs.shape[1], axis=0)
    t, prim = slab_cast(torch.from_numpy(origins), torch.from_numpy(dirs.reshape(-1, 3)),
                        torch.from_numpy(mesh.prims.boxes), ground_z=GROUND_Z)  # fmt: skip
    t = t.numpy().reshape(fr.depth.shape)
    # The rendered ground ends 600 m out (GROUND_EXTENT); the reference plane is infinite.
    far = np.linalg.norm(dirs, axis=-1).reshape(t.shape) * t > 550
    assert (np.isinf(fr.depth) == np.isinf(t))[~far].all()
    finite = np.isfinite(t) & np.isfinite(fr.depth)
    # Embree is float32; allow 1e-4 relative. Edge pixels may pick a neighbour surface: ≤ 0.5 % of pixels.
    close = np.abs(fr.depth[finite] - t[finite]) <= 1e-3 + 1e-4 * t[finite]
    assert close.mean() > 0.995, close.mean()
    inst = np.where(prim.numpy() >= 0, mesh.prims.instance[np.clip(prim.numpy(), 0, None)], -1).reshape(t.shape)
    assert (inst == fr.instance).mean() > 0.995
    sky = ~finite
    assert (fr.semantic[sky] == 17).all() and sky.any()


def test_depth_of_a_wall_ahead_is_analytic():
    """A wall whose near face is 20 m ahead of the rear axle: CAM_FRONT's centre pixel sees it at
    20 - x_cam along the (almost forward) optical axis; the ground below the horizon at the analytic range."""
    rig = CameraRig.nuscenes(401, 225)
    g = GroundPatch(np.full((10, 10), 11, np.uint8), 20.0, pose=(0, 0, 0), lower=(-100, -100), height=0.0)
    wall = np.array([[20.5, 0.0, 5.0, 0.0, 1.0, 40.0, 10.0]])
    scene = RenderScene(ground=g, ego_pose=np.zeros(4), static_boxes=wall, static_class=np.array([15]))
    fr = render_cameras(scene, rig)
    c2e = rig.cam_to_ego_np()[0]
    k = rig.intrinsics_np()[0]
    u, v = 200, 40  # above the horizon: the wall
    d_cam = np.array([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], 1.0])
    d_ego = c2e[:3, :3] @ d_cam
    t_wall = (20.0 - c2e[0, 3]) / d_ego[0]
    assert fr.depth[0, v, u] == pytest.approx(t_wall, rel=1e-4)
    u, v = 200, 220  # bottom row: the ground plane z = 0
    d_ego = c2e[:3, :3] @ np.array([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], 1.0])
    assert fr.depth[0, v, u] == pytest.approx(-c2e[2, 3] / d_ego[2], rel=1e-4)
    assert fr.semantic[0, v, u] == 11 and fr.semantic[0, 40, 200] == 15
    assert np.isinf(fr.depth[3]).sum() > 0 and (fr.instance == -1).all()


@pytest.mark.parametrize("state, rgb_sign", [(0, (1, -1)), (2, (-1, 1))])
def test_traffic_light_head_lit_in_its_state_colour(rig, state, rgb_sign):
    """A head 25 m ahead facing the ego shows its state's colour in CAM_FRONT; a head facing away does not."""
    xy = to_world(np.array([[25.0, -4.0], [25.0, 4.0]]))
    yaw = EGO[3] + np.pi
    lights = np.c_[xy, np.full(2, GROUND_Z), [yaw, yaw + np.pi], np.full(2, 4.5)]
    scene = ring_scene(lights, [state, state], with_static=False)
    scene.boxes, scene.occ_class, scene.color, scene.instance_id = (
        scene.boxes[:0],
        scene.occ_class[:0],
        scene.color[:0],
        scene.instance_id[:0],
    )
    fr = render_cameras(scene, rig)
    img = fr.rgb[0].astype(int)
    # Lamp centres: 0.44 m in front of the pole, ±0.34 m above/below the head centre.
    dz = {0: 0.34, 2: -0.34}[state]
    for k, visible in ((0, True), (1, False)):
        face = np.array([math.cos(lights[k, 3]), math.sin(lights[k, 3])])
        p = np.r_[lights[k, :2] + 0.44 * face, GROUND_Z + 4.5 + dz][None]
        uv, depth = rig.project(world_to_ego(p))
        col, row = np.round(uv[0, 0]).astype(int)
        assert depth[0, 0] > 0 and 0 <= col < rig.width and 0 <= row < rig.height
        r, g, _ = img[row, col]
        lit = (r - g) * rgb_sign[0] > 120 if state == 0 else (g - r) * rgb_sign[1] > 120
        assert lit == visible, (k, img[row, col])
        assert fr.semantic[0, row, col] == 15
    red = (img[..., 0] > 200) & (img[..., 1] < 90)
    green = (img[..., 1] > 200) & (img[..., 0] < 90)
    assert (red.sum() > 0) == (state == 0) and (green.sum() > 0) == (state == 2)


def test_appearance_by_class(frame):
    _, fr = frame
    rgb = fr.rgb.astype(float)
    mean = {c: rgb[fr.semantic == c].mean(0) for c in (11, 13, 14, 17)}
    assert mean[13].mean() > mean[11].mean() + 40  # sidewalk lighter than asphalt
    assert mean[14][1] > mean[14][0] + 20  # grass green
    assert mean[17][2] > mean[17][0]  # blue-ish sky
    road = rgb[fr.semantic == 11]
    assert road.std(0).mean() > 3  # textured, not flat
    assert (road.min(1) > 180).any()  # white lane markings on the road


def test_bad_input_names_the_field(rig):
    scene = ring_scene(with_static=False)
    scene.boxes = scene.boxes[:, :6]
    with pytest.raises(ValueError, match=r"RenderScene\.boxes"):
        render_cameras(scene, rig)
    scene = ring_scene(with_static=False)
    scene.ego_pose = np.array([0.0, np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match="ego_pose"):
        render_cameras(scene, rig)
    scene = ring_scene(with_static=False)
    scene.occ_class = scene.occ_class[:-1]
    with pytest.raises(ValueError, match=r"RenderScene\.occ_class"):
        render_cameras(scene, rig)
    scene = ring_scene(with_static=False)
    scene.ground.classes = scene.ground.classes[0]
    with pytest.raises(ValueError, match=r"GroundPatch\.classes"):
        render_cameras(scene, rig)
    scene = ring_scene(with_static=False)
    with pytest.raises(ValueError, match="ego_pose"):
        render_cameras(scene, rig, ego_pose=np.array([0.0, 0.0, np.inf, 0.0]))
    scene.lights = np.zeros((1, 5))
    with pytest.raises(ValueError, match=r"RenderScene\.light_state"):
        render_cameras(scene, rig)
    with pytest.raises(ValueError, match="width"):
        CameraRig.nuscenes(0, 225)


def test_sun_shadow_falls_where_geometry_says(rig):
    """A 10 m tall box with the sun behind it at 45°: ground 3 m in front of it is in shadow (ambient light only),
    ground beside it is lit; without shadows both are lit."""
    g = GroundPatch(np.full((40, 40), 13, np.uint8), 5.0, pose=(0, 0, 0), lower=(-100, -100), height=0.0)
    tower = np.array([[25.0, 0.0, 5.0, 0.0, 2.0, 4.0, 10.0]])
    app = Appearance(sun_direction=(1.0, 0.0, 1.0), sun_intensity=0.6, ambient=0.4, haze_distance=1e9)
    scene = RenderScene(ground=g, ego_pose=np.zeros(4), static_boxes=tower, static_class=np.array([15]), appearance=app)
    lit = render_cameras(scene, rig, shadows=False).rgb[0].astype(float)
    shaded = render_cameras(scene, rig).rgb[0].astype(float)
    uv, depth = rig.project(np.array([[21.0, 0.0, 0.0], [21.0, -6.0, 0.0]]))
    (c_in, r_in), (c_out, r_out) = np.round(uv[0]).astype(int)
    assert depth[0].min() > 0
    expect = 0.4 / (0.4 + 0.6 * math.sqrt(0.5))  # ambient / (ambient + sun · cos 45°) on flat ground
    np.testing.assert_allclose(shaded[r_in, c_in] / lit[r_in, c_in], expect, atol=0.02)
    np.testing.assert_allclose(shaded[r_out, c_out], lit[r_out, c_out], atol=1)
    frame = render_cameras(scene, rig)
    assert frame.images().shape == (6, 3, rig.height, rig.width) and frame.images().dtype == torch.uint8
    np.testing.assert_array_equal(frame.mosaic()[rig.height :, rig.width : 2 * rig.width], frame.rgb[3])


def test_town01_ground_matches_the_map_raster(town01, rig):
    """On real Town01 (zero-copy town raster), every ground pixel's class equals the maps' own lookup at the
    back-projected hit point; buildings and trees from the map are in view."""
    from carla_bridge.maps.structures import boxes_to_array

    static = town01.static
    x, y, yaw, _ = town01.spawn_points(10.0, rng=3)[5]
    scene = RenderScene(
        ground=GroundPatch.from_static(static, 0.0),
        ego_pose=np.array([x, y, 0.0, yaw]),
        static_boxes=boxes_to_array(static.buildings),
        static_class=np.full(len(static.buildings), 15),
        trees=boxes_to_array(static.trees),
    )
    fr = render_cameras(scene, rig)
    ground = np.isin(fr.semantic, [11, 12, 13, 14])
    assert ground.mean() > 0.2 and (fr.semantic == 15).any()
    # Back-project ground pixels: p_cam = depth · K⁻¹ (u, v, 1) → ego → world.
    v_idx, rows, cols = np.nonzero(ground)
    kinv = np.linalg.inv(rig.intrinsics_np())[v_idx]
    p_cam = np.einsum("nij,nj->ni", kinv, np.stack([cols, rows, np.ones_like(rows)], 1).astype(float))
    p_cam *= fr.depth[v_idx, rows, cols][:, None]
    c2e = rig.cam_to_ego_np()[v_idx]
    p_ego = np.einsum("nij,nj->ni", c2e[:, :3, :3], p_cam) + c2e[:, :3, 3]
    c, s = math.cos(yaw), math.sin(yaw)
    wx = x + c * p_ego[:, 0] - s * p_ego[:, 1]
    wy = y + s * p_ego[:, 0] + c * p_ego[:, 1]
    np.testing.assert_allclose(p_ego[:, 2], 0.0, atol=2e-3)
    agree = static.ground_at(np.stack([wx, wy], 1)) == fr.semantic[v_idx, rows, cols]
    assert agree.mean() > 0.99, agree.mean()


def test_deterministic_and_seeded_appearance():
    """Same scene + seed → identical frames whatever the threading; another appearance seed changes the pixels
    (textures, sky, sun) but not depth or labels."""
    small = CameraRig.nuscenes(96, 54)
    scene = ring_scene()
    a = render_cameras(scene, small, threads=1, tile=1000)
    b = render_cameras(scene, small, threads=2)
    for name in ("rgb", "depth", "semantic", "instance"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    scene.appearance = Appearance.random(np.random.default_rng(7))
    c = render_cameras(scene, small)
    assert (c.rgb != a.rgb).mean() > 0.5
    np.testing.assert_array_equal(c.depth, a.depth)
    np.testing.assert_array_equal(c.instance, a.instance)
    assert Appearance.random(np.random.default_rng(7)) == scene.appearance


def test_antialias_moves_edges_towards_a_supersampled_reference():
    """Edge re-sampling keeps depth and labels and brings the colours closer to a 3×3 box-filtered render at
    3× the resolution (whose pixel 3j is the centre of low-res pixel j under the scaled intrinsics)."""
    scene = ring_scene()
    low, high = CameraRig.nuscenes(160, 90), CameraRig.nuscenes(480, 270)
    plain = render_cameras(scene, low, shadows=False)
    aa = render_cameras(scene, low, shadows=False, antialias=True)
    for name in ("depth", "semantic", "instance"):
        np.testing.assert_array_equal(getattr(aa, name), getattr(plain, name))
    hi = np.pad(render_cameras(scene, high, shadows=False).rgb.astype(float), ((0, 0), (1, 1), (1, 1), (0, 0)), "edge")
    ref = sum(hi[:, 1 + dv : 1 + dv + 270 : 3, 1 + du : 1 + du + 480 : 3] for dv in (-1, 0, 1) for du in (-1, 0, 1)) / 9
    changed = (aa.rgb != plain.rgb).any(-1)
    assert 0.005 < changed.mean() < 0.3
    err_plain = np.abs(plain.rgb[changed] - ref[changed]).mean()
    err_aa = np.abs(aa.rgb[changed] - ref[changed]).mean()
    assert err_aa < 0.8 * err_plain, (err_aa, err_plain)
