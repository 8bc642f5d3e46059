"""Leaderboard-2.0 `<scenarios>` and `<weathers>` parsing and writing.

Reference: carla-simulator/leaderboard (branch leaderboard-2.0), `leaderboard/utils/route_parser.py`:
`RouteParser.parse_routes_file` (a scenario's name, type, first trigger point as a transform, every other
child element as `other_parameters[tag] = attrib`) and `RouteParser.parse_weather` (base weather
`WeatherParameters(sun_altitude_angle=70, cloudiness=50)` per `<weather>`, its known attributes set,
sorted by `route_percentage`, the base weather at 0 % without `<weathers>`); the parameter readers are
srunner's `get_value_parameter` / `get_interval_parameter` (`srunner/scenarios/route_obstacles.py`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from carla_bridge.routes import Route, ScenarioConfig, Weather, parse_routes, write_routes

# A fixture in the leaderboard-2.0 vocabulary (types and parameters as in data/routes_training.xml).
ROUTES = """<?xml version="1.0" encoding="UTF-8"?>
<routes>
   <route id="3" town="Town01">
      <weathers>
         <weather route_percentage="100" cloudiness="5.0" sun_altitude_angle="15.0" fog_density="2.0"/>
         <weather route_percentage="0" cloudiness="80.0" precipitation="30.0" wetness="10.0" not_a_field="3"/>
      </weathers>
      <waypoints>
         <position x="338.7" y="226.75" z="0.0"/>
         <position x="321.99" y="194.67" z="0.0"/>
      </waypoints>
      <scenarios>
         <scenario name="AccidentTwoWays_1" type="AccidentTwoWays">
            <trigger_point x="335.0" y="210.2" z="0.1" yaw="-90.0"/>
            <distance value="88"/>
            <frequency from="25" to="89"/>
         </scenario>
         <scenario name="EnterActorFlow_1" type="EnterActorFlow">
            <trigger_point x="330.0" y="200.0" z="0.0" yaw="179.9"/>
            <trigger_point x="1.0" y="2.0" z="3.0" yaw="4.0"/>
            <start_actor_flow x="-610.5" y="3104.7" z="357.2"/>
            <end_actor_flow x="578.5" y="3078.9" z="364.4"/>
            <flow_speed value="18"/>
            <source_dist_interval from="20" to="40"/>
            <other_actor x="1" y="2" z="3" yaw="0" model="vehicle.*"/>
         </scenario>
         <scenario name="HardBreakRoute_1" type="HardBreakRoute">
            <trigger_point x="322.0" y="196.0" z="0.0" yaw="-120.0"/>
         </scenario>
      </scenarios>
   </route>
   <route id="4" town="Town01">
      <waypoints><position x="338.7" y="226.75" z="0.0"/><position x="321.99" y="194.67" z="0.0"/></waypoints>
   </route>
