"""Branch plan kinds chosen from the scene at the branch point (hand-built scenes, ego at the
origin heading +x), and the trajectories of the new kinds."""

import math

import numpy as np

from agents.states import AgentClass
from carla_bridge.recorder.branches import (
    BASE_KINDS,
    CUT_IN_SECONDS,
    LANE_OFFSET,
    branch_trajectories,
    choose_kinds,
    interaction_kinds,
)
from carla_bridge.recorder.config import BRANCH_KINDS

EGO = np.array([0.0, 0.0, 0.0, 0.0])
CAR, PED, CONE = int(AgentClass.CAR), int(AgentClass.PEDESTRIAN), int(AgentClass.TRAFFIC_CONE)


def _kinds(agents, ego=EGO):
    """agents: (x, y, yaw, class, parked) in the world frame."""
    a = np.asarray([r[:3] for r in agents], dtype=np.float64).reshape(-1, 3)
    c, s = math.cos(ego[3]), math.sin(ego[3])
    # place the hand-built ego-frame positions in the world
    center = np.stack([ego[0] + c * a[:, 0] - s * a[:, 1], ego[1] + s * a[:, 0] + c * a[:, 1]], 1)
    yaw = a[:, 2] + ego[3]
    vel = np.stack([np.cos(yaw), np.sin(yaw)], 1) * 5.0
    cls = np.asarray([r[3] for r in agents], dtype=np.int64)
    parked = np.asarray([r[4] for r in agents], dtype=bool)
    return interaction_kinds(ego, center, yaw, vel, cls, parked)


def test_each_interaction_gets_its_plan_kind():
    assert _kinds([(-8.0, 0.3, 0.0, CAR, False)]) == ["brake"]  # follower
    assert _kinds([(-3.0, 3.5, 0.05, CAR, False)]) == ["cut_in_left"]  # neighbour, left lane
    assert _kinds([(5.0, -3.4, 0.0, CAR, False)]) == ["cut_in_right"]
    assert _kinds([(30.0, 3.3, math.pi, CAR, False)]) == ["swerve_left"]  # oncoming
    assert _kinds([(12.0, -5.0, 1.0, PED, False)]) == ["swerve_right"]  # pedestrian on the right
    assert _kinds([(20.0, 10.0, -math.pi / 2, CAR, False)]) == ["accelerate"]  # crossing
    assert _kinds([(25.0, 0.0, 0.0, CAR, False)]) == ["accelerate"]  # leader
    # nothing to interact with: parked cars, cones, agents far away or behind on the other side
    assert _kinds([(-8.0, 0.3, 0.0, CAR, True), (10.0, 1.0, 0.0, CONE, False), (90.0, 0.0, math.pi, CAR, False)]) == []
    assert _kinds([(-10.0, 3.5, math.pi, CAR, False), (-5.0, -6.0, 0.0, PED, False)]) == []
    assert _kinds([]) == []


def test_kinds_ordered_by_distance_and_independent_of_ego_pose():
    scene = [(40.0, 3.5, math.pi, CAR, False), (-6.0, 0.0, 0.0, CAR, False), (10.0, -4.0, 0.0, PED, False)]
    want = ["brake", "swerve_right", "swerve_left"]
    assert _kinds(scene) == want
    assert _kinds(scene, ego=np.array([120.0, -35.0, 0.3, 2.0 * math.pi / 3])) == want


def test_choose_kinds():
    assert choose_kinds(2, ["swerve_left"], BRANCH_KINDS) == list(BASE_KINDS)
    assert choose_kinds(4, ["brake", "swerve_left"], BRANCH_KINDS) == ["keep", "brake", "swerve_left", "left_offset"]
    assert choose_kinds(4, [], BRANCH_KINDS) == list(BRANCH_KINDS[:4])
    k8 = choose_kinds(8, ["cut_in_right"], BRANCH_KINDS)
    assert len(k8) == len(set(k8)) == 8 and k8[2] == "cut_in_right"


def test_cut_in_trajectory_reaches_the_next_lane_ahead_of_keep():
    route = np.stack([np.arange(0.0, 200.0), np.zeros(200)], 1)
    traj = branch_trajectories(["keep", "cut_in_left", "cut_in_right"], route, EGO, 8.0)  # [K, F, 3], dt 0.05
    i = round(CUT_IN_SECONDS / 0.05)
    assert abs(traj[0, :, 1]).max() < 1e-9
    np.testing.assert_allclose(traj[1, i:, 1], LANE_OFFSET, atol=1e-6)
    np.testing.assert_allclose(traj[2, i:, 1], -LANE_OFFSET, atol=1e-6)
    # accelerating at 1.5 m/s²: 0.75 m further than `keep` after 1 s (along the route)
    j = round(1.0 / 0.05)
    assert abs(traj[1, j, 0] - traj[0, j, 0] - 0.75) < 0.05
