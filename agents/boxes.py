"""Oriented 2D boxes: corners, a vectorized separating-axis overlap test, and polygon distance.

A box is `[..., 5]` = (x, y, yaw, length, width): centre [m], heading [rad], extent along the box's
own x (length) and y (width) [m]. Everything is batched (torch; numpy inside `boxes_overlap`'s CPU
path) with no Python loop over boxes.

Overlap follows the separating axis theorem for two rectangles: they are disjoint iff the
projections on one of the four box axes are disjoint. Touching boxes (a shared edge or corner)
count as overlapping; so do boxes whose gap is below floating-point rounding of the inputs
(`4·eps(dtype)·(Σ|a| + Σ|b|)`, the sums over each box's five numbers), which keeps exact touching
cases stable (about 2e-5 m for float32 boxes 10 m from the origin).

`boxes_overlap` on CPU float32/float64 boxes runs in two phases (numpy float64, whose per-op cost is
lower than torch's at these sizes): a circumcircle broad phase over all pairs (one float32 matmul and a
comparison, `_candidate_pairs`), then the exact separating-axis test on the candidate pairs only
(`_narrow_phase`). The broad phase's circles are grown by a margin far above the exact test's tolerance,
so both phases together answer exactly like the exact test on every pair (`_overlap_all_pairs`, used
for other devices and dtypes).
"""

from __future__ import annotations

import math

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


# Broad phase: a box lies inside its circumcircle (radius hypot(length, width) / 2). The circle is
# grown by `_BROAD_MARGIN · Σ|box|`, far more than the exact test's tolerance and rounding, so no pair
# the exact test calls overlapping is ever dropped (see `_candidate_pairs`).
_BROAD_MARGIN = 1e-5
_EPS32 = float(np.finfo(np.float32).eps)
# Boxes of these dtypes on the CPU take the broad-phase path (numpy); others the all-pairs one.
_BROAD_DTYPES = (torch.float32, torch.float64)
# Rows of the per-box table (`_box_table`); (cos, -sin, sin, cos) is the rotation matrix's rows
# laid out [term (x, y coefficient), output (along, across)].
_X, _Y, _COS, _NEG_SIN, _SIN, _COS2, _HALF_L, _HALF_W, _TOL, _RADIUS = range(10)


def _box_table(boxes: np.ndarray, eps: float) -> np.ndarray:
    """Per-box quantities for both phases, computed once for all boxes of `a` and `b` together.

    Args:
        boxes: `[L, 5]` float64 boxes.
        eps: the exact test's rounding tolerance per unit of `Σ|box|` (`_ROUNDING_ULPS · eps(dtype)`).

    Returns:
        `[10, L]` rows x, y, cos, -sin, sin, cos, half length, half width, tolerance share
        (`eps · Σ|box|`) and the grown circumradius.
    """
    xt = boxes.T  # [5, L]
    table = np.empty((10, boxes.shape[0]))
    table[_X : _Y + 1] = xt[0:2]
    np.cos(xt[2], out=table[_COS])
    np.sin(xt[2], out=table[_SIN])
    np.negative(table[_SIN], out=table[_NEG_SIN])
    table[_COS2] = table[_COS]
    np.multiply(xt[3:5], 0.5, out=table[_HALF_L : _HALF_W + 1])
    abs_sum = np.einsum("ij->i", np.abs(boxes))  # [L] Σ|box| (einsum: numpy's .sum(1) is slow on 5 columns)
    np.multiply(abs_sum, eps, out=table[_TOL])
    np.hypot(table[_HALF_L], table[_HALF_W], out=table[_RADIUS])
    table[_RADIUS] += _BROAD_MARGIN * abs_sum
    return table


