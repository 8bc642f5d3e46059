import math

import numpy as np
import pytest
import torch
from nuscenes.eval.common.utils import quaternion_yaw
from pyquaternion import Quaternion

from agents.se2 import (
    quaternion_to_yaw,
    se2_apply,
    se2_compose,
    se2_inverse,
    se2_relative,
    wrap_angle,
    yaw_to_quaternion,
)


def _mat(p: torch.Tensor) -> torch.Tensor:
    """Homogeneous 3x3 matrices [..., 3, 3] of poses, the independent reference."""
    c, s = torch.cos(p[..., 2]), torch.sin(p[..., 2])
    m = torch.zeros(*p.shape[:-1], 3, 3, dtype=p.dtype)
    m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = c, -s, p[..., 0]
    m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = s, c, p[..., 1]
    m[..., 2, 2] = 1.0
    return m


def _pose(m: torch.Tensor) -> torch.Tensor:
    return torch.stack([m[..., 0, 2], m[..., 1, 2], torch.atan2(m[..., 1, 0], m[..., 0, 0])], -1)


@pytest.fixture
def poses():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(4, 50, 3, generator=g, dtype=torch.float64) * 40 - 20
    return p  # yaw deliberately outside (-π, π]


def test_wrap_angle_range_and_boundaries():
    a = torch.linspace(-20, 20, 10001, dtype=torch.float64)
    w = wrap_angle(a)
    assert bool((w > -math.pi).all()) and bool((w <= math.pi).all())
    torch.testing.assert_close(torch.sin(w), torch.sin(a))
    torch.testing.assert_close(torch.cos(w), torch.cos(a))
    edge = wrap_angle(torch.tensor([-math.pi, math.pi, 3 * math.pi, -3 * math.pi, 0.0], dtype=torch.float64))
    torch.testing.assert_close(edge, torch.tensor([math.pi, math.pi, math.pi, math.pi, 0.0], dtype=torch.float64))
    assert float(wrap_angle(torch.tensor(-math.pi, dtype=torch.float32))) > 0


def test_compose_inverse_relative_against_matrices(poses):
    a, b = poses[0], poses[1]
    ref = _pose(_mat(a) @ _mat(b))
    torch.testing.assert_close(se2_compose(a, b), ref)
    torch.testing.assert_close(se2_inverse(a), _pose(torch.linalg.inv(_mat(a))))
    torch.testing.assert_close(se2_relative(a, b), _pose(torch.linalg.inv(_mat(a)) @ _mat(b)))
    # round trips
    back = se2_compose(a, se2_relative(a, b))
    torch.testing.assert_close(back[..., :2], b[..., :2])
    torch.testing.assert_close(torch.cos(back[..., 2]), torch.cos(b[..., 2]))
    torch.testing.assert_close(torch.sin(back[..., 2]), torch.sin(b[..., 2]))
    ident = se2_compose(a, se2_inverse(a))
    torch.testing.assert_close(ident, torch.zeros_like(ident))


def test_compose_is_associative_and_broadcasts(poses):
    a, b, c = poses[0, :1], poses[1], poses[2]  # [1,3] broadcasts against [50,3]
    left = se2_compose(se2_compose(a, b), c)
    right = se2_compose(a, se2_compose(b, c))
    torch.testing.assert_close(torch.cos(left[..., 2]), torch.cos(right[..., 2]))
    torch.testing.assert_close(left[..., :2], right[..., :2])
    assert se2_compose(poses[:, :, None], poses[:, None, :5]).shape == (4, 50, 5, 3)


def test_apply_matches_matrix_and_inverse(poses):
    pose = poses[0, :7]  # [7, 3]
    pts = torch.randn(7, 11, 2, dtype=torch.float64)
    out = se2_apply(pose, pts)
    homo = torch.cat([pts, torch.ones(7, 11, 1, dtype=torch.float64)], -1)
    ref = (_mat(pose)[:, None] @ homo[..., None])[..., :2, 0]
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(se2_apply(se2_inverse(pose), out), pts)


def test_quaternion_matches_pyquaternion_and_devkit_yaw():
    yaws = np.linspace(-7, 7, 57)
    q = yaw_to_quaternion(torch.tensor(yaws, dtype=torch.float64))
    for y, qq in zip(yaws, q.numpy()):
        ref = Quaternion(axis=[0.0, 0.0, 1.0], angle=float(y))
        assert abs(abs(float(np.dot(ref.elements, qq))) - 1.0) < 1e-12  # same rotation (q ~ -q)
        assert qq[0] >= 0
        assert abs(math.remainder(quaternion_yaw(Quaternion(qq)) - y, 2 * math.pi)) < 1e-12
    # general (tilted, non-unit) quaternions: same yaw as the devkit's quaternion_yaw
    rng = np.random.default_rng(1)
    for _ in range(200):
        e = rng.normal(size=4)
        got = float(quaternion_to_yaw(torch.tensor(e * 3.0, dtype=torch.float64)))
        ref = quaternion_yaw(Quaternion(e / np.linalg.norm(e)))
        assert abs(math.remainder(got - ref, 2 * math.pi)) < 1e-9
    torch.testing.assert_close(quaternion_to_yaw(q), wrap_angle(torch.tensor(yaws, dtype=torch.float64)))


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda: se2_compose(torch.zeros(4, 2), torch.zeros(4, 3)), "a must have shape"),
        (lambda: se2_inverse(torch.zeros(3, dtype=torch.int64)), "p must be a floating-point"),
        (lambda: se2_apply(torch.zeros(3), torch.zeros(5, 3)), "pts must have shape"),
        (lambda: se2_relative(torch.zeros(3), [0.0, 0.0, 0.0]), "poses must be a torch.Tensor"),
        (lambda: quaternion_to_yaw(torch.zeros(3)), "q must have shape"),
    ],
)
def test_bad_input_names_the_argument(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
