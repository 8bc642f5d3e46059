"""Oriented 2D boxes: corners, a vectorized separating-axis overlap test, and polygon distance.

A box is `[..., 5]` = (x, y, yaw, length, width): centre [m], heading [rad], extent along the box's
own x (length) and y (width) [m]. Everything is batched (torch, or a compiled kernel inside
`boxes_overlap`'s CPU path) with no Python loop over boxes.

Overlap follows the separating axis theorem for two rectangles: they are disjoint iff the
projections on one of the four box axes are disjoint. Touching boxes (a shared edge or corner)
count as overlapping; so do boxes whose gap is below floating-point rounding of the inputs
(`4·eps(dtype)·(Σ|a| + Σ|b|)`, the sums over each box's five numbers), which keeps exact touching
cases stable (about 2e-5 m for float32 boxes 10 m from the origin).

`boxes_overlap` on CPU float32/float64 boxes runs a numba kernel (`agents.box_kernel`, compiled on
first use and cached on disk): an axis-aligned-bounds broad phase over all pairs, then the exact test,
in float64, on the candidate pairs only. The bounds are grown by a margin far above the exact test's
tolerance, so both phases together answer exactly like the exact test on every pair. The pure-torch
exact test on every pair (`_overlap_all_pairs`) is the reference, and the path for other devices and
dtypes and where numba is missing.
"""

from __future__ import annotations

import functools
import math
import warnings
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from agents.ego import EGO, EgoVehicle
from agents.states import AgentStates

__all__ = [
    "agent_boxes",
    "box_corners",
    "box_distance",
    "boxes_overlap",
    "boxes_overlap_paired",
    "ego_boxes",
]

# Corner signs (along length, along width), counter-clockwise from front-right.
_CORNER_SIGNS = ((1.0, -1.0), (1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0))
_ROUNDING_ULPS = 4.0


def _check_shape(b: Tensor, name: str, min_dim: int = 1) -> None:
    """Raise `ValueError` naming `name` for a non-tensor, mis-shaped or non-float box tensor."""
    if not isinstance(b, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(b).__name__}")
    if b.dim() < min_dim or b.shape[-1] != 5:
        dims = "[..., N, 5]" if min_dim > 1 else "[..., 5]"
        raise ValueError(f"{name} must have shape {dims} (x, y, yaw, length, width), got {tuple(b.shape)}")
    if not b.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {b.dtype}")


def _check_boxes(b: Tensor, name: str, min_dim: int = 1) -> None:
    """Raise `ValueError` naming `name` for a non-float, mis-shaped, non-finite or negative-size box tensor."""
    _check_shape(b, name, min_dim)
    if bool(torch.isfinite(b).all() & (b[..., 3:5] >= 0).all()):  # one sync on the fast path
        return
    if not bool(torch.isfinite(b).all()):
        raise ValueError(f"{name} contains NaN or inf")
    raise ValueError(f"{name} has a negative length or width")


def box_corners(boxes: Tensor) -> Tensor:
    """Corners of boxes, counter-clockwise starting at the front-right corner.

    Args:
        boxes: `[..., 5]` (x, y, yaw, length, width).

    Returns:
        `[..., 4, 2]` corner xy in the boxes' frame (front-right, front-left, rear-left, rear-right).
    """
    _check_boxes(boxes, "boxes")
    return _corners(boxes)


def _corners(boxes: Tensor) -> Tensor:
    signs = torch.tensor(_CORNER_SIGNS, dtype=boxes.dtype, device=boxes.device)  # [4, 2]
    c, s = torch.cos(boxes[..., 2:3]), torch.sin(boxes[..., 2:3])  # [..., 1]
    lx = 0.5 * boxes[..., 3:4] * signs[:, 0]  # [..., 4]
    ly = 0.5 * boxes[..., 4:5] * signs[:, 1]  # [..., 4]
    x = boxes[..., 0:1] + c * lx - s * ly
    y = boxes[..., 1:2] + s * lx + c * ly
    return torch.stack([x, y], dim=-1)