def _candidate_pairs(table: np.ndarray, n_a: int, shape: tuple[int, int, int]) -> np.ndarray:
    """Broad phase: flat indices into `[B, N, M]` of the pairs whose grown circumcircles meet.

    `|pa - pb|² ≤ (Ra + Rb)²` as one float32 matmul: `xa·xb + ya·yb + Ra·Rb + ha + hb ≥ 0` with
    `h = (R² - x² - y²) / 2 + 8 eps32 (x² + y² + R²)` on centres taken relative to the first box's. The last
    term bounds the matmul's float32 rounding (`≤ 3.5 eps32 Σ(x² + y² + R²)` over the pair), so no pair
    whose grown circles meet is dropped. Soundness of the circles: if they miss, the boxes are more than
    `m = 1e-5 (Σ|a| + Σ|b|)` apart, so their separating-axis gap exceeds `m / √2` (for two rectangles the
    gap along the best face normal is at least distance · cos 45°), far above the exact test's tolerance
    `4 eps (Σ|a| + Σ|b|)`. (float32, not float64: torch's float64 matmul wakes worker threads that
    then spin against numpy on a busy 2-core machine.)

    Args:
        table: `[10, L]` from `_box_table`, the `B·N` boxes of `a` then the `B·M` boxes of `b`.
        n_a: `B·N`, where `b`'s boxes start.
        shape: `(B, N, M)`.

    Returns:
        `[K]` int64 flat indices into `[B, N, M]`, ascending.
    """
    n_batch, n, m = shape
    x = table[_X] - table[_X, 0]  # [L] relative to one of the boxes, for float32 accuracy
    y = table[_Y] - table[_Y, 0]
    r = table[_RADIUS]
    q = x * x
    q += y * y  # |p|²
    r2 = r * r
    h = r2 - q
    h *= 0.5
    q += r2
    h += (8.0 * _EPS32) * q
    lift = np.empty((x.size, 5), dtype=np.float32)  # a rows (x, y, R, h, 1), b rows (x, y, R, 1, h)
    lift[:, 0], lift[:, 1], lift[:, 2] = x, y, r
    lift[:n_a, 3], lift[:n_a, 4] = h[:n_a], 1.0
    lift[n_a:, 3], lift[n_a:, 4] = 1.0, h[n_a:]
    lift_t = torch.from_numpy(lift)
    lift_b = lift_t[n_a:].view(n_batch, m, 5).transpose(1, 2)  # [B, 5, M]
    score = torch.matmul(lift_t[:n_a].view(n_batch, n, 5), lift_b if n_batch == 1 else lift_b.contiguous())
    return np.flatnonzero(score.numpy() >= 0.0)


