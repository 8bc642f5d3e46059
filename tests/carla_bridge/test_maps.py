import numpy as np
import pytest
import shapely
import torch

from carla_bridge.maps import available_towns, load_town
from carla_bridge.maps.lights import junction_approaches, place_lights

VENDORED = ["Town01", "Town02", "Town03", "Town04", "Town05", "Town06"]


def _left_normal(yaw):
    return np.stack([-np.sin(yaw), np.cos(yaw)], -1)


def test_vendored_towns_are_listed():
    assert set(VENDORED) <= set(available_towns())


@pytest.mark.parametrize("name", VENDORED)
def test_every_vendored_town_loads_with_a_continuous_lane_graph(name):
    town = load_town(name)
    assert town.name == name
    assert len(town.lanes) > 50
    for ln in town.lanes:
        assert ln.points.shape == (len(ln.s), 2) and ln.yaw.shape == ln.s.shape == ln.z.shape
        assert ln.s[0] == 0.0 and np.all(np.diff(ln.s) > 0)
        # Uniform spacing ≤ 1 m.
        assert np.diff(ln.s).max() <= 1.0 + 1e-6
        for k in ln.successors:
            assert np.linalg.norm(town.lanes[k].points[0] - ln.points[-1]) < 0.5, (ln.key, town.lanes[k].key)
            assert ln.id in town.lanes[k].predecessors
        if len(ln.s) > 3:  # the centreline never doubles back
            d = np.diff(ln.points, axis=0)
            h = np.arctan2(d[:, 1], d[:, 0])
            assert np.abs(np.angle(np.exp(1j * np.diff(h)))).max() < np.deg2rad(60)
    assert town.traffic_lights, f"{name} has no traffic lights"


def test_lane_yaw_follows_the_centreline(town01):
    for ln in town01.lanes[:40]:
        d = np.diff(ln.points, axis=0)
        h = np.arctan2(d[:, 1], d[:, 0])
        err = np.angle(np.exp(1j * (h - ln.yaw[:-1])))
        assert np.abs(err).max() < np.deg2rad(10)


