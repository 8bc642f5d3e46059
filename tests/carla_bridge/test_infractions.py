"""Each infraction criterion on a hand-made scene (batched over W worlds)."""

import math

import pytest
import torch

from agents.boxes import ego_boxes
from carla_bridge.infractions import (
    blocked_update,
    collision_update,
    min_speed_percentage,
    outside_lanes_update,
    outside_percentage,
    red_light_crossings,
    route_deviation,
    route_timeout_seconds,
    stop_sign_update,
)


def test_collisions_rising_edge_and_fault():
    # world 0: car 1 m ahead of the ego's front overlapping; world 1: car behind the ego, ego stopped
    ego = ego_boxes(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    ego_speed = torch.tensor([5.0, 0.0])
    others = torch.tensor(
        [
            [[3.4 + 2.0, 0.0, 0.0, 4.5, 1.9], [50.0, 0.0, 0.0, 4.5, 1.9]],
            [[-2.5, 0.2, 0.0, 4.5, 1.9], [0.0, 10.0, 0.0, 4.5, 1.9]],
        ]
    )
    valid = torch.ones(2, 2, dtype=torch.bool)
    contact, new, fault = collision_update(ego, ego_speed, others, valid, torch.zeros(2, 2, dtype=torch.bool))
    assert contact.tolist() == [[True, False], [True, False]]
    assert new.tolist() == contact.tolist()
    assert fault.tolist() == [[True, False], [False, False]]
    # persisting contact is not a new collision; invalid slots never collide
    contact2, new2, _ = collision_update(ego, ego_speed, others, valid, contact)
    assert contact2.equal(contact) and not new2.any()
    _, new3, _ = collision_update(ego, ego_speed, others, torch.zeros_like(valid), torch.zeros_like(valid))
    assert not new3.any()
    # a box just beyond touching distance: no contact
    far = others.clone()
    far[0, 0, 0] = 1.38 + 2.042 + 2.25 + 0.01
    c, _, _ = collision_update(ego, ego_speed, far, valid, torch.zeros_like(valid))
    assert not c[0, 0]


def test_red_light():
    prev = torch.tensor([9.0, 9.0, 9.0])
    now = torch.tensor([10.5, 10.5, 9.9])
    stop = torch.tensor([[10.0], [10.0], [10.0]])
    red = torch.tensor([[True], [False], [True]])
    valid = torch.ones(3, 1, dtype=torch.bool)
    assert red_light_crossings(prev, now, stop, red, valid)[:, 0].tolist() == [True, False, False]


def test_stop_sign_full_stop_then_go():
    stop_s = torch.tensor([[20.0], [20.0]])
    valid = torch.ones(2, 1, dtype=torch.bool)
    stopped = torch.zeros(2, 1, dtype=torch.bool)
    done = torch.zeros(2, 1, dtype=torch.bool)
    violations = torch.zeros(2, 1, dtype=torch.long)
    # world 0 stops at s = 17 (inside the zone) for a moment; world 1 rolls through at 3 m/s
    for k in range(200):
        s0 = min(17.0, k * 0.2) if k < 120 else 17.0 + (k - 120) * 0.2
        v0 = 0.0 if 85 <= k < 120 else 4.0
        front = torch.tensor([s0, k * 0.15])
        speed = torch.tensor([v0, 3.0])
        stopped, done, vio = stop_sign_update(front, speed, stop_s, valid, stopped, done)
        violations += vio.long()
    assert violations[:, 0].tolist() == [0, 1]
    assert done.all()


def test_outside_lanes_percentage():
    acc = torch.zeros(2)
    for k in range(10):
        inside = torch.tensor([True, k >= 4])
        acc = outside_lanes_update(inside, torch.tensor([1.0, 1.0]), acc)
    assert acc.tolist() == [0.0, 4.0]
    assert outside_percentage(acc, 40.0).tolist() == [0.0, 10.0]


def test_route_deviation_blocked_timeout_min_speed():
    assert route_deviation(torch.tensor([5.0, 31.0])).tolist() == [False, True]
    still = torch.zeros(2)
    fired = torch.zeros(2, dtype=torch.long)
    for k in range(2000):  # 100 s
        speed = torch.tensor([0.0, 0.0 if k % 1000 else 5.0])
        still, b = blocked_update(speed, still, 0.05, max_time=60.0)
        fired += b.long()
    assert fired.tolist() == [1, 0]  # world 1 moved at t = 50 s, so never still for 60 s after
    assert route_timeout_seconds(1000.0) == pytest.approx(560.0)
    pct = min_speed_percentage(
        torch.tensor([30.0, 50.0, 0.0]), torch.tensor([60.0, 40.0, 0.0]), torch.tensor([5, 5, 0])
    )
    assert pct.tolist() == [50.0, 100.0, 100.0]
    assert math.isfinite(pct.sum().item())