def _overlap(a: Tensor, b: Tensor) -> Tensor:
    """SAT overlap on broadcastable box tensors `a[..., 5]`, `b[..., 5]` → `[...]` bool.

    On each of the four box axes the gap is `|centre offset · axis| - (sum of projected half extents)`;
    the boxes are disjoint iff one gap exceeds the rounding tolerance. The first op of each line mixes
    an `a` term with a `b` term, so the in-place ops that follow always write a full-shape tensor.
    """
    ca, sa = torch.cos(a[..., 2]), torch.sin(a[..., 2])
    cb, sb = torch.cos(b[..., 2]), torch.sin(b[..., 2])
    xa, ya, xb, yb = a[..., 0], a[..., 1], b[..., 0], b[..., 1]
    hla, hwa = 0.5 * a[..., 3], 0.5 * a[..., 4]
    hlb, hwb = 0.5 * b[..., 3], 0.5 * b[..., 4]
    eps = torch.finfo(torch.promote_types(a.dtype, b.dtype)).eps * _ROUNDING_ULPS
    cos_d = torch.mul(ca, cb).addcmul_(sa, sb).abs_()  # |cos(yaw_b - yaw_a)|
    sin_d = torch.mul(ca, sb).addcmul_(sa, cb, value=-1.0).abs_()  # |sin(yaw_b - yaw_a)|
    tol = torch.add(a.abs().sum(-1), b.abs().sum(-1)).mul_(eps)

    def gap(k: Tensor, u: Tensor, v: Tensor, px: Tensor, py: Tensor, own: Tensor, e_cos: Tensor, e_sin: Tensor):
        # |(p - centre)·(u, v)| - own - e_cos |cos Δ| - e_sin |sin Δ|, with k = centre·(u, v)
        g = torch.addcmul(-k, u, px).addcmul_(v, py).abs_()
        return g.addcmul_(cos_d, e_cos, value=-1.0).addcmul_(sin_d, e_sin, value=-1.0).sub_(own)

    g = gap(xa * ca + ya * sa, ca, sa, xb, yb, hla, hlb, hwb)  # a's x axis
    g = torch.maximum(g, gap(ya * ca - xa * sa, -sa, ca, xb, yb, hwa, hwb, hlb), out=g)  # a's y axis
    g = torch.maximum(g, gap(xb * cb + yb * sb, cb, sb, xa, ya, hlb, hla, hwa), out=g)  # b's x axis
    g = torch.maximum(g, gap(yb * cb - xb * sb, -sb, cb, xa, ya, hwb, hwa, hla), out=g)  # b's y axis
    return g <= tol


def _overlap_all_pairs(a: Tensor, b: Tensor) -> Tensor:
    """SAT overlap of all pairs `a[..., N, 5]` × `b[..., M, 5]` → `[..., N, M]` bool.

    Same test as `_overlap`, but the pairwise projections and relative rotations are small matmuls
    (`[N, 3] @ [3, M]`), and every pairwise tensor is a contiguous `[..., N, M]`: about 20 full-size
    ops instead of 35.
    """
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    xa, ya, ta, la, wa = a.unbind(-1)  # [..., N]
    xb, yb, tb, lb, wb = b.unbind(-1)  # [..., M]
    ca, sa, cb, sb = torch.cos(ta), torch.sin(ta), torch.cos(tb), torch.sin(tb)
    hla, hwa = (0.5 * la).unsqueeze(-1), (0.5 * wa).unsqueeze(-1)  # [..., N, 1]
    hlb, hwb = (0.5 * lb).unsqueeze(-2), (0.5 * wb).unsqueeze(-2)  # [..., 1, M]
    st, mm = torch.stack, torch.matmul
    csa = st([ca, sa], -1)  # [..., N, 2]
    cos_d = mm(csa, st([cb, sb], -2)).abs_()  # |cos(yaw_b - yaw_a)|, [..., N, M]
    sin_d = mm(csa, st([sb, -cb], -2)).abs_()  # |sin(yaw_b - yaw_a)|
    pa = st([xa, ya, torch.ones_like(xa)], -1)  # [..., N, 3] homogeneous centres
    pb = st([xb, yb, torch.ones_like(xb)], -2)  # [..., 3, M]

    def gap(proj: Tensor, own: Tensor, e_cos: Tensor, e_sin: Tensor) -> Tensor:
        # |centre offset · axis| - own half extent - the other box's projected half extent
        return proj.abs_().addcmul_(cos_d, e_cos, value=-1.0).addcmul_(sin_d, e_sin, value=-1.0).sub_(own)

    k1a, k2a = torch.addcmul(xa * ca, ya, sa), torch.addcmul(ya * ca, xa, sa, value=-1.0)  # a's centre in a's axes
    k1b, k2b = torch.addcmul(xb * cb, yb, sb), torch.addcmul(yb * cb, xb, sb, value=-1.0)
    g = gap(mm(st([ca, sa, -k1a], -1), pb), hla, hlb, hwb)  # a's x axis
    torch.maximum(g, gap(mm(st([-sa, ca, -k2a], -1), pb), hwa, hwb, hlb), out=g)  # a's y axis
    torch.maximum(g, gap(mm(pa, st([cb, sb, -k1b], -2)), hlb, hla, hwa), out=g)  # b's x axis
    torch.maximum(g, gap(mm(pa, st([-sb, cb, -k2b], -2)), hwb, hwa, hla), out=g)  # b's y axis
    eps = torch.finfo(a.dtype).eps * _ROUNDING_ULPS
    tol = torch.add(a.abs().sum(-1).unsqueeze(-1), b.abs().sum(-1).unsqueeze(-2)).mul_(eps)
    return g <= tol


