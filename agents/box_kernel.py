"""Compiled (numba) all-pairs box overlap for CPU boxes; `agents.boxes.boxes_overlap` calls it.

Per batch: each box's rotation, half extents, tolerance and grown axis-aligned bounds are computed
once (`_box_table`); the boxes of `b` outside the bounds of all of `a`'s boxes are dropped (by their
circumradius, before any trigonometry); then for each box of `a` a branch-free loop tests its bounds
against the remaining boxes of `b` (broad phase, float32, vectorized), and only the pairs whose bounds
meet get the exact separating-axis test (narrow phase, `_pair_overlaps`: the same formula and tolerance
as `agents.boxes._overlap`, in float64).

Broad phase soundness: if the exact test calls two boxes overlapping (every box-axis gap ≤ tol =
`tol_a + tol_b`), growing each box by `tol` on every side makes them intersect, so they are at most
`2√2 tol` apart, and so are their axis-aligned bounds. The bounds are grown by `_BROAD_MARGIN · Σ|box|`
(Σ over the box's five numbers), at least 20× the exact test's `4 eps(float32) · Σ|box|` and far above
the float32 rounding of `|x_b - x_a|` and of the bounds (a few `eps32 · (|x_a| + |x_b| + extents)`), plus
a floor for float32's subnormal spacing; boxes too large for float32 make every pair a candidate. So the
broad phase never drops a pair the exact test keeps: both phases together answer exactly like the exact
test on every pair (tests: `tests/agents/test_agents_boxes.py`).

Compiled on first use with `cache=True` (one variant per input dtype, float32 and float64): the machine
code is written next to this file in `__pycache__` (numba falls back to a per-user cache directory where
that is read-only, and honours `NUMBA_CACHE_DIR`), so after a fresh clone only the first process pays the
compile (about 4 s of CPU for both variants); later processes pay about 0.5 s of CPU on their first call
(numba's import and the cache load). Serial on purpose: at planner sizes (10⁴–10⁵ pairs) one call takes
5–30 µs; a `parallel=True` variant (prange over `a`'s boxes, 2 threads) took 27 µs against 7 µs serial on
the benchmark's scene layout and was no faster on the dense one (2-core box, load 12).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["BAD_NONFINITE", "BAD_SIZE", "B_SHIFT", "overlap_all_pairs"]

# Flags of invalid boxes in the return code of `overlap_all_pairs` (0 = all boxes valid): a's in the
# low bits, b's shifted left by `B_SHIFT`.
BAD_NONFINITE, BAD_SIZE, B_SHIFT = 1, 2, 2

# Broad-phase growth of the bounds per unit of Σ|box| (see the module docstring), plus an absolute floor
# [m] that covers float32's subnormal spacing (1.4e-45) for absurdly small boxes.
_BROAD_MARGIN = 1e-5
_BROAD_FLOOR = 1e-30
# Above this Σ|box| (which bounds |x|, |y| and the grown half extents) the float32 broad phase could
# overflow: every pair is then a candidate.
_FLOAT32_SAFE = 1e37
# Rows of the per-box table.
_X, _Y, _EXT_X, _EXT_Y, _COS, _SIN, _HALF_L, _HALF_W, _TOL, _GROW = range(10)


@numba.njit(cache=True, nogil=True)
def _box_table(boxes: np.ndarray, eps: float, rotate: bool, table: np.ndarray) -> tuple[int, float]:
    """Fill `table[10, L]` from `boxes[L, 5]`; return the OR of `BAD_NONFINITE` / `BAD_SIZE` over the
    boxes, and their largest `Σ|box|`.

    Rows: x, y, half extents along x and y, cos, sin, half length, half width, the tolerance share
    `eps · Σ|box|` and the broad-phase growth `_BROAD_MARGIN · Σ|box| + _BROAD_FLOOR`. The half extents
    are the grown circumradius (both rows) until `_rotate` sets cos, sin and the tight grown axis-aligned
    ones: here for every box if `rotate`, else later for the boxes that need them.
    """
    bad, largest = 0, 0.0
    for i in range(boxes.shape[0]):
        x, y, yaw, length, width = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3], boxes[i, 4]
        abs_sum = abs(x) + abs(y) + abs(yaw) + abs(length) + abs(width)
        largest = max(largest, abs_sum)
        if not np.isfinite(abs_sum):
            bad |= BAD_NONFINITE
        if length < 0.0 or width < 0.0:
            bad |= BAD_SIZE
        hl, hw, grow = 0.5 * length, 0.5 * width, _BROAD_MARGIN * abs_sum + _BROAD_FLOOR
        table[_X, i], table[_Y, i], table[_HALF_L, i], table[_HALF_W, i] = x, y, hl, hw
        table[_TOL, i], table[_GROW, i] = eps * abs_sum, grow
        table[_EXT_X, i] = table[_EXT_Y, i] = np.sqrt(hl * hl + hw * hw) + grow
        if rotate:
            _rotate(boxes, table, i)
    return bad, largest


@numba.njit(cache=True, nogil=True, inline="always")
def _rotate(boxes: np.ndarray, table: np.ndarray, i: int) -> None:
    """Set cos, sin and the tight grown axis-aligned half extents of box `i` of `table`."""
    c, s = np.cos(boxes[i, 2]), np.sin(boxes[i, 2])
    hl, hw, grow = table[_HALF_L, i], table[_HALF_W, i], table[_GROW, i]
    table[_COS, i], table[_SIN, i] = c, s
    table[_EXT_X, i] = abs(c) * hl + abs(s) * hw + grow
    table[_EXT_Y, i] = abs(s) * hl + abs(c) * hw + grow


@numba.njit(cache=True, nogil=True, inline="always")
def _pair_overlaps(ta: np.ndarray, i: int, tb: np.ndarray, j: int) -> bool:
    """Exact separating-axis test of box `i` of table `ta` vs box `j` of table `tb`.

    On each of the four box axes the gap is `|centre offset · axis|` minus both boxes' half extents
    projected on it; the boxes overlap (touching within the tolerance included) iff no gap exceeds
    `tol_a + tol_b`.
    """
    dx, dy = tb[_X, j] - ta[_X, i], tb[_Y, j] - ta[_Y, i]
    ca, sa, cb, sb = ta[_COS, i], ta[_SIN, i], tb[_COS, j], tb[_SIN, j]
    hla, hwa, hlb, hwb = ta[_HALF_L, i], ta[_HALF_W, i], tb[_HALF_L, j], tb[_HALF_W, j]
    cos_d = abs(ca * cb + sa * sb)  # |cos(yaw_b - yaw_a)|
    sin_d = abs(ca * sb - sa * cb)  # |sin(yaw_b - yaw_a)|
    gap = abs(ca * dx + sa * dy) - hla - hlb * cos_d - hwb * sin_d  # a's x axis
    gap = max(gap, abs(ca * dy - sa * dx) - hwa - hwb * cos_d - hlb * sin_d)  # a's y axis
    gap = max(gap, abs(cb * dx + sb * dy) - hlb - hla * cos_d - hwa * sin_d)  # b's x axis
    gap = max(gap, abs(cb * dy - sb * dx) - hwb - hwa * cos_d - hla * sin_d)  # b's y axis
    return gap <= ta[_TOL, i] + tb[_TOL, j]


@numba.njit(cache=True, nogil=True)
def overlap_all_pairs(a: np.ndarray, b: np.ndarray, eps: float, out: np.ndarray) -> int:
    """All-pairs overlap of `a[B, N, 5]` × `b[B, M, 5]` boxes into `out[B, N, M]`.

    Per batch: the boxes of `b` outside the bounds of all of `a`'s are dropped first (by their
    circumradius, before any trigonometry), then each box of `a` meets the rest in the broad phase.

    Args:
        a, b: C-contiguous float32 or float64 boxes (x, y, yaw, length, width), the same batch size B
            (read into float64: one compiled variant per input dtype, no copy).
        eps: tolerance per unit of `Σ|box|` (`4 eps(dtype)` of the caller's dtype).
        out: `[B, N, M]` bool, all False on entry; True is written where the boxes overlap.

    Returns:
        `bad_a | bad_b << B_SHIFT`, each the OR of `BAD_NONFINITE` / `BAD_SIZE` over the boxes of `a`
        and of `b`; `out` is left untouched unless it is 0.
    """
    n_batch, n, m = out.shape
    a2, b2 = a.reshape(n_batch * n, 5), b.reshape(n_batch * m, 5)
    table_a, table_b = np.empty((10, n_batch * n)), np.empty((10, n_batch * m))
    bad_a, largest_a = _box_table(a2, eps, True, table_a)
    bad_b, largest_b = _box_table(b2, eps, False, table_b)
    if bad_a or bad_b or out.size == 0:
        return bad_a | bad_b << B_SHIFT
    far = max(largest_a, largest_b) > _FLOAT32_SAFE
    keep = np.empty(m, dtype=np.int64)  # b's boxes (columns of table_b) that meet a's bounds
    bounds_b = np.empty((4, m), dtype=np.float32)  # their x, y and grown half extents, compacted
    n_words = (m + 7) // 8
    cand = np.zeros(8 * n_words, dtype=np.bool_)  # broad-phase hits of one box of a vs `keep`, padded
    cand_words = cand.view(np.uint64)  # read 8 at a time: most are all zero
    for k in range(n_batch):
        rows_a = range(k * n, (k + 1) * n)
        lo_x, hi_x = np.inf, -np.inf
        lo_y, hi_y = np.inf, -np.inf
        for i in rows_a:
            lo_x, hi_x = min(lo_x, table_a[_X, i] - table_a[_EXT_X, i]), max(hi_x, table_a[_X, i] + table_a[_EXT_X, i])
            lo_y, hi_y = min(lo_y, table_a[_Y, i] - table_a[_EXT_Y, i]), max(hi_y, table_a[_Y, i] + table_a[_EXT_Y, i])
        n_keep = 0
        for j in range(k * m, (k + 1) * m):
            x, y, r = table_b[_X, j], table_b[_Y, j], table_b[_EXT_X, j]
            if x + r >= lo_x and x - r <= hi_x and y + r >= lo_y and y - r <= hi_y:
                _rotate(b2, table_b, j)
                keep[n_keep] = j
                for row in range(4):
                    bounds_b[row, n_keep] = table_b[row, j]
                n_keep += 1
        if n_keep == 0:
            continue
        xb, yb, exb, eyb = bounds_b[_X], bounds_b[_Y], bounds_b[_EXT_X], bounds_b[_EXT_Y]
        for i in rows_a:
            xa, ya = np.float32(table_a[_X, i]), np.float32(table_a[_Y, i])
            exa, eya = np.float32(table_a[_EXT_X, i]), np.float32(table_a[_EXT_Y, i])
            if far:
                cand[:n_keep] = True
            else:
                for c in range(n_keep):  # branch-free: the compiler vectorizes it
                    cand[c] = (abs(xb[c] - xa) <= exa + exb[c]) & (abs(yb[c] - ya) <= eya + eyb[c])
            row_out = out[k, i - k * n]
            for w in range((n_keep + 7) // 8):
                if cand_words[w]:
                    for c in range(8 * w, 8 * w + 8):
                        if cand[c]:
                            j = keep[c]
                            row_out[j - k * m] = _pair_overlaps(table_a, i, table_b, j)
        cand[:n_keep] = False  # the next batch may keep fewer of b's boxes: no stale hits past them
    return 0