def test_project_lane_points_gives_zero_lateral_and_matches_shapely(town01):
    pts = np.concatenate([ln.points[:-1] for ln in town01.lanes if not ln.is_junction])
    lane, s, lat = town01.project(pts)
    assert np.abs(lat).max() < 1e-6
    # Points shifted 1 m to the left of a straight lane: lateral +1, same lane, same s.
    ln = max((x for x in town01.lanes if not x.is_junction), key=lambda x: x.length)
    i = np.arange(5, len(ln.s) - 5, 7)
    q = ln.points[i] + _left_normal(ln.yaw[i])
    lane, s, lat = town01.project(q)
    assert np.all(lane == ln.id)
    np.testing.assert_allclose(lat, 1.0, atol=0.05)
    np.testing.assert_allclose(s, ln.s[i], atol=0.1)
    # Random points: |lateral| equals the shapely distance to the nearest centreline.
    rng = np.random.default_rng(0)
    lo, hi = pts.min(0), pts.max(0)
    q = rng.uniform(lo, hi, size=(200, 2))
    _, _, lat = town01.project(q)
    lines = np.array([shapely.LineString(ln.points) for ln in town01.lanes])
    ref = shapely.distance(shapely.points(q)[:, None], lines[None, :]).min(1)
    close = ref < 15.0  # the KD-tree candidate search is exact near the roads
    np.testing.assert_allclose(np.abs(lat)[close], ref[close], atol=1e-6)
    with pytest.raises(ValueError, match="xy must have shape"):
        town01.project(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        town01.project(np.full((1, 2), np.nan))


def test_project_with_heading_prefers_the_lane_driven(town01):
    ln = next(x for x in town01.lanes if not x.is_junction and x.length > 30)
    p = ln.points[10:11]
    lane, _, _ = town01.project(p, yaw=ln.yaw[10:11])
    assert lane[0] == ln.id
    # The opposite heading snaps to the opposite-direction lane of the same road.
    lane, _, _ = town01.project(p, yaw=ln.yaw[10:11] + np.pi)
    opp = town01.lanes[lane[0]]
    assert opp.road_id == ln.road_id and opp.lane_id * ln.lane_id < 0


def test_lane_arrays_pad_lanes_consistently(town01):
    la = town01.lane_arrays("cpu")
    n = len(town01.lanes)
    assert la.points.shape[:1] == (n,) and la.points.shape[-1] == 2
    assert la.points.dtype == torch.float32 and la.successors.dtype == torch.int64
    for i in (0, n // 2, n - 1):
        ln = town01.lanes[i]
        k = int(la.num_points[i])
        assert k == len(ln.s)
        np.testing.assert_allclose(la.points[i, :k].numpy(), ln.points, atol=1e-4)
        np.testing.assert_allclose(
            la.points[i, k:].numpy(), np.broadcast_to(ln.points[-1], (la.points.shape[1] - k, 2)), atol=1e-4
        )
        assert float(la.length[i]) == pytest.approx(ln.length, abs=1e-3)
        succ = [int(x) for x in la.successors[i] if x >= 0]
        assert succ == ln.successors
        assert bool(la.is_junction[i]) == ln.is_junction
    assert town01.lane_arrays("cpu") is la  # cached


def test_spawn_points_lie_on_lanes_outside_junctions(town01):
    sp = town01.spawn_points(spacing=15.0, rng=0)
    assert sp.shape[1] == 4 and len(sp) > 100
    lane, _, lat = town01.project(sp[:, :2], yaw=sp[:, 2])
    assert np.abs(lat).max() < 1e-6
    assert np.all(lane == sp[:, 3].astype(int))
    assert not any(town01.lanes[int(i)].is_junction for i in sp[:, 3])
    np.testing.assert_array_equal(sp, town01.spawn_points(spacing=15.0, rng=0))
    with pytest.raises(ValueError, match="spacing"):
        town01.spawn_points(spacing=0.0)


def test_left_right_neighbours_are_on_the_correct_side():
    town = load_town("Town04")
    checked = 0
    for ln in town.lanes:
        for side, sign in (("left", 1.0), ("right", -1.0)):
            nb = getattr(ln, side)
            if nb is None:
                continue
            m = len(ln.s) // 2
            q = town.lanes[nb].points
            j = np.argmin(np.linalg.norm(q - ln.points[m], axis=1))
            offset = (q[j] - ln.points[m]) @ _left_normal(ln.yaw[m])
            assert sign * offset > 2.0, (ln.key, side)
            assert town.lanes[nb].lane_id * ln.lane_id > 0  # same driving direction
            checked += 1
    assert checked > 100


def test_town01_lights_come_from_the_map(town01):
    groups = town01.traffic_lights
    heads = [h for g in groups for h in g.heads]
    assert len(groups) == 12 and len(heads) == 36
    for g in groups:
        assert g.num_phases >= 2
        for h in g.heads:
            assert h.source == "map" and h.junction_id == g.junction_id
            assert h.stop_xy.shape == (len(h.lane_ids), 2) and h.stop_s.shape == (len(h.lane_ids),)
            for lane_id, s, xy in zip(h.lane_ids, h.stop_s, h.stop_xy):
                ln = town01.lanes[lane_id]
                assert not ln.is_junction
                # The stop line is at the approach lane's end, which leads into the governed junction.
                assert ln.length - s == pytest.approx(1.0)
                assert {town01.lanes[k].junction_id for k in ln.successors} == {g.junction_id}
                assert set(h.governed_lane_ids) & set(ln.successors)
                assert np.linalg.norm(xy - ln.interpolate(s)[0][0]) < 1e-9
            assert np.linalg.norm(h.pole_xy - h.stop_xy.mean(0)) < 15.0


def test_town03_has_no_signals_so_lights_are_placed_procedurally_and_seeded():
    town = load_town("Town03")
    assert not town.carla_map.get_all_landmarks_of_type("1000001")
    groups = town.traffic_lights
    assert groups and all(h.source == "procedural" for g in groups for h in g.heads)
    approaches = junction_approaches(town.lanes)
    for g in groups:
        assert len(approaches[g.junction_id]) >= 3
        assert len(g.heads) == len(approaches[g.junction_id])
        for h in g.heads:
            # The pole stands to the right of the traffic it governs.
            right = np.array([np.sin(h.yaw), -np.cos(h.yaw)])
            assert (h.pole_xy - h.stop_xy.mean(0)) @ right > 1.0
    again = place_lights(town.lanes, seed=town.seed)
    assert [(g.junction_id, len(g.heads)) for g in again] == [(g.junction_id, len(g.heads)) for g in groups]
    other = [g.junction_id for g in place_lights(town.lanes, seed=town.seed + 1)]
    always = {j for j, roads in approaches.items() if len(roads) >= 4}
    assert always <= set(other) and always <= {g.junction_id for g in groups}


def test_unknown_town_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match=r"unknown town 'Town99'.*Town01"):
        load_town("Town99")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_town("/nonexistent/dir/Foo.xodr")


@pytest.mark.parametrize(
    ("content", "msg"),
    [
        ("this is not xml <<", "not valid XML"),
        ("<Road></Road>", "expected <OpenDRIVE>"),
        ("<OpenDRIVE><header/></OpenDRIVE>", "no <road>"),
        (
            '<OpenDRIVE><header/><road id="1" length="10" junction="-1"><planView>'
            '<geometry s="0" x="0" y="0" hdg="0" length="10"><line/></geometry></planView>'
            '<lanes><laneSection s="0"><center><lane id="0" type="none"/></center><right>'
            '<lane id="-1" type="sidewalk"><width sOffset="0" a="2" b="0" c="0" d="0"/></lane>'
            "</right></laneSection></lanes></road></OpenDRIVE>",
            "no driving lanes",
        ),
    ],
)
def test_malformed_xodr_is_a_clear_value_error(tmp_path, content, msg):
    p = tmp_path / "Bad.xodr"
    p.write_text(content)
    with pytest.raises(ValueError, match=msg):
        load_town(p)


def test_unreadable_xodr_is_a_clear_value_error(tmp_path):
    p = tmp_path / "Binary.xodr"
    p.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ValueError, match="cannot read OpenDRIVE file"):
        load_town(p)


def test_ground_z_follows_lane_heights():
    town = load_town("Town04")  # the only vendored town with real elevation (bridges, ramps)
    ln = max(town.lanes, key=lambda x: float(np.ptp(x.z)))
    assert np.ptp(ln.z) > 3.0
    np.testing.assert_allclose(town.ground_z(ln.points[::5]), ln.z[::5], atol=0.05)


def test_town_pickles_by_path_and_seed(town01):
    import pickle

    again = pickle.loads(pickle.dumps(town01))
    assert again is town01  # same process: the cached TownMap
