import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from carla_bridge.maps.static_scene import (
    DRIVEABLE,
    MANMADE,
    MARK_CROSSWALK,
    MARK_LANE,
    MARK_STOP,
    OTHER_FLAT,
    SIDEWALK,
    TERRAIN,
    VEGETATION,
)
from carla_bridge.maps.structures import Box3D, place_structures
from occupancy.grid import GridSpec


def _shapely_classes(scene, pts):
    """Independent reference: classify points with shapely's vectorized predicates."""
    out = np.full(len(pts), TERRAIN, np.uint8)
    for geom, cls in ((scene.shoulder, OTHER_FLAT), (scene.sidewalk, SIDEWALK), (scene.drivable, DRIVEABLE)):
        if not geom.is_empty:
            shapely.prepare(geom)
            out[shapely.contains_xy(geom, pts[:, 0], pts[:, 1])] = cls
    return out


def test_raster_is_driveable_at_lane_centres_and_terrain_far_away(town01):
    scene = town01.static
    grid = GridSpec.occ3d()
    ln = max((x for x in town01.lanes if not x.is_junction), key=lambda x: x.length)
    i = len(ln.s) // 2
    bev = scene.raster(ln.points[i], float(ln.yaw[i]), grid)
    assert bev.shape == (200, 200) and bev.dtype == np.uint8
    assert bev[100, 100] == DRIVEABLE  # the cell at the pose itself
    assert set(np.unique(bev)) <= {DRIVEABLE, OTHER_FLAT, SIDEWALK, TERRAIN}
    # The lane centreline ahead, transformed into the grid frame, is driveable wherever it is on the grid.
    c, s = np.cos(ln.yaw[i]), np.sin(ln.yaw[i])
    rel = ln.points - ln.points[i]
    ego = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], -1)
    inside = (np.abs(ego) < 39.0).all(1)
    ix = np.floor((ego[inside] + 40.0) / 0.4).astype(int)
    assert (bev[ix[:, 0], ix[:, 1]] == DRIVEABLE).mean() > 0.98
    far = scene.raster(np.array([5000.0, 5000.0]), 0.3, grid)
    assert (far == TERRAIN).all()
    np.testing.assert_array_equal(scene.raster(ln.points[i], float(ln.yaw[i]), grid), bev)


def test_raster_agrees_with_shapely_geometry(town01):
    scene = town01.static
    rng = np.random.default_rng(1)
    pts = np.concatenate([ln.points for ln in town01.lanes])
    q = rng.uniform(pts.min(0) - 10, pts.max(0) + 10, size=(8000, 2))
    got, ref = scene.ground_at(q), _shapely_classes(scene, q)
    # Boundary cells (0.2 m) and crosswalk bands may differ; the bulk must agree.
    assert (got == ref).mean() > 0.97
    for cls in (DRIVEABLE, SIDEWALK, TERRAIN):
        assert (ref == cls).sum() > 500, cls
        assert ((got == cls) & (ref == cls)).sum() / (ref == cls).sum() > 0.95, cls


def test_raster_pose_rotation_matches_world_lookup(town01):
    scene = town01.static
    grid = GridSpec.uniform((-20.0, -20.0, -1.0), (20.0, 20.0, 1.0), 0.5)
    centre, yaw = np.array([150.0, -57.0]), np.pi / 2
    bev = scene.raster(centre, yaw, grid)
    # Grid cell (ix, iy) at ego (x, y) = (10.25, -4.75) is world centre + R(yaw) (x, y) = (154.75, -46.75).
    ix, iy = int((10.25 + 20) / 0.5), int((-4.75 + 20) / 0.5)
    assert bev[ix, iy] == scene.ground_at(np.array([154.75, -46.75]))
    world = scene.grid_to_world(centre, yaw, grid)
    np.testing.assert_array_equal(bev, scene.ground_at(world))


