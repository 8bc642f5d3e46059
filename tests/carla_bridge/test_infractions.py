"""Each criterion on hand-computed cases from the reference's own rules (scenario_runner, branch
leaderboard-2.0, `srunner/scenariomanager/scenarioatomics/atomic_criteria.py` and `timer.py`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carla_bridge.infractions import (
    LaneFacts,
    MinSpeedState,
    OutsideLanesState,
    RoutePoints,
    StopBoxes,
    StopLines,
    blocked_update,
    collision_update,
    completion_update,
    full_route_budget,
    lane_facts,
    min_speed_finish,
    min_speed_update,
    outside_lanes_update,
    red_light_candidates,
    route_deviation_update,
    route_timeout_update,
    scenario_timed_out,
    stop_sign_step,
    traffic_mean_speed,
    yield_update,
)
from carla_bridge.infractions.outside_lanes import parking_lanes
from carla_bridge.infractions.red_light import segments_intersect
from carla_bridge.infractions.stop_sign import affected
from carla_bridge.maps import load_town
from carla_bridge.rules import load_rules

LB = load_rules("leaderboard-2.0")
B2D = load_rules("bench2drive")
HALF = 0.5 * 4.084  # the ego's half length [m]


def straight_route(length: int = 100, speed_limit: float = 10.0) -> RoutePoints:
    """Waypoints every metre along +x from 0 to `length` (one road, lane -1)."""
    x = np.arange(0.0, length + 1.0)
    r = len(x)
    return RoutePoints(
        xy=np.stack([x, np.zeros(r)], -1),
        forward=np.tile([1.0, 0.0], (r, 1)),
        yaw=np.zeros(r),
        accum=x.copy(),
        lane=np.zeros(r, dtype=np.int64),
        road_lane=np.tile([1, -1], (r, 1)).astype(np.int64),
        junction=np.zeros(r, dtype=bool),
        width=np.full(r, 3.5),
        speed_limit=np.full(r, speed_limit),
    )


def test_route_completion_windows_rounding_and_success():
    """RouteCompletionTest.update: the last waypoint passed among index..index+2 (dot product > 0);
    value = accumulated % rounded to 0.01; complete (100) above 99 % within 10 m of the last waypoint."""
    pts = straight_route(100)
    index, pct, done = completion_update(
        pts,
        np.array([[0.5, 0.0], [5.5, 0.0], [1.0, 0.0]]),
        np.zeros(3, dtype=np.int64),
        np.zeros(3, bool),
        LB.completion,
    )
    assert index.tolist() == [0, 2, 0]  # x = 1.0 has not passed waypoint 1 (dot product 0)
    assert pct.tolist() == [0.0, 2.0, 0.0] and not done.any()
    # the window limits the advance to 2 waypoints per tick
    i, d = np.array([0]), np.array([False])
    for _ in range(49):
        i, pct, d = completion_update(pts, np.array([[100.5, 0.0]]), i, d, LB.completion)
    assert int(i[0]) == 98 and pct[0] == 98.0 and not d[0]
    i, pct, d = completion_update(pts, np.array([[100.5, 0.0]]), i, d, LB.completion)
    assert int(i[0]) == 100 and pct[0] == 100.0 and d[0]
    # 99.5 % but 12 m from the end: the value, not the success
    short = straight_route(200)
    i, pct, d = completion_update(short, np.array([[199.5, 12.0]]), np.array([198]), np.array([False]), LB.completion)
    assert pct[0] == 99.5 and not d[0]
    i, pct, d = completion_update(short, np.array([[199.5, 1.0]]), i, d, LB.completion)
    assert pct[0] == 100.0 and d[0]
    three = straight_route(3)
    _, pct, _ = completion_update(three, np.array([[1.5, 0.0]]), np.array([0]), np.array([False]), LB.completion)
    assert pct[0] == 33.33


def _collide(contact, ids, x, speed, t, mem):
    counted, *mem = collision_update(
        np.array([contact]), np.array([ids]), np.array([[x, 0.0]]), np.array([speed]), np.array([t]), *mem, LB.collision
    )
    return counted[0].tolist(), mem


def test_collision_dedupe_by_actor_place_and_time_and_the_stopped_ego():
    """CollisionTest._count_collisions and update: reports below 0.1 m/s are dropped (and not
    remembered); one actor counts once per 5 s, one place once until the ego is 5 m away; the first
    counted report of a tick masks the others (same place)."""
    mem = [np.array([-1]), np.zeros(1), np.zeros((1, 2)), np.array([False])]
    ids = [7, 8]
    c, mem = _collide([True, False], ids, 0.0, 0.05, 0.05, mem)  # stopped ego is hit
    assert c == [False, False] and mem[0][0] == -1 and not mem[3][0]
    c, mem = _collide([True, False], ids, 0.0, 2.0, 0.10, mem)  # now moving: counted
    assert c == [True, False] and mem[0][0] == 7
    c, mem = _collide([True, True], ids, 0.1, 2.0, 0.15, mem)  # same actor; another within 5 m
    assert c == [False, False]
    c, mem = _collide([False, False], ids, 5.0, 2.0, 2.0, mem)  # exactly 5 m: still the same place
    assert mem[3][0]
    c, mem = _collide([False, False], ids, 5.01, 2.0, 2.05, mem)  # beyond 5 m: the place is forgotten
    assert not mem[3][0] and mem[0][0] == 7
    c, mem = _collide([False, True], ids, 5.02, 2.0, 2.10, mem)  # another actor elsewhere: counted
    assert c == [False, True] and mem[0][0] == 8
    mem[3][0] = False  # (as if the ego had moved on: only the actor memory is left)
    c, mem = _collide([False, True], ids, 20.0, 2.0, 7.10, mem)  # 5.0 s later: still the same actor
    assert c == [False, False] and mem[0][0] == 8
    c, mem = _collide([False, True], ids, 20.0, 2.0, 7.15, mem)  # checked before update() forgets it
    assert c == [False, False] and mem[0][0] == -1
    c, mem = _collide([False, True], ids, 20.0, 2.0, 7.20, mem)
    assert c == [False, True]
    # two reports in one tick: the first counted masks the second (same place)
    mem2 = [np.array([-1]), np.zeros(1), np.zeros((1, 2)), np.array([False])]
    c, _ = _collide([True, True], ids, 0.0, 1.0, 0.05, mem2)
    assert c == [True, False]


def _lines(centre=(10.0, 0.0)) -> StopLines:
    return StopLines(
        head=np.array([0]),
        xy=np.array([[10.0, 0.0]]),
        forward=np.array([[1.0, 0.0]]),
        width=np.array([3.5]),
        road_lane=np.array([[1, -1]]),
        centre=np.array([centre]),
    )


def _red(x, y=0.0, yaw=0.0, red=True, last=-1, centre=(10.0, 0.0)):
    return red_light_candidates(
        np.array([[x, y]]), np.array([yaw]), np.array([[red]]), np.array([last]), _lines(centre), HALF, LB.red_light
    )


def test_red_light_is_the_rear_crossing_the_stop_line():
    """RunningRedLightTest.update: the segment from 0.8 × half-length behind the centre to 1 m behind
    the rear crosses the stop line (± 0.6 lane widths) of a red light within 15 m. Stop line x = 10:
    it fires for centres in [10 + 0.8·2.042, 10 + 2.042 + 1] = [11.634, 13.042]."""
    assert _red(11.63) == [] and _red(11.64) == [(0, 0)]
    assert _red(13.04) == [(0, 0)] and _red(13.05) == []
    assert _red(8.0) == []  # the front bumper (x = 10.04) crossing does not count
    assert _red(12.0, red=False) == [] and _red(12.0, last=0) == []  # green; the light already run
    assert _red(12.0, y=2.0) == [(0, 0)] and _red(12.0, y=2.2) == []  # the line spans ± 0.6 × 3.5 m
    assert _red(12.0, centre=(27.01, 0.0)) == []  # the light more than 15 m away is out of reach
    assert _red(12.0, centre=(27.0, 0.0)) == [(0, 0)]  # exactly 15 m is not
    assert _red(12.0, yaw=math.pi) == []  # heading against the lane
    # touching counts (shapely's intersection of touching segments is a point)
    a, b = np.array([0.0, 0.0]), np.array([1.0, 0.0])
    assert segments_intersect(a, b, np.array([1.0, -1.0]), np.array([1.0, 1.0]))
    assert not segments_intersect(a, b, np.array([1.01, -1.0]), np.array([1.01, 1.0]))


def _box() -> StopBoxes:
    return StopBoxes(
        centre=np.array([[20.0, 0.0]]), half=np.array([0.9 * 3.5 / 2]), lane=np.array([0]), sign=np.array([0])
    )


def _wps(x):
    return np.stack([x + 0.5 * np.arange(9), np.zeros(9)], -1), np.array([1.0, 0.0])


def _stop_run(xs, speeds, state=(-1, False, -1), heading=0.0):
    target, completed, last = state
    ran = []
    for x, v in zip(xs, speeds):
        pts, d = _wps(x)
        target, completed, last, r = stop_sign_step(pts, d, heading, v, target, completed, last, _box(), LB.stop_sign)
        if r >= 0:
            ran.append(round(x, 2))
    return ran, (target, completed, last)


def test_stop_sign_must_stop_while_affected():
    """RunningStopTest: a sign affects the ego while its lane point is ≤ 4 m from the box centre and a
    check waypoint (every 0.5 m up to 4 m ahead) lies inside the box grown ×1.2 (half 1.2·1.575 =
    1.89 m): for the box at x = 20, egos at x ∈ [16, 21.89). The stop counts from the tick after the
    sign is acquired; leaving without it is one infraction, never twice in a row for the same sign."""
    assert not affected(_wps(15.99)[0], 0, _box(), LB.stop_sign) and affected(_wps(16.0)[0], 0, _box(), LB.stop_sign)
    assert affected(_wps(21.88)[0], 0, _box(), LB.stop_sign) and not affected(_wps(21.9)[0], 0, _box(), LB.stop_sign)
    xs = list(np.arange(15.0, 24.0, 0.15))
    ran, state = _stop_run(xs, [3.0] * len(xs))  # rolls through at 3 m/s
    assert ran == [21.9] and state == (-1, False, 0)
    ran, _ = _stop_run(xs, [3.0] * len(xs), state)  # the same sign again: not counted twice
    assert ran == []
    speeds = [0.0 if abs(x - 17.1) < 0.01 else 3.0 for x in xs]  # one tick below 0.1 m/s at x = 17.1
    assert _stop_run(xs, speeds)[0] == []
    speeds = [0.0 if abs(x - 16.05) < 0.01 else 3.0 for x in xs]  # stopped only on the acquiring tick
    assert _stop_run(xs, speeds)[0] == [21.9]
    assert _stop_run(xs, [3.0] * len(xs), heading=math.pi)[0] == []  # against the lane: never acquired


def _facts(outside=False, road=1, lane=-1, junction=False, yaw=0.0) -> LaneFacts:
    return LaneFacts(np.array([outside]), np.array([road]), np.array([lane]), np.array([junction]), np.array([yaw]))


def _ol_state(active=True) -> OutsideLanesState:
    return OutsideLanesState(
        index=np.array([0]),
        total=np.zeros(1),
        wrong=np.zeros(1),
        wrong_lane=np.array([False]),
        last_road=np.array([-1]),
        last_lane=np.array([-1]),
        last_junction=np.array([False]),
        last_yaw=np.zeros(1),
        direction_active=np.array([active]),
    )


def _ol_drive(facts_of, active=True, ego_yaw=0.0):
    pts, st = straight_route(10), _ol_state(active)
    for x in np.arange(0.5, 10.51, 0.5):
        st = outside_lanes_update(pts, np.array([[x, 0.0]]), np.array([ego_yaw]), facts_of(x), st, LB.outside_lanes)
    return st


def test_outside_route_lanes_distance_over_route_driven():
    """OutsideRouteLanesTest.update: each passed route waypoint adds its distance to the total, and to the
    wrong distance when the ego is outside the lanes or in a wrong lane at that tick. Ego at
    x = 0.5, 1, …, 10.5 passes waypoint k at x = k + 0.5; outside for 4 < x < 7 → waypoints 4, 5, 6."""
    st = _ol_drive(lambda x: _facts(outside=4 < x < 7))
    assert st.total[0] == 10.0 and st.wrong[0] == 3.0 and st.percentage()[0] == 30.0
    # a lane change into the opposite lane (direction turns 180° > 150°) and back: wrong in between
    opposite = lambda x: _facts(lane=1, yaw=math.pi) if 4 < x < 7 else _facts()  # noqa: E731
    st = _ol_drive(opposite)
    assert st.wrong[0] == 3.0 and not st.wrong_lane[0]
    assert _ol_drive(opposite, active=False).wrong[0] == 0.0  # the scenario switched the test off
    # leaving a junction onto a lane heading 130° from the ego: wrong (≥ 120°); 110°: fine
    for angle, wrong in ((130.0, 2.0), (110.0, 0.0)):
        after = lambda x, a=angle: (  # noqa: E731
            _facts(road=5, lane=-1, junction=True) if 2 < x < 9 else _facts(road=9, lane=-1, yaw=math.radians(a))
        )
        st = _ol_drive(after)
        assert st.wrong[0] == wrong, angle  # exit at x = 9.0: waypoints 9 and 10 are passed after it


def test_lane_facts_on_real_towns_driving_and_parking():
    """OutsideRouteLanesTest._is_outside_driving_lanes: outside when farther than half the lane width +
    0.5 m from the nearest driving and parking lane centre (the nearer one's width)."""
    town = load_town("Town01")
    ln = next(x for x in town.lanes if not x.is_junction and x.length > 50 and x.right is None)
    p, yaw = ln.interpolate(25.0)
    right = np.array([np.sin(yaw[0]), -np.cos(yaw[0])])
    w = float(np.interp(25.0, ln.s, ln.widths))
    pts = np.stack([p[0], p[0] + right * (w / 2 + 0.45), p[0] + right * (w / 2 + 0.6)])
    f = lane_facts(town, parking_lanes(town), pts, LB.outside_lanes)
    assert f.outside.tolist() == [False, False, True]
    assert (f.road == ln.road_id).all() and (f.lane == ln.lane_id).all()
    assert abs(math.remainder(f.yaw[0] - yaw[0], 2 * math.pi)) < 1e-6
    town3 = load_town("Town03")  # Town03 has parking lanes; Town01 none
    assert parking_lanes(town).tree is None
    park = parking_lanes(town3)
    assert len(park.xy) > 100
    probe = park.xy[:: max(1, len(park.xy) // 40)]
    f3 = lane_facts(town3, park, probe, LB.outside_lanes)
    assert not f3.outside.any()  # on a parking lane is inside
    lane, s, _ = town3.project(probe)
    far = [
        np.linalg.norm(probe[j] - town3.lanes[int(lane[j])].interpolate(float(s[j]))[0][0])
        > town3.lanes[int(lane[j])].width / 2 + 0.5
        for j in range(len(probe))
    ]
    assert any(far)  # …though outside every driving lane


def test_in_route_deviation_far_or_too_much_route_beyond_15_m():
    """InRouteTest.update: the nearest waypoint among index..index+5; ≥ 30 m → deviated; the route
    advanced while last seen ≥ 15 m away adds up, deviated once above 30 % of the route (100 m route:
    the 31st metre)."""
    pts = straight_route(100)
    _, _, safe, dev = route_deviation_update(
        pts,
        np.array([[0.0, 31.0], [0.0, 29.9]]),
        np.zeros(2, dtype=np.int64),
        np.zeros(2),
        np.ones(2, bool),
        LB.route_deviation,
    )
    assert dev.tolist() == [True, False] and not safe[1]
    for y, fires_at in ((16.0, 31), (14.0, None)):
        i, o, s = np.array([0]), np.zeros(1), np.array([True])
        fired = None
        for x in range(1, 60):
            i, o, s, d = route_deviation_update(pts, np.array([[float(x), y]]), i, o, s, LB.route_deviation)
            if d[0] and fired is None:
                fired = x
        assert fired == fires_at, y


def test_min_speed_checkpoints_against_all_background_traffic():
    """MinimumSpeedRouteTest.update/_set_traffic_event/terminate: per route quarter, round(ego mean /
    traffic mean × 100, 2) over the frames with background vehicles (the crossing tick's speeds count
    for the next part); no moving traffic → 100; the last part judged beyond 95 %. Bench2Drive: 20 parts,
    an event at every checkpoint."""
    speed, has = traffic_mean_speed(
        np.array([[0.0, 4.0, 8.0], [1.0, 1.0, 1.0]]), np.array([[True, True, False], [False] * 3])
    )
    assert speed.tolist() == [2.0, 0.0] and has.tolist() == [True, False]
    pts = straight_route(100)
    z = np.zeros(1)
    st = MinSpeedState(np.array([0]), z, z, z, z)
    judged_at = {}
    for i in range(1, 98):
        ego, traffic = (4.0, 8.0) if i <= 25 else (6.0, 6.0)
        has_traffic = np.array([i != 10])  # a frame without background vehicles: not counted
        st, judged = min_speed_update(
            pts, np.array([[i + 0.5, 0.0]]), np.array([ego]), np.array([traffic]), has_traffic, st, LB.min_speed
        )
        judged_at.update(dict.fromkeys([i] if judged else [], judged.get(0)))
    assert judged_at == {26: 50.0, 52: 100.0, 78: 100.0}
    assert min_speed_finish(pts, st, np.array([0]), LB.min_speed) == {0: 100.0}  # index 97 > 95 %
    st95 = MinSpeedState(np.array([95]), z, np.array([10.0]), np.array([1.0]), np.array([5.0]))
    assert min_speed_finish(pts, st95, np.array([0]), LB.min_speed) == {}
    stopped = MinSpeedState(np.array([97]), z, np.zeros(1), np.array([3.0]), np.array([5.0]))
    assert min_speed_finish(pts, stopped, np.array([0]), LB.min_speed) == {0: 100.0}  # traffic all stopped
    assert B2D.min_speed.checkpoints == 20 and B2D.min_speed.event_every_checkpoint


def test_actor_blocked_clock():
    """ActorBlockedTest.update: the clock starts at the first tick and restarts at every tick at or
    above 0.1 m/s; blocked once below it for more than max_time (180 s; Bench2Drive 60 s)."""
    for rules, expect in ((LB, 181.0), (B2D, 61.0)):
        since, fired = np.array([-math.inf]), None
        for k in range(1, 500):
            t = 0.5 * k
            since, b = blocked_update(np.array([0.0]), np.array([t]), since, np.array([True]), rules.blocked)
            if b[0] and fired is None:
                fired = t
        assert fired == expect  # since = 0.5; blocked when t − 0.5 > max_time
    since, b = blocked_update(
        np.array([0.1, 0.0]), np.array([200.0, 200.0]), np.array([1.0, 1.0]), np.array([True, False]), LB.blocked
    )
    assert since.tolist() == [200.0, 1.0] and not b.any()  # moving restarts; switched off: nothing


def test_route_timeout_budget_grows_with_the_route_passed():
    """RouteTimeoutBehavior.update: 300 s plus, for every metre of route passed (window 3), 1 / (10 % of
    the speed limit) s; timed out once the elapsed time exceeds the budget."""
    pts = straight_route(100, speed_limit=10.0)  # 1 m/s → 1 s per metre
    assert full_route_budget(pts, LB.route_timeout) == pytest.approx(400.0)
    i, budget = np.array([0]), np.array([300.0])
    for k in range(1, 50):
        i, budget, out = route_timeout_update(
            pts, np.array([[k + 0.5, 0.0]]), np.array([0.1 * k]), i, budget, LB.route_timeout
        )
    assert budget[0] == pytest.approx(349.0) and not out[0]
    i, budget, out = route_timeout_update(pts, np.array([[60.5, 0.0]]), np.array([5.0]), i, budget, LB.route_timeout)
    assert int(i[0]) == 52 and budget[0] == pytest.approx(352.0)  # a jump: 3 waypoints a tick
    _, _, out = route_timeout_update(
        pts,
        np.array([[0.0, 0.0], [0.0, 0.0]]),
        np.array([300.0, 300.05]),
        np.zeros(2, dtype=np.int64),
        np.full(2, 300.0),
        LB.route_timeout,
    )
    assert out.tolist() == [False, True]


def test_yield_to_emergency_vehicle_and_scenario_timeout():
    """YieldToEmergencyVehicleTest.update: failing while the ego is ahead of the emergency vehicle
    (ev_forward · (ego − ev) > 0); ScenarioTimeout.update: done once elapsed > duration."""
    f = yield_update(np.array([[5.0, 0.0], [-5.0, 1.0], [0.0, 3.0]]), np.zeros((3, 2)), np.zeros(3))
    assert f.tolist() == [True, False, False]
    assert scenario_timed_out(np.array([180.0, 180.05]), 180.0).tolist() == [False, True]
    with pytest.raises(ValueError, match="duration"):
        scenario_timed_out(np.zeros(1), 0.0)


def test_stop_box_placement_as_carla(crossroads):
    """UStopSignComponent::InitializeSign: the box (half size 0.9 × half the lane width) sits on the
    signal's lane at its s moved back by that half size. The generated crossroads puts each stop signal
    1.5 m before the junction on 3.5 m lanes: centre 1.5 + 1.575 m before the junction entry."""
    from carla_bridge.infractions import stop_boxes

    boxes = stop_boxes(crossroads, LB.stop_sign)
    assert len(boxes.half) == len(crossroads.stop_signs) == 4
    for k, st in enumerate(crossroads.stop_signs):
        ln = crossroads.lanes[st.lane_id]
        entry = ln.points[-1]
        assert boxes.half[k] == pytest.approx(0.9 * ln.width / 2)
        assert np.linalg.norm(boxes.centre[k] - entry) == pytest.approx(1.5 + boxes.half[k], abs=1e-3)
        assert boxes.lane[k] == st.lane_id and boxes.sign[k] == st.id
    assert len(stop_boxes(load_town("Town01"), LB.stop_sign).half) == 0  # no stop signals in Town01


def test_collision_sensor_contacts_match_the_box_overlap_reference(town01, town01_map_data):
    """The sensor's contacts (bounding circles, then a separating-axis test) equal `agents.boxes.boxes_overlap`
    on the agents of real Town01 worlds, the ego moved over a grid of places, and count touching boxes."""
    import torch

    from agents.boxes import boxes_overlap
    from carla_bridge.infractions.collision import contacts
    from carla_bridge.lite.config import LiteConfig
    from carla_bridge.lite.population import PED_SIZE
    from carla_bridge.lite.views import agent_boxes
    from tests.carla_bridge.sim_testkit import make_world

    w = make_world(town01, town01_map_data, LiteConfig(num_vehicles=60, num_pedestrians=40, num_parked=12), seed=4)
    st = w.state
    boxes, valid, *_ = agent_boxes(st)
    rng = np.random.default_rng(0)
    picks = boxes[0, valid[0]].numpy()
    egos = picks[rng.integers(len(picks), size=400), :2] + rng.normal(0.0, 2.5, (400, 2))
    ego = np.concatenate([egos, rng.uniform(-np.pi, np.pi, (400, 1)), np.tile([4.084, 1.85], (400, 1))], -1)
    many = st.select(torch.zeros(400, dtype=torch.int64))
    got = contacts(ego, many.vehicles, many.pedestrians, many.statics, PED_SIZE[:2])
    ref = (boxes_overlap(torch.from_numpy(ego)[:, None, :], boxes.expand(400, -1, -1))[:, 0, :] & valid).numpy()
    assert got.sum() > 20 and (got == ref).all()
    # exactly touching boxes (a shared edge) are in contact, as in the reference
    c, s = math.cos(picks[0, 2]), math.sin(picks[0, 2])
    centre = picks[0, :2] + 0.5 * (picks[0, 3] + 4.084) * np.array([c, s])  # nose to tail, same heading
    touching = np.array([[centre[0], centre[1], picks[0, 2], 4.084, 1.85]])
    assert boxes_overlap(torch.from_numpy(touching)[:, None, :], torch.from_numpy(picks[:1])[None])[0, 0, 0]
    one = st.select(torch.zeros(1, dtype=torch.int64))
    assert contacts(touching, one.vehicles, one.pedestrians, one.statics, PED_SIZE[:2])[
        0, np.flatnonzero(valid[0].numpy())[0]
    ]
