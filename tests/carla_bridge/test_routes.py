import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from carla_bridge.maps import load_town
from carla_bridge.routes import ROUTES_DIR, Route, parse_routes, plan_route, plan_route_for

ROUTE_20 = """<?xml version="1.0" encoding="UTF-8"?>
<routes>
  <route id="7" town="Town01">
    <weathers><weather route_percentage="0" cloudiness="5.0"/></weathers>
    <waypoints>
      <position x="338.7" y="226.75" z="0.0"/>
      <position x="321.99" y="194.67" z="0.0"/>
      <position x="283.69" y="194.78" z="0.0"/>
    </waypoints>
    <scenarios/>
  </route>
</routes>
"""


def _check_plan(town, plan, waypoints):
    d = np.linalg.norm(plan.polyline[None, :, :] - waypoints[:, None, :2], axis=-1).min(1)
    assert d.max() < 2.0, d
    steps = np.linalg.norm(np.diff(plan.polyline, axis=0), axis=1)
    assert steps.max() <= 1.0 + 1e-6 and steps.min() > 0.5
    np.testing.assert_allclose(plan.s[1:], np.cumsum(steps), atol=1e-6)
    assert np.all(np.diff(plan.waypoint_s) >= 0) and len(plan.waypoint_s) == len(waypoints)
    # Consecutive lanes are connected by a successor edge or a permitted lane change.
    for a, b in zip(plan.lane_ids, plan.lane_ids[1:]):
        la = town.lanes[a]
        assert b in la.successors or b in (la.left, la.right), (la.key, town.lanes[b].key)
    # The route drives its lanes forwards.
    lane, _, _ = town.project(plan.polyline, yaw=plan.yaw)
    lyaw = np.array(
        [town.lanes[i].interpolate(s)[1][0] for i, s in zip(lane, town.project(plan.polyline, plan.yaw)[1])]
    )
    assert np.mean(np.abs(np.angle(np.exp(1j * (lyaw - plan.yaw)))) < np.deg2rad(20)) > 0.97


def test_parse_devtest_routes_format_1():
    routes = parse_routes("routes_devtest.xml")
    assert [r.id for r in routes] == ["0", "1", "2", "3"]
    assert [r.town for r in routes] == ["Town01", "Town03", "Town04", "Town06"]
    raw = ET.parse(ROUTES_DIR / "routes_devtest.xml").getroot().find("route").findall("waypoint")
    r0 = routes[0]
    assert r0.format == "1.0" and r0.num_waypoints == len(raw) == 11
    x, y, yaw = (float(raw[0].get(k)) for k in ("x", "y", "yaw"))
    np.testing.assert_allclose(r0.waypoints_world[0], [x, -y, 0.0])
    assert r0.yaw[0] == pytest.approx(np.angle(np.exp(-1j * np.deg2rad(yaw))))
    assert parse_routes(ROUTES_DIR / "routes_training.xml")[-1].id == "49"


def test_parse_format_2(tmp_path):
    p = tmp_path / "routes20.xml"
    p.write_text(ROUTE_20)
    (r,) = parse_routes(p)
    assert (r.id, r.town, r.format) == ("7", "Town01", "2.0")
    np.testing.assert_allclose(r.waypoints_world[:, :2], [[338.7, -226.75], [321.99, -194.67], [283.69, -194.78]])
    assert np.isnan(r.yaw).all()
    plan = plan_route_for(r)  # without yaw the lane direction comes from the path search
    _check_plan(load_town("Town01"), plan, r.waypoints_world)


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("<routes><route id='0' town='Town01'>", "not valid XML"),
        ("<routes></routes>", "no <route>"),
        ("<routes><route id='0'><waypoint x='0' y='0' z='0'/></route></routes>", "lacks the 'town'"),
        ("<routes><route id='0' town='Town01'></route></routes>", "empty route"),
        ("<routes><route id='0' town='Town01'><waypoint x='a' y='0' z='0'/></route></routes>", "not a number"),
        ("<routes><route id='0' town='Town01'><waypoint x='1' z='0'/></route></routes>", "lacks attribute 'y'"),
    ],
)
def test_malformed_route_files_are_clear_value_errors(tmp_path, text, msg):
    p = tmp_path / "bad.xml"
    p.write_text(text)
    with pytest.raises(ValueError, match=msg):
        parse_routes(p)