</routes>
"""


@pytest.fixture
def routes(tmp_path):
    p = tmp_path / "lb2.xml"
    p.write_text(ROUTES)
    with pytest.warns(UserWarning, match="not_a_field"):
        return parse_routes(p)


def test_scenarios_are_parsed_as_the_route_parser_does(routes):
    r = routes[0]
    assert [s.name for s in r.scenarios] == ["AccidentTwoWays_1", "EnterActorFlow_1", "HardBreakRoute_1"]
    assert [s.type for s in r.scenarios] == ["AccidentTwoWays", "EnterActorFlow", "HardBreakRoute"]
    acc, flow, brake = r.scenarios
    # trigger point: a CARLA transform → world frame (y mirrored, yaw clockwise degrees → counter-clockwise rad)
    np.testing.assert_allclose(acc.trigger_world, [335.0, -210.2, 0.1])
    assert acc.trigger_yaw == pytest.approx(math.pi / 2)
    assert flow.trigger_yaw == pytest.approx(math.radians(-179.9))
    np.testing.assert_allclose(flow.trigger_world, [330.0, -200.0, 0.0])  # the first trigger point is used
    # other_parameters[tag] = attrib, strings as in the file
    assert dict(acc.params) == {"distance": {"value": "88"}, "frequency": {"from": "25", "to": "89"}}
    assert set(flow.params) == {"start_actor_flow", "end_actor_flow", "flow_speed", "source_dist_interval"}
    assert [dict(a) for a in flow.other_actors] == [{"x": "1", "y": "2", "z": "3", "yaw": "0", "model": "vehicle.*"}]
    assert dict(brake.params) == {}
    # the parameter readers
    assert acc.value("distance", float, 120.0) == 88.0
    assert acc.value("direction", str, "right") == "right"  # absent → default
    assert acc.interval("frequency", (20.0, 100.0)) == (25.0, 89.0)
    assert brake.interval("frequency", (20.0, 100.0)) == (20.0, 100.0)
    np.testing.assert_allclose(flow.location("start_actor_flow"), [-610.5, -3104.7, 357.2])
    assert flow.location("missing") is None
    assert routes[1].scenarios == ()


def test_weathers_sorted_on_the_base_weather(routes):
    w0, w1 = routes[0].weathers
    assert (w0.route_percentage, w1.route_percentage) == (0.0, 100.0)
    base = Weather.base().params
    assert base["sun_altitude_angle"] == 70.0 and base["cloudiness"] == 50.0
    assert (w0.params["cloudiness"], w0.params["precipitation"], w0.params["wetness"]) == (80.0, 30.0, 10.0)
    assert w0.params["sun_altitude_angle"] == 70.0  # not given: the base weather's
    assert "not_a_field" not in w0.params
    assert (w1.params["sun_altitude_angle"], w1.params["fog_density"]) == (15.0, 2.0)
    (only,) = routes[1].weathers  # no <weathers>: the base weather at 0 %
    assert only.route_percentage == 0.0 and dict(only.params) == dict(base)


@pytest.mark.parametrize(
    ("scenario", "msg"),
    [
        ('<scenario type="Accident"><trigger_point x="0" y="0" z="0" yaw="0"/></scenario>', "lacks its 'name'"),
        ('<scenario name="A_1"><trigger_point x="0" y="0" z="0" yaw="0"/></scenario>', "lacks its 'name' or 'type'"),
        ('<scenario name="A_1" type="Accident"><distance value="3"/></scenario>', "no <trigger_point>"),
        ('<scenario name="A_1" type="Accident"><trigger_point x="0" y="q" z="0" yaw="0"/></scenario>', "not a number"),
        ('<scenario name="A_1" type="Accident"><trigger_point x="0" y="0" z="0"/></scenario>', "lacks attribute 'yaw'"),
    ],
)
def test_malformed_scenarios_are_clear_errors(tmp_path, scenario, msg):
    p = tmp_path / "bad.xml"
    p.write_text(
        f"<routes><route id='0' town='Town01'><waypoints><position x='0' y='0' z='0'/></waypoints>"
        f"<scenarios>{scenario}</scenarios></route></routes>"
    )
    with pytest.raises(ValueError, match=msg):
        parse_routes(p)


def test_bad_parameter_values_name_the_scenario():
    params = {"distance": {"value": "far"}, "frequency": {"from": "1"}}
    cfg = ScenarioConfig("X_1", "Accident", np.zeros(3), 0.0, params)
    with pytest.raises(ValueError, match=r"X_1.*distance.*not a float"):
        cfg.value("distance", float, 1.0)
    with pytest.raises(ValueError, match=r"X_1.*frequency.*'from' and 'to'"):
        cfg.interval("frequency", (0.0, 1.0))
    with pytest.raises(ValueError, match="duplicate scenario names"):
        Route("0", "Town01", np.zeros((1, 3)), np.full(1, np.nan), scenarios=(cfg, cfg))


def test_routes_with_scenarios_pickle(routes):
    """Routes go to worker processes (the closed-loop harness pickles them)."""
    import pickle

    back = pickle.loads(pickle.dumps(routes))
    assert [s.name for s in back[0].scenarios] == [s.name for s in routes[0].scenarios]
    assert back[0].scenarios[0].params == routes[0].scenarios[0].params
    assert back[0].weathers[0].params == routes[0].weathers[0].params


def test_written_routes_parse_back_identically(tmp_path, routes):
    out = write_routes(tmp_path / "sub" / "again.xml", routes)
    assert not list(out.parent.glob("*.tmp"))  # written atomically
    back = parse_routes(out)
    for a, b in zip(routes, back):
        assert (a.id, a.town, b.format) == (b.id, b.town, "2.0")
        np.testing.assert_allclose(a.waypoints_world, b.waypoints_world, atol=0.006)
        assert [s.name for s in a.scenarios] == [s.name for s in b.scenarios]
        for sa, sb in zip(a.scenarios, b.scenarios):
            assert sa.type == sb.type and dict(sa.params) == dict(sb.params)
            np.testing.assert_allclose(sa.trigger_world, sb.trigger_world, atol=0.006)
            assert sa.trigger_yaw == pytest.approx(sb.trigger_yaw, abs=1e-4)
            assert [dict(x) for x in sa.other_actors] == [dict(x) for x in sb.other_actors]
        assert [w.route_percentage for w in a.weathers] == [w.route_percentage for w in b.weathers]
        for wa, wb in zip(a.weathers, b.weathers):
            assert wa.params == pytest.approx(dict(wb.params), rel=1e-5)
    with pytest.raises(ValueError, match="duplicate route ids"):
        write_routes(tmp_path / "dup.xml", [routes[0], routes[0]])