# Boxes of these dtypes on the CPU take the compiled kernel (others the all-pairs torch path), with the
# exact test's tolerance per unit of Σ|box|.
_EPS_ULPS = {dt: _ROUNDING_ULPS * torch.finfo(dt).eps for dt in (torch.float32, torch.float64)}


@functools.cache
def _kernel() -> ModuleType | None:
    """The compiled kernel module (`agents.box_kernel`), imported on first use so that importing
    `agents` does not import numba. None, with a warning, where numba is missing or can cache nowhere;
    None where its JIT is disabled (`NUMBA_DISABLE_JIT=1` would run the kernel as slow pure Python)."""
    try:
        import numba

        from agents import box_kernel
    except (ImportError, RuntimeError) as err:  # RuntimeError: numba found no writable cache directory
        warnings.warn(f"boxes_overlap: no compiled kernel ({err}); using the slower torch path", stacklevel=3)
        return None
    return None if numba.config.DISABLE_JIT else box_kernel


def _overlap_compiled(a: Tensor, b: Tensor, batch: tuple[int, ...], kernel: ModuleType) -> Tensor:
    """`boxes_overlap` for CPU float32/float64 boxes through the compiled kernel (broad phase and exact
    test in one pass, in float64; no copy of contiguous boxes of one dtype); validates the values too.

    Args:
        a: `[..., N, 5]`, b: `[..., M, 5]` (shapes already checked).
        batch: the broadcast leading dims `...`.

    Returns:
        `[..., N, M]` bool.
    """
    n, m = a.shape[-2], b.shape[-2]
    n_batch = math.prod(batch)
    dtype = torch.promote_types(a.dtype, b.dtype)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64  # one compiled variant each
    boxes = []
    for x, rows in ((a, n), (b, m)):
        xn = (x.detach() if x.requires_grad else x).numpy()
        if xn.dtype != np_dtype or not xn.flags.c_contiguous or xn.shape[:-2] != batch:
            xn = np.ascontiguousarray(np.broadcast_to(xn, (*batch, rows, 5)), dtype=np_dtype)
        boxes.append(xn.reshape(n_batch, rows, 5))
    out = np.zeros((*batch, n, m), dtype=np.bool_)
    bad = kernel.overlap_all_pairs(*boxes, _EPS_ULPS[dtype], out.reshape(n_batch, n, m))
    if bad:
        for name, flags in (("a", bad), ("b", bad >> kernel.B_SHIFT)):
            if flags & kernel.BAD_NONFINITE:
                raise ValueError(f"{name} contains NaN or inf")
            if flags & kernel.BAD_SIZE:
                raise ValueError(f"{name} has a negative length or width")
    return torch.from_numpy(out)


def boxes_overlap(a: Tensor, b: Tensor) -> Tensor:
    """All-pairs overlap test (separating axis theorem); touching counts as overlap.

    On the CPU (float32/float64) a compiled kernel (`agents.box_kernel`) runs an axis-aligned-bounds
    broad phase and the exact test on the surviving pairs only; elsewhere (other devices and dtypes, or
    without numba) every pair gets the exact test in torch (`_overlap_all_pairs`). Both give the same
    answers (tested on random, touching, degenerate and far-away pairs, and against shapely).

    Args:
        a: `[..., N, 5]` boxes (x, y, yaw, length, width).
        b: `[..., M, 5]` boxes; leading dims broadcast against `a`'s.

    Returns:
        `[..., N, M]` bool, True where box n of `a` and box m of `b` intersect.
    """
    _check_shape(a, "a", min_dim=2)
    _check_shape(b, "b", min_dim=2)
    batch = a.shape[:-2]
    if b.shape[:-2] != batch:
        try:
            batch = torch.broadcast_shapes(batch, b.shape[:-2])
        except RuntimeError:
            shapes = f"a {tuple(a.shape)} and b {tuple(b.shape)}"
            raise ValueError(f"{shapes} have leading dims that do not broadcast") from None
    if a.is_cpu and b.is_cpu and a.dtype in _EPS_ULPS and b.dtype in _EPS_ULPS:
        kernel = _kernel()
        if kernel is not None:
            return _overlap_compiled(a, b, batch, kernel)
    _check_boxes(a, "a", min_dim=2)
    _check_boxes(b, "b", min_dim=2)
    return _overlap_all_pairs(a, b)


