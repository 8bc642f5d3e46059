"""IDM: hand-computed cases."""

import math

import pytest
import torch

from agents.idm import IDMParams, idm_acceleration

P = IDMParams()
INF = torch.tensor(math.inf)


def test_free_road():
    a = idm_acceleration(torch.tensor(0.0), torch.tensor(10.0), INF, torch.tensor(0.0), P)
    assert a.item() == pytest.approx(P.max_accel)
    a = idm_acceleration(torch.tensor(10.0), torch.tensor(10.0), INF, torch.tensor(0.0), P)
    assert a.item() == pytest.approx(0.0, abs=1e-6)
    a = idm_acceleration(torch.tensor(5.0), torch.tensor(10.0), INF, torch.tensor(0.0), P)
    assert a.item() == pytest.approx(P.max_accel * (1 - 0.5**4))


def test_following_hand_computed():
    v, gap, lead = 10.0, 30.0, 8.0
    s_star = P.min_gap + v * P.time_headway + v * (v - lead) / (2 * math.sqrt(P.max_accel * P.comfort_decel))
    want = P.max_accel * (1 - (v / 15.0) ** 4 - (s_star / gap) ** 2)
    got = idm_acceleration(torch.tensor(v), torch.tensor(15.0), torch.tensor(gap), torch.tensor(lead), P)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_equilibrium_gap_and_limits():
    # standing behind a stopped leader at exactly s0: no acceleration
    a = idm_acceleration(torch.tensor(0.0), torch.tensor(10.0), torch.tensor(P.min_gap), torch.tensor(0.0), P)
    assert a.item() == pytest.approx(0.0, abs=1e-6)
    # overlapping → full brake; very close at speed → clipped to max_decel
    a = idm_acceleration(torch.tensor(5.0), torch.tensor(10.0), torch.tensor(-1.0), torch.tensor(0.0), P)
    assert a.item() == -P.max_decel
    a = idm_acceleration(torch.tensor(15.0), torch.tensor(15.0), torch.tensor(3.0), torch.tensor(0.0), P)
    assert a.item() == -P.max_decel


def test_stops_behind_stopped_leader():
    """Integrating IDM toward a standing obstacle stops short of it without overshoot."""
    x, v = 0.0, 12.0
    obstacle = 80.0
    for _ in range(2000):
        a = idm_acceleration(torch.tensor(v), torch.tensor(12.0), torch.tensor(obstacle - x), torch.tensor(0.0), P)
        v = max(0.0, v + a.item() * 0.05)
        x += v * 0.05
    assert v < 0.05
    assert 0.0 < obstacle - x <= P.min_gap + 0.5


def test_scalar_form_matches_the_batched_one():
    """`idm_scalar` (the simulator kernels' form) gives `idm_acceleration`'s values, free road and
    gaps at and below zero included."""
    from agents.idm import idm_scalar

    p = IDMParams()
    args = (p.max_accel, p.comfort_decel, p.max_decel, p.min_gap, p.time_headway, p.delta)
    for v, v0, gap, lead in [
        (0.0, 10.0, INF, 0.0),
        (12.0, 10.0, 30.0, 5.0),
        (5.0, 8.0, 0.0, 0.0),
        (9.0, 0.0, 4.0, 9.0),
    ]:
        ref = idm_acceleration(torch.tensor(v), torch.tensor(v0), torch.tensor(gap), torch.tensor(lead), p)
        assert idm_scalar(v, v0, float(gap), lead, *args) == pytest.approx(float(ref), rel=1e-6, abs=1e-6)