def _narrow_phase(table: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Exact separating-axis test of the `K` candidate pairs (box `rows_a[k]` vs box `rows_b[k]`).

    Same test and tolerance as `_overlap`, on the offset `d = pb - pa` rotated into each box's frame.

    Args:
        table: `[10, L]` from `_box_table`.
        rows_a, rows_b: `[K]` columns of `table`.

    Returns:
        `[K]` bool overlap.
    """
    k = rows_a.size
    g = np.empty((2, 9, k))  # the two boxes of each pair: [side, row, K]
    np.take(table[:9], rows_a, axis=1, out=g[0], mode="clip")
    np.take(table[:9], rows_b, axis=1, out=g[1], mode="clip")
    d = (g[1, _X : _Y + 1] - g[0, _X : _Y + 1])[:, None]  # [2 (dx, dy), 1, K] centre offset
    rot = g[:, _COS : _COS2 + 1].reshape(2, 2, 2, k)  # [side, term (dx, dy), output (along, across), K]
    prod = np.empty((3, 2, 2, k))
    np.multiply(rot[0], d, out=prod[0])
    np.multiply(rot[1], d, out=prod[1])
    np.multiply(rot[0], g[1, _COS : _SIN + 1 : 2, None], out=prod[2])  # a's rotation applied to b's axis
    proj = np.add(prod[:, 0], prod[:, 1])  # [3, 2, K]: d in a's frame, d in b's frame, (cos Δ, sin Δ)
    np.abs(proj, out=proj)
    half = g[:, _HALF_L : _HALF_W + 1]  # [side, (hl, hw), K]
    # gap on the axes of each box: |d · axis| - own half extent - the other box's projected half extent
    gap = proj[0:2] - half
    gap -= half[::-1] * proj[2, 0]
    gap -= half[::-1, ::-1] * proj[2, 1]
    gap = np.maximum(gap[0], gap[1])
    return np.maximum(gap[0], gap[1]) <= g[0, _TOL] + g[1, _TOL]


def _overlap_broad_phase(a: Tensor, b: Tensor) -> Tensor:
    """`boxes_overlap` for CPU float32/float64 boxes: circumcircle broad phase, then the exact
    separating-axis test only on the candidate pairs, in numpy (lower per-op cost than torch at these
    sizes). Validates the values (finite, non-negative sizes) on the way.

    Args:
        a: `[..., N, 5]`, b: `[..., M, 5]` (shapes already checked).

    Returns:
        `[..., N, M]` bool.
    """
    n, m = a.shape[-2], b.shape[-2]
    an, bn = a.detach().numpy(), b.detach().numpy()
    batch: tuple[int, ...] = ()
    if a.dim() > 2 or b.dim() > 2:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        an = np.broadcast_to(an, (*batch, n, 5))
        bn = np.broadcast_to(bn, (*batch, m, 5))
    n_batch = math.prod(batch)
    boxes = np.concatenate((an.reshape(-1, 5), bn.reshape(-1, 5)), dtype=np.float64)  # [B·N + B·M, 5]
    n_a = n_batch * n
    eps = torch.finfo(torch.promote_types(a.dtype, b.dtype)).eps * _ROUNDING_ULPS
    _check_values_np(boxes, n_a)
    table = _box_table(boxes, eps)
    out = np.zeros(n_batch * n * m, dtype=bool)
    if out.size:
        idx = _candidate_pairs(table, n_a, (n_batch, n, m))
        rows_a = idx // m  # batch · N + n
        rows_b = idx - rows_a * m  # m
        rows_b += (rows_a // n) * m + n_a if n_batch > 1 else n_a  # column of box (batch, m) in `table`
        out[idx[_narrow_phase(table, rows_a, rows_b)]] = True
    return torch.from_numpy(out).view(*batch, n, m)


def _check_values_np(boxes: np.ndarray, n_a: int) -> None:
    """Raise `ValueError` naming `a` or `b` for NaN/inf or a negative size in `boxes[L, 5]` (`a`'s
    first `n_a`)."""
    if np.isfinite(boxes.sum()) and boxes[:, 3:5].min(initial=0.0) >= 0:  # fast path: two reductions
        return
    for name, part in (("a", boxes[:n_a]), ("b", boxes[n_a:])):
        if not np.isfinite(part).all():
            raise ValueError(f"{name} contains NaN or inf")
        if (part[:, 3:5] < 0).any():
            raise ValueError(f"{name} has a negative length or width")


def boxes_overlap(a: Tensor, b: Tensor) -> Tensor:
    """All-pairs overlap test (separating axis theorem); touching counts as overlap.

    On the CPU (float32/float64) a circumcircle broad phase keeps the candidate pairs and the exact
    test runs on those only (`_overlap_broad_phase`); elsewhere every pair gets the exact test
    (`_overlap_all_pairs`). Both give the same answers (tested on random and touching pairs).

    Args:
        a: `[..., N, 5]` boxes (x, y, yaw, length, width).
        b: `[..., M, 5]` boxes; leading dims broadcast against `a`'s.

    Returns:
        `[..., N, M]` bool, True where box n of `a` and box m of `b` intersect.
    """
    _check_shape(a, "a", min_dim=2)
    _check_shape(b, "b", min_dim=2)
    if a.device.type == "cpu" and b.device.type == "cpu" and a.dtype in _BROAD_DTYPES and b.dtype in _BROAD_DTYPES:
        return _overlap_broad_phase(a, b)
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