def boxes_overlap_paired(a: Tensor, b: Tensor) -> Tensor:
    """Element-wise overlap test of paired boxes; touching counts as overlap.

    Args:
        a: `[..., 5]` boxes.
        b: `[..., 5]` boxes, broadcast against `a`.

    Returns:
        `[...]` bool.
    """
    _check_boxes(a, "a")
    _check_boxes(b, "b")
    return _overlap(a, b)


def _points_to_segments(p: Tensor, s: Tensor, e: Tensor) -> Tensor:
    """Distance from points `p[..., 2]` to segments from `s[..., 2]` with direction `e[..., 2]`."""
    ee = (e * e).sum(-1).clamp_min(torch.finfo(e.dtype).tiny)
    t = (((p - s) * e).sum(-1) / ee).clamp(0.0, 1.0)
    return torch.linalg.vector_norm(p - s - t[..., None] * e, dim=-1)


def box_distance(a: Tensor, b: Tensor) -> Tensor:
    """Minimum Euclidean distance between box polygons (0 where they overlap or touch).

    For disjoint convex polygons the minimum is attained between a vertex of one and an edge of the
    other, so it is the minimum of the 2 × 4 × 4 vertex-to-edge distances.

    Args:
        a: `[..., N, 5]` boxes.
        b: `[..., M, 5]` boxes; leading dims broadcast against `a`'s.

    Returns:
        `[..., N, M]` distance [m].
    """
    _check_boxes(a, "a", min_dim=2)
    _check_boxes(b, "b", min_dim=2)
    pa = _corners(a)[..., :, None, :, None, :]  # [..., N, 1, 4, 1, 2]
    pb = _corners(b)[..., None, :, None, :, :]  # [..., 1, M, 1, 4, 2]
    ea = torch.roll(pa, -1, dims=-3) - pa  # edges of a: [..., N, 1, 4, 1, 2]
    eb = torch.roll(pb, -1, dims=-2) - pb  # edges of b: [..., 1, M, 1, 4, 2]
    # a's vertices (dim -3) to b's edges (dim -2), and b's vertices (dim -2) to a's edges (dim -3).
    d_ab = _points_to_segments(pa, pb, eb)  # [..., N, M, 4, 4]
    d_ba = _points_to_segments(pb, pa, ea)  # [..., N, M, 4, 4]
    d = torch.minimum(d_ab.amin(dim=(-2, -1)), d_ba.amin(dim=(-2, -1)))  # [..., N, M]
    return torch.where(_overlap_all_pairs(a, b), torch.zeros_like(d), d)


def ego_boxes(poses: Tensor, ego: EgoVehicle = EGO) -> Tensor:
    """Ego boxes from rear-axle poses: the box centre lies `ego.rear_axle_to_center` ahead along yaw.

    Args:
        poses: `[..., 3]` rear-axle (x, y, yaw), e.g. an ego plan `[B, N, T, 3]`.
        ego: the vehicle geometry (default `agents.EGO`, the nuScenes car).

    Returns:
        `[..., 5]` (x, y, yaw, length, width) boxes.
    """
    if not isinstance(poses, Tensor) or poses.dim() == 0 or poses.shape[-1] != 3 or not poses.is_floating_point():
        shape = tuple(poses.shape) if isinstance(poses, Tensor) else type(poses).__name__
        raise ValueError(f"poses must be a float tensor of shape [..., 3] (x, y, yaw), got {shape}")
    yaw = poses[..., 2]
    off = ego.rear_axle_to_center
    x = poses[..., 0] + off * torch.cos(yaw)
    y = poses[..., 1] + off * torch.sin(yaw)
    length = torch.full_like(yaw, ego.length)
    width = torch.full_like(yaw, ego.width)
    return torch.stack([x, y, yaw, length, width], dim=-1)


def agent_boxes(states: AgentStates) -> Tensor:
    """Boxes of agents: `[..., A, 5]` (x, y, yaw, length, width) from an `AgentStates`."""
    return torch.cat([states.xy, states.yaw[..., None], states.size[..., :2]], dim=-1)