def test_missing_routes_file_and_unknown_town(tmp_path):
    with pytest.raises(FileNotFoundError, match="routes file not found"):
        parse_routes(tmp_path / "nope.xml")
    p = tmp_path / "r.xml"
    p.write_text("<routes><route id='0' town='Town10HD'><waypoint x='0' y='0' z='0'/></route></routes>")
    (r,) = parse_routes(p)
    with pytest.raises(FileNotFoundError, match="Town10HD"):
        plan_route_for(r)


def test_off_map_route_does_not_snap(town01):
    r = Route("x", "Town01", np.array([[88.4, -250.0, 0.0], [5000.0, 5000.0, 0.0]]), np.full(2, np.nan))
    with pytest.raises(ValueError, match=r"waypoint 1 .* does not snap to Town01"):
        plan_route_for(r, town01)
    with pytest.raises(ValueError, match="waypoints must have shape"):
        plan_route(town01, np.zeros((0, 3)))


def test_devtest_route_town01_passes_all_waypoints_on_the_shortest_lane_path(town01):
    r = parse_routes("routes_devtest.xml")[0]
    plan = plan_route_for(r, town01)
    _check_plan(town01, plan, r.waypoints_world)
    # Independent reference: scipy Dijkstra over the lane graph (no lane changes exist in Town01),
    # between the lanes the planner snapped the first two waypoints to.
    n = len(town01.lanes)
    rows, cols, w = [], [], []
    for ln in town01.lanes:
        for k in ln.successors:
            rows.append(ln.id)
            cols.append(k)
            w.append(ln.length)
    graph = csr_matrix((w, (rows, cols)), shape=(n, n))
    lane, s, _ = town01.project(r.waypoints_world[:2, :2], yaw=r.yaw[:2])
    dist = dijkstra(graph, indices=int(lane[0]))[int(lane[1])]
    ref = dist - s[0] + s[1] if lane[0] != lane[1] or s[1] < s[0] else s[1] - s[0]
    assert plan.waypoint_s[1] - plan.waypoint_s[0] == pytest.approx(ref, abs=1.5)


def test_devtest_route_with_lane_changes_town04():
    town = load_town("Town04")
    r = parse_routes("routes_devtest.xml")[2]
    plan = plan_route_for(r, town)
    _check_plan(town, plan, r.waypoints_world)
    assert plan.length > 2000.0
    changes = [
        (a, b) for a, b in zip(plan.lane_ids, plan.lane_ids[1:]) if b in (town.lanes[a].left, town.lanes[a].right)
    ]
    assert changes, "the Town04 devtest route needs lane changes"
    for a, _ in changes:  # only where the markings permit (neighbours are set from waypoint.lane_change)
        assert town.lanes[a].left_marking != "Solid" or town.lanes[a].right_marking != "Solid"


def test_route_through_generated_crossroads_turns_left(crossroads):
    # From the west arm (driving east) to the north arm (driving north).
    plan = plan_route(crossroads, np.array([[-40.0, -1.75], [1.75, 40.0]]))
    _check_plan(crossroads, plan, np.array([[-40.0, -1.75], [1.75, 40.0]]))
    turn = [crossroads.lanes[i] for i in plan.lane_ids if crossroads.lanes[i].is_junction]
    assert len(turn) == 1
    assert turn[0].length == pytest.approx(np.pi / 2 * 10.0 + np.pi / 2 * 1.75, rel=0.02)
