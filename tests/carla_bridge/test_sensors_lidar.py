"""LIDAR_TOP: agrees with camera depth on shared surfaces, rings follow the configured beams, labels,
per-cell ground heights, bad input."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from test_sensors import EGO, GROUND_Z, ring_scene

from carla_bridge.sensors import (
    CameraRig,
    GroundPatch,
    RenderScene,
    beam_elevations,
    build_mesh,
    lane_height_field,
    render_cameras,
    render_lidar,
)


@pytest.fixture(scope="module")
def rig() -> CameraRig:
    return CameraRig.nuscenes(400, 225)


@pytest.fixture(scope="module")
def sweep(rig):
    scene = ring_scene()
    mesh = build_mesh(scene)
    return scene, render_lidar(scene, rig, mesh=mesh), render_cameras(scene, rig, mesh=mesh)


def test_lidar_agrees_with_camera_depth(rig, sweep):
    """Every lidar return that a camera sees lies on the surface that camera renders at that pixel."""
    scene, lidar, cams = sweep
    pts = lidar.points[:, :3].astype(np.float64)
    uv, depth = rig.project(pts)
    n_seen = 0
    for v in range(rig.num_cameras):
        u0, v0 = np.floor(uv[v, :, 0]).astype(int), np.floor(uv[v, :, 1]).astype(int)
        ok = (depth[v] > 1) & (u0 >= 0) & (u0 < rig.width - 1) & (v0 >= 0) & (v0 < rig.height - 1)
        # The 4 pixel centres around the exact projection: on a plane 1/depth is affine in (u, v), so the
        # point's depth lies between their rendered depths (up to float32 and the occasional surface edge).
        quad = np.stack([cams.depth[v, v0[ok] + dv, u0[ok] + du] for dv in (0, 1) for du in (0, 1)])
        d = depth[v, ok]
        tol = 0.02 + 0.002 * d
        agree = (d >= quad.min(0) - tol) & (d <= quad.max(0) + tol)
        assert agree.mean() > 0.98, (v, agree.mean())
        inst = np.stack([cams.instance[v, v0[ok] + dv, u0[ok] + du] for dv in (0, 1) for du in (0, 1)])
        same_inst = (inst == lidar.instance[ok]).any(0)
        assert same_inst.mean() > 0.98
        n_seen += ok.sum()
    assert n_seen > 0.5 * len(pts)
    # Ground returns lie on the ground plane, agents' returns inside their boxes' class.
    ground = np.isin(lidar.semantic, [11, 12, 13, 14])
    z_world = pts[ground, 2] + EGO[2]
    np.testing.assert_allclose(z_world, GROUND_Z, atol=1e-3)
    assert set(np.unique(lidar.semantic[lidar.instance >= 0])) <= set(scene.occ_class.tolist())
    assert set(np.unique(lidar.instance)) == {-1, *scene.instance_id.tolist()}


def test_rings_follow_beams_and_range(rig, sweep):
    _, lidar, _ = sweep
    pts_s = lidar.points_sensor(rig).astype(np.float64)
    ring = lidar.points[:, 4].astype(int)
    elev = np.arctan2(pts_s[:, 2], np.hypot(pts_s[:, 0], pts_s[:, 1]))
    expect = beam_elevations(32)
    np.testing.assert_allclose(np.degrees(expect[[0, -1]]), [-30.67, 10.67])
    np.testing.assert_allclose(elev, expect[ring], atol=2e-4)
    rng_ = np.linalg.norm(pts_s[:, :3], axis=1)
    assert rng_.min() >= 1.0 - 1e-3 and rng_.max() <= 70.0 + 1e-3
    assert set(np.unique(ring)) == set(range(32))
    # The lowest beam sees the ground all around: a full turn of 1080 azimuths at the default 1/3°.
    assert (ring == 0).sum() == 1080
    assert (lidar.points[:, 3] >= 0).all() and (lidar.points[:, 3] <= 255).all()
    # Custom beams and resolution.
    small = render_lidar(ring_scene(with_static=False), rig, beams=4, azimuth_resolution_deg=1.0)
    assert set(np.unique(small.points[:, 4]).astype(int)) <= {0, 1, 2, 3}
    assert (small.points[:, 4] == 0).sum() == 360


def test_paint_is_brighter_and_sloped_ground(rig):
    """Lidar intensity is higher on lane paint than on asphalt; per-cell heights put returns on the slope."""
    res, half = 0.25, 80.0
    n = int(2 * half / res)
    x = -half + (np.arange(n) + 0.5) * res
    xx, yy = np.meshgrid(x, x, indexing="ij")
    height = (0.05 * xx).astype(np.float32)  # 5 % slope along x
    marks = (np.abs(yy - 2.0) < 0.3).astype(np.uint8)
    g = GroundPatch(np.full((n, n), 11, np.uint8), res, pose=(0, 0, 0), lower=(-half, -half), height=height,
                    markings=marks)  # fmt: skip
    scene = RenderScene(ground=g, ego_pose=np.array([0.0, 0.0, 0.0, 0.0]))
    lidar = render_lidar(scene, rig, azimuth_resolution_deg=0.5)
    p = lidar.points
    inside = (np.abs(p[:, 0]) < 60) & (np.abs(p[:, 1]) < 60)
    np.testing.assert_allclose(p[inside, 2], 0.05 * p[inside, 0], atol=0.1)
    on_paint = np.abs(p[:, 1] - 2.0) < 0.2
    assert p[on_paint, 3].mean() > 2 * p[~on_paint & inside, 3].mean()


def test_lidar_bad_input(rig):
    scene = ring_scene(with_static=False)
    with pytest.raises(ValueError, match="beams"):
        render_lidar(scene, rig, beams=0)
    with pytest.raises(ValueError, match="max_range"):
        render_lidar(scene, rig, max_range=float("nan"))
    with pytest.raises(ValueError, match="ego_pose"):
        render_lidar(scene, rig, ego_pose=np.array([np.nan, 0, 0, 0]))


def test_lane_height_field_follows_ramps_and_picks_the_ego_level(rig):
    """Hand-made lanes: a ramp along x (z = 0.1·x) crossing over a flat road along y at z = 0. Cells on the
    ramp away from the crossing take the ramp's z; at the crossing the level nearest the ego's z wins; lidar
    returns on the ramp lie on it."""
    xs = np.arange(-100.0, 100.0, 1.0)
    ramp = SimpleNamespace(points=np.c_[xs, np.zeros_like(xs)], z=np.clip(0.1 * xs, 0, None))
    flat = SimpleNamespace(points=np.c_[np.full_like(xs, 50.0), xs], z=np.zeros_like(xs))
    town = SimpleNamespace(lanes=[ramp, flat])
    hf = lane_height_field(town, (0.0, 0.0), ref_z=0.0, half_size=80.0, cell=2.0)
    probe = np.array([[30.0, 0.0], [70.0, 1.0], [50.0, 0.0], [50.0, 30.0]])
    np.testing.assert_allclose(hf.at(probe), [3.0, 7.0, 0.0, 0.0], atol=0.15)
    high = lane_height_field(town, (0.0, 0.0), ref_z=5.0, half_size=80.0, cell=2.0)
    assert high.at(np.array([[50.0, 0.0]]))[0] == pytest.approx(5.0, abs=0.15)  # on the bridge level
    with pytest.raises(ValueError, match="ref_z"):
        lane_height_field(town, (0.0, 0.0), ref_z=float("nan"))
    g = GroundPatch(np.full((8, 8), 11, np.uint8), 40.0, pose=(0, 0, 0), lower=(-160, -160), height=hf)
    lidar = render_lidar(RenderScene(ground=g, ego_pose=np.zeros(4)), rig)
    np.testing.assert_allclose(g.height_at(np.array([[30.0, 0.0]])), [3.0], atol=0.15)
    p = lidar.points.astype(np.float64)
    on_ramp = (p[:, 0] > 5) & (p[:, 0] < 45) & (np.abs(p[:, 1]) < 1)
    assert on_ramp.sum() > 20
    np.testing.assert_allclose(p[on_ramp, 2], 0.1 * p[on_ramp, 0], atol=0.2)