def test_static_areas_markings_and_stop_lines(town01):
    scene = town01.static
    assert scene.drivable.area > 10000 and scene.sidewalk.area > 5000
    assert len(scene.junctions) == len({ln.junction_id for ln in town01.lanes if ln.is_junction})
    for j, poly in scene.junctions.items():
        centres = [ln.points[len(ln.s) // 2] for ln in town01.lanes if ln.junction_id == j]
        assert all(poly.buffer(0.1).contains(shapely.Point(p)) for p in centres)
    assert "Broken" in scene.marking_types and len(scene.lane_markings) == len(scene.marking_types)
    line = scene.lane_markings[scene.marking_types.index("Broken")]
    mid = np.asarray(line.interpolate(0.5, normalized=True).coords)[0]
    assert scene.marking_at(mid) == MARK_LANE
    assert len(scene.stop_lines) == sum(len(h.lane_ids) for g in town01.traffic_lights for h in g.heads)
    stop_mid = np.asarray(scene.stop_lines[0].interpolate(0.5, normalized=True).coords)[0]
    assert scene.marking_at(stop_mid) == MARK_STOP
    for path in scene.sidewalk_paths[:20]:
        assert shapely.contains_xy(scene.sidewalk.buffer(0.05), path[:, 0], path[:, 1]).mean() > 0.9


def test_crosswalks_join_sidewalks_across_the_generated_crossroads(crossroads):
    scene = crossroads.static
    assert len(scene.crosswalks) == 4 and scene.crosswalk_segments.shape == (4, 2, 2)
    for cw, seg in zip(scene.crosswalks, scene.crosswalk_segments):
        assert cw.area == pytest.approx(7.0 * 3.0, rel=0.25)  # two 3.5 m lanes × 3 m band
        for end in seg:
            assert scene.sidewalk.distance(shapely.Point(end)) < 0.1
        c = np.asarray(cw.centroid.coords)[0]
        assert scene.ground_at(c) == DRIVEABLE
        stripes = scene.markings[scene.ground == DRIVEABLE]
        assert (stripes == MARK_CROSSWALK).any()
    assert len(scene.stop_lines) == 4


def test_buildings_and_trees_stay_off_the_road(town01):
    scene = town01.static
    assert len(scene.buildings) > 20 and len(scene.trees) > 20
    road = shapely.union_all([scene.drivable, scene.sidewalk, scene.shoulder])
    b = np.array([Polygon(x.corners_xy()) for x in scene.buildings])
    t = np.array([Polygon(x.corners_xy()) for x in scene.trees])
    assert shapely.distance(b, road).min() > 1.0
    assert not shapely.intersects(t, road).any()
    tree = shapely.STRtree(b)
    pairs = tree.query(b, predicate="intersects")
    assert (pairs[0] == pairs[1]).all()  # no two buildings overlap
    boxes, labels = scene.structures()
    assert boxes.shape == (len(b) + len(t), 7)
    assert set(labels.tolist()) == {MANMADE, VEGETATION}
    np.testing.assert_allclose(boxes[:, 2], boxes[:, 6] / 2, atol=0.5)  # z is the box centre over flat ground
    near, _ = scene.structures_near(scene.buildings[0].as_array()[:2], 1.0)
    assert len(near) >= 1


def test_structure_placement_is_seeded():
    mask = np.zeros((120, 120), bool)
    mask[55:65, :] = True  # one straight 10 m road through a 120 m square (1 m cells)

    def run(seed):
        return place_structures(mask, np.zeros(2), 1.0, lambda xy: np.zeros(len(xy)), seed=seed)

    a, b, c = run(3), run(3), run(4)
    assert a == b and a != c
    buildings, trees = a
    assert buildings and trees
    for box in buildings:
        assert isinstance(box, Box3D)
        assert not (55 - 2.5 < box.y < 65 + 2.5)  # off the road, behind the setback
        assert abs(np.sin(box.yaw)) < 0.2  # long side along the road
