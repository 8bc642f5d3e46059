"""SE(2) poses `(x, y, yaw)` and their transforms, batched over any leading dims.

A pose `p = (x, y, yaw)` maps a point given in its local frame to its parent frame:
`parent = R(yaw) @ local + (x, y)`. Angles are in radians and wrapped to (-π, π]. Every function
broadcasts over leading dims and keeps the input dtype and device. Quaternions are `(w, x, y, z)`
like nuScenes records (`pyquaternion.Quaternion`), a yaw being a rotation about +z.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "quaternion_to_yaw",
    "se2_apply",
    "se2_compose",
    "se2_inverse",
    "se2_relative",
    "wrap_angle",
    "yaw_to_quaternion",
]


def _check_last(t: Tensor, name: str, size: int) -> None:
    """Raise `ValueError` naming `name` unless `t` is a floating tensor whose last dim is `size`."""
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 0 or t.shape[-1] != size:
        raise ValueError(f"{name} must have shape [..., {size}], got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")


def wrap_angle(a: Tensor) -> Tensor:
    """Wrap angles [rad] to (-π, π].

    Args:
        a: `[...]` angles, any real value.

    Returns:
        `[...]` the same angles modulo 2π in (-π, π]; `wrap_angle(-π) == π`.
    """
    if not isinstance(a, Tensor):
        a = torch.as_tensor(a, dtype=torch.get_default_dtype())
    r = torch.remainder(a + math.pi, 2.0 * math.pi) - math.pi  # [-π, π)
    return torch.where(r <= -math.pi, r + 2.0 * math.pi, r)


def _rotate(c: Tensor, s: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    return c * x - s * y, s * x + c * y


def se2_compose(a: Tensor, b: Tensor) -> Tensor:
    """Compose poses: `b` is given in the frame of `a`; return `b` in `a`'s parent frame.

    Args:
        a: `[..., 3]` (x, y, yaw) of frame a in the parent.
        b: `[..., 3]` (x, y, yaw) in frame a (broadcast against `a`).

    Returns:
        `[..., 3]` pose of b in the parent frame, yaw wrapped.
    """
    _check_last(a, "a", 3)
    _check_last(b, "b", 3)
    c, s = torch.cos(a[..., 2]), torch.sin(a[..., 2])
    x, y = _rotate(c, s, b[..., 0], b[..., 1])
    return torch.stack([a[..., 0] + x, a[..., 1] + y, wrap_angle(a[..., 2] + b[..., 2])], dim=-1)


def se2_inverse(p: Tensor) -> Tensor:
    """Inverse pose: the parent frame expressed in the frame of `p`.

    Args:
        p: `[..., 3]` (x, y, yaw).

    Returns:
        `[..., 3]` with `se2_compose(p, se2_inverse(p)) == 0`.
    """
    _check_last(p, "p", 3)
    c, s = torch.cos(p[..., 2]), torch.sin(p[..., 2])
    # R^T (-t)
    x = -(c * p[..., 0] + s * p[..., 1])
    y = -(-s * p[..., 0] + c * p[..., 1])
    return torch.stack([x, y, wrap_angle(-p[..., 2])], dim=-1)


def se2_apply(pose: Tensor, pts: Tensor) -> Tensor:
    """Map points from the local frame of `pose` to its parent frame.

    Args:
        pose: `[..., 3]` (x, y, yaw).
        pts: `[..., P, 2]` local points; leading dims broadcast against `pose`'s.

    Returns:
        `[..., P, 2]` points in the parent frame.
    """
    _check_last(pose, "pose", 3)
    _check_last(pts, "pts", 2)
    if pts.dim() < 2:
        raise ValueError(f"pts must have shape [..., P, 2], got {tuple(pts.shape)}")
    p = pose[..., None, :]  # [..., 1, 3]
    c, s = torch.cos(p[..., 2]), torch.sin(p[..., 2])
    x, y = _rotate(c, s, pts[..., 0], pts[..., 1])
    return torch.stack([x + p[..., 0], y + p[..., 1]], dim=-1)


def se2_relative(ref: Tensor, poses: Tensor) -> Tensor:
    """Express `poses` (given in the parent frame) in the frame of `ref`.

    Args:
        ref: `[..., 3]` reference pose in the parent frame.
        poses: `[..., 3]` poses in the parent frame (broadcast against `ref`).

    Returns:
        `[..., 3]` poses in `ref`'s frame: `se2_compose(ref, out) == poses`.
    """
    _check_last(ref, "ref", 3)
    _check_last(poses, "poses", 3)
    c, s = torch.cos(ref[..., 2]), torch.sin(ref[..., 2])
    dx, dy = poses[..., 0] - ref[..., 0], poses[..., 1] - ref[..., 1]
    x, y = _rotate(c, -s, dx, dy)  # R^T d
    return torch.stack([x, y, wrap_angle(poses[..., 2] - ref[..., 2])], dim=-1)


def yaw_to_quaternion(yaw: Tensor) -> Tensor:
    """Quaternion `(w, x, y, z)` of a rotation by `yaw` about +z (nuScenes `rotation` records).

    Args:
        yaw: `[...]` [rad].

    Returns:
        `[..., 4]` unit quaternions with non-negative `w` (yaw wrapped first, so `w = cos(yaw/2) ≥ 0`).
    """
    if not isinstance(yaw, Tensor):
        yaw = torch.as_tensor(yaw, dtype=torch.get_default_dtype())
    if not yaw.is_floating_point():
        raise ValueError(f"yaw must be a floating-point tensor, got {yaw.dtype}")
    h = 0.5 * wrap_angle(yaw)
    z = torch.zeros_like(h)
    return torch.stack([torch.cos(h), z, z, torch.sin(h)], dim=-1)


def quaternion_to_yaw(q: Tensor) -> Tensor:
    """Yaw [rad] of a quaternion `(w, x, y, z)`: the heading of the rotated x axis in the xy plane,
    as the nuScenes devkit's `quaternion_yaw` defines it (scale-invariant, need not be unit).

    Args:
        q: `[..., 4]` (w, x, y, z).

    Returns:
        `[...]` yaw in (-π, π].
    """
    _check_last(q, "q", 4)
    w, x, y, z = q.unbind(-1)
    r00 = w * w + x * x - y * y - z * z  # R[0, 0] times |q|²
    r10 = 2.0 * (x * y + w * z)  # R[1, 0] times |q|²
    return wrap_angle(torch.atan2(r10, r00))
