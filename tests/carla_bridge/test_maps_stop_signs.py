import numpy as np
import pytest

from carla_bridge.maps import load_town
from carla_bridge.maps.procedural import crossroads_xodr, grid_town_xodr, write_xodr


def test_generated_map_stop_signals_load_through_carla_landmarks(crossroads):
    landmarks = crossroads.carla_map.get_all_landmarks_of_type("206")
    assert len(landmarks) == 4
    signs = crossroads.stop_signs
    assert len(signs) == 4
    for sign in signs:
        lane = crossroads.lanes[sign.lane_id]
        assert not lane.is_junction
        # The stop line is 1 m before the junction box (half size 10 m), on the lane centre.
        assert lane.length - sign.stop_s == pytest.approx(1.0)
        assert np.abs(sign.stop_xy).max() == pytest.approx(11.0, abs=1e-3)
        assert np.abs(sign.stop_xy).min() == pytest.approx(1.75, abs=1e-3)
        assert sign.junction_id == crossroads.lanes[lane.successors[0]].junction_id >= 0
        # The sign stands to the driver's right of the approach lane.
        _, yaw = lane.interpolate(sign.stop_s)
        right = np.array([np.sin(yaw[0]), -np.cos(yaw[0])])
        assert (sign.pole_xy - sign.stop_xy) @ right > 2.0
    # A stop-sign junction gets no procedural traffic lights.
    assert crossroads.traffic_lights == []


def test_generated_map_traffic_light_signals_on_approach_lanes(tmp_path):
    town = load_town(write_xodr(crossroads_xodr(stop_signs=False, lights=True), tmp_path / "Lights.xodr"))
    assert town.stop_signs == []
    (group,) = town.traffic_lights
    assert len(group.heads) == 4 and group.num_phases == 2
    for h in group.heads:
        assert h.source == "map"
        (lane_id,) = h.lane_ids
        assert town.lanes[lane_id].length - h.stop_s[0] == pytest.approx(1.0)
        # Opposite approaches share a phase.
        same = [o for o in group.heads if o.phase == h.phase and o is not h]
        assert len(same) == 1 and np.cos(same[0].yaw - h.yaw) == pytest.approx(-1.0, abs=1e-6)


def test_generated_grid_town_is_connected_without_dead_ends(tmp_path):
    town = load_town(write_xodr(grid_town_xodr(3, 2, stubs=False, seed=3), tmp_path / "Grid.xodr"))
    assert all(ln.successors and ln.predecessors for ln in town.lanes)
    # Every lane reaches every other lane (strongly connected lane graph).
    seen, todo = {0}, [0]
    while todo:
        for k in town.lanes[todo.pop()].successors:
            if k not in seen:
                seen.add(k)
                todo.append(k)
    assert len(seen) == len(town.lanes)
    with pytest.raises(ValueError, match="junction_half"):
        grid_town_xodr(2, 2, block=15.0)


def test_procedural_grid_town_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVEWM_CACHE", str(tmp_path))
    town = load_town("Grid3x2s5")
    assert town.name == "Grid3x2s5" and town.path.parent == tmp_path / "towns"
    assert all(ln.successors for ln in town.lanes)
    # Signals only at real intersections (≥ 3 arms); lights from the map never share a junction with stop signs.
    light_j = {g.junction_id for g in town.traffic_lights}
    stop_j = {s.junction_id for s in town.stop_signs}
    assert light_j | stop_j and not light_j & stop_j
    for j in light_j | stop_j:
        assert len({town.lanes[p].road_id for ln in town.lanes if ln.junction_id == j for p in ln.predecessors}) >= 3
    with pytest.raises(FileNotFoundError, match="Grid<nx>x<ny>"):
        load_town("Grid")
    with pytest.raises(FileNotFoundError, match="nx·ny ≥ 2"):
        load_town("Grid1x1")
