import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch

from agents import EGO, AgentClass, AgentStates
from agents.boxes import (
    _kernel,
    _overlap_all_pairs,
    agent_boxes,
    box_corners,
    box_distance,
    boxes_overlap,
    boxes_overlap_paired,
    ego_boxes,
)


def _polys(boxes: torch.Tensor) -> np.ndarray:
    """shapely polygons [...] from boxes [..., 5] (the independent reference geometry)."""
    b = boxes.double().numpy()
    c, s = np.cos(b[..., 2]), np.sin(b[..., 2])
    hl, hw = b[..., 3] / 2, b[..., 4] / 2
    local = np.stack(
        [np.stack([hl, -hw], -1), np.stack([hl, hw], -1), np.stack([-hl, hw], -1), np.stack([-hl, -hw], -1)], -2
    )
    x = b[..., None, 0] + c[..., None] * local[..., 0] - s[..., None] * local[..., 1]
    y = b[..., None, 1] + s[..., None] * local[..., 0] + c[..., None] * local[..., 1]
    return shapely.polygons(np.stack([x, y], -1))


def _random_boxes(n: int, seed: int, spread: float = 6.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1) * spread
    yaw = (torch.rand(n, 1, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    size = torch.rand(n, 2, generator=g, dtype=torch.float64) * 4.9 + 0.1
    return torch.cat([xy, yaw, size], -1)


def _unambiguous(pa: np.ndarray, pb: np.ndarray, band: float) -> np.ndarray:
    """Pairs whose intersects answer is stable under a `band` [m] change of the geometry."""
    grown = shapely.intersects(shapely.buffer(pa, band, join_style="mitre"), pb)
    shrunk = shapely.intersects(shapely.buffer(pa, -band, join_style="mitre"), pb)
    return grown == shrunk


@pytest.fixture(scope="module")
def random_pairs():
    a, b = _random_boxes(4000, 1), _random_boxes(4000, 2)
    # nested: a small box well inside a big one, any rotation
    big = _random_boxes(300, 3)
    big[:, 3:] += 4.0
    small = big.clone()
    small[:, 2] = (torch.rand(300, dtype=torch.float64) * 2 - 1) * math.pi
    small[:, 3:] = 0.3
    a, b = torch.cat([a, big]), torch.cat([b, small])
    pa, pb = _polys(a), _polys(b)
    keep = _unambiguous(pa, pb, 1e-5)
    assert keep.mean() > 0.99  # the near-touching band is rare by construction
    keep_t = torch.from_numpy(keep)
    return a[keep_t], b[keep_t], shapely.intersects(pa, pb)[keep]


def test_paired_overlap_matches_shapely_on_random_and_nested(random_pairs):
    a, b, ref = random_pairs
    got = boxes_overlap_paired(a, b).numpy()
    assert 0.1 < ref.mean() < 0.9
    np.testing.assert_array_equal(got, ref)


def test_all_pairs_overlap_matches_paired_and_shapely(random_pairs):
    a, b, _ = random_pairs
    a, b = a[:150], b[:200]
    got = boxes_overlap(a, b)
    assert got.shape == (150, 200)
    pa, pb = _polys(a), _polys(b)
    ref = shapely.intersects(pa[:, None], pb[None, :])
    keep = _unambiguous(pa[:, None], pb[None, :], 1e-5)
    np.testing.assert_array_equal(got.numpy()[keep], ref[keep])
    assert keep.mean() > 0.99
    torch.testing.assert_close(got, boxes_overlap_paired(a[:, None], b[None, :]))


def test_float32_matches_shapely_outside_rounding_band():
    a, b = _random_boxes(3000, 7).float(), _random_boxes(3000, 8).float()
    pa, pb = _polys(a), _polys(b)  # polygons of the float32-rounded boxes
    keep = _unambiguous(pa, pb, 1e-4)
    np.testing.assert_array_equal(boxes_overlap_paired(a, b).numpy()[keep], shapely.intersects(pa, pb)[keep])
    got = boxes_overlap(a[:100], b[:120]).numpy()
    ref = shapely.intersects(pa[:100, None], pb[None, :120])
    keep = _unambiguous(pa[:100, None], pb[None, :120], 1e-4)
    np.testing.assert_array_equal(got[keep], ref[keep])


def _touching_cases() -> torch.Tensor:
    """[C, 2, 5] pairs that touch exactly (shared edge, shared corner, corner on an edge)."""
    d = torch.float64
    cases = [
        # axis-aligned, exact binary fractions: shared edge, shared corner, partial edge
        ([0.0, 0.0, 0.0, 2.0, 1.0], [2.0, 0.0, 0.0, 2.0, 1.0]),
        ([0.0, 0.0, 0.0, 2.0, 1.0], [2.0, 1.0, 0.0, 2.0, 1.0]),
        ([0.0, 0.0, 0.0, 2.0, 1.0], [1.5, 0.25, 0.0, 1.0, 2.0]),
        ([0.0, 0.0, 0.0, 2.0, 1.0], [0.0, -1.0, 0.0, 0.5, 1.0]),
    ]
    out = torch.tensor(cases, dtype=d)
    rng = np.random.default_rng(5)
    rotated = []
    for _ in range(300):
        yaw = rng.uniform(-math.pi, math.pi)
        la, wa, lb, wb = rng.uniform(0.5, 4.0, 4)
        c0 = rng.uniform(-5, 5, 2)
        u = np.array([math.cos(yaw), math.sin(yaw)])
        v = np.array([-math.sin(yaw), math.cos(yaw)])
        kind = rng.integers(3)
        if kind == 0:  # same heading, sharing (part of) the front edge
            cb = c0 + u * (la + lb) / 2 + v * rng.uniform(-(wa + wb) / 2, (wa + wb) / 2)
            rotated.append(([*c0, yaw, la, wa], [*cb, yaw, lb, wb]))
        elif kind == 1:  # corner of b on the left edge of a, b rotated by 45° away from a
            p = c0 + v * wa / 2 + u * rng.uniform(-la / 2, la / 2)
            yb = yaw + math.pi / 4
            ub = np.array([math.cos(yb), math.sin(yb)])
            vb = np.array([-math.sin(yb), math.cos(yb)])
            # the corner (-lb/2, -wb/2) of b sits at p; b's centre is then along +ub,+vb (away from a)
            cb = p + ub * lb / 2 + vb * wb / 2
            rotated.append(([*c0, yaw, la, wa], [*cb, yb, lb, wb]))
        else:  # corner to corner, same heading
            cb = c0 + u * (la + lb) / 2 + v * (wa + wb) / 2
            rotated.append(([*c0, yaw, la, wa], [*cb, yaw, lb, wb]))
    return torch.cat([out, torch.tensor(rotated, dtype=d)])


def test_leading_dims_broadcast_and_empty_inputs():
    a, b = _random_boxes(4 * 6, 11).reshape(4, 1, 6, 5), _random_boxes(3 * 7, 12).reshape(1, 3, 7, 5)
    got = boxes_overlap(a, b)
    assert got.shape == (4, 3, 6, 7)
    for i in range(4):
        for j in range(3):
            torch.testing.assert_close(got[i, j], boxes_overlap(a[i, 0], b[0, j]))
    assert boxes_overlap(torch.zeros(0, 5), b[0, 0]).shape == (0, 7)
    assert box_distance(a[:, 0], torch.zeros(4, 0, 5)).shape == (4, 6, 0)


def test_touching_counts_as_overlap():
    cases = _touching_cases()
    a, b = cases[:, 0], cases[:, 1]
    assert bool(boxes_overlap_paired(a, b).all())
    assert bool(boxes_overlap_paired(b, a).all())
    assert bool(boxes_overlap(a[:, None], b[:, None]).all())
    assert bool(boxes_overlap_paired(a.float(), b.float()).all())
    # the exactly representable axis-aligned ones agree with shapely too
    np.testing.assert_array_equal(shapely.intersects(_polys(a[:4]), _polys(b[:4])), True)
    # separated by a small but clear gap along the normal: no overlap
    gap = cases.clone()
    gap[4:, 1, :2] += (
        1e-3
        * (gap[4:, 1, :2] - gap[4:, 0, :2])
        / torch.linalg.vector_norm(gap[4:, 1, :2] - gap[4:, 0, :2], dim=-1, keepdim=True)
    )
    pa, pb = _polys(gap[4:, 0]), _polys(gap[4:, 1])
    np.testing.assert_array_equal(boxes_overlap_paired(gap[4:, 0], gap[4:, 1]).numpy(), shapely.intersects(pa, pb))


def _agreement_boxes() -> tuple[torch.Tensor, torch.Tensor]:
    """[N, 5], [M, 5] float64 boxes mixing random ones (dense and far from the origin), degenerate
    ones (zero length/width) and the touching / just-separated pairs of `_touching_cases`."""
    cases = _touching_cases()
    apart = cases.clone()  # b moved 1e-3 m away from a along the centre line: clearly disjoint
    off = apart[:, 1, :2] - apart[:, 0, :2]
    apart[:, 1, :2] += 1e-3 * off / torch.linalg.vector_norm(off, dim=-1, keepdim=True)
    far = _random_boxes(200, 21, spread=4.0)
    far[:, :2] += torch.tensor([1500.0, -800.0], dtype=torch.float64)
    flat = _random_boxes(60, 22)
    flat[:30, 3] = 0.0
    flat[30:, 4] = 0.0
    a = torch.cat([cases[:, 0], apart[:, 0], _random_boxes(300, 23), far[:100], flat[:30]])
    b = torch.cat([cases[:, 1], apart[:, 1], _random_boxes(400, 24), far[100:], flat[30:]])
    return a, b


def test_compiled_kernel_is_the_cpu_path():
    """numba is a dependency: CPU float boxes must not silently take the slower torch path."""
    assert _kernel() is not None


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_compiled_path_agrees_with_torch_path(dtype):
    a, b = (x.to(dtype) for x in _agreement_boxes())  # ~800 x ~900 boxes: ~700k pairs
    fast, exact = boxes_overlap(a, b), _overlap_all_pairs(a, b)
    torch.testing.assert_close(fast, exact, rtol=0, atol=0)
    c = len(_touching_cases())
    assert bool(fast.diagonal()[:c].all())  # touching pairs overlap
    assert not bool(fast.diagonal()[c : 2 * c].any())  # 1e-3 m apart: no overlap
    assert 0.005 < float(exact.double().mean()) < 0.2


def test_compiled_path_batched_matches_torch_path():
    a, b = _agreement_boxes()
    a, b = a[:240].reshape(4, 1, 60, 5), b[:210].reshape(1, 3, 70, 5)
    got = boxes_overlap(a, b)
    assert got.shape == (4, 3, 60, 70)
    torch.testing.assert_close(got, _overlap_all_pairs(a, b), rtol=0, atol=0)
    assert bool(got.any())
    # batches whose boxes of b near a's differ in number (the kernel drops b's boxes outside a's bounds per
    # batch): 70 overlapping ones in batch 0, one in batch 1, none in batch 2
    a = torch.tensor([[0.0, 0.0, 0.3, 4.0, 2.0]]).expand(3, 1, 5)
    b = _random_boxes(3 * 70, 31, spread=1.0).reshape(3, 70, 5)
    b[1:, :, :2] += 100.0
    b[1, 5, :2] = 0.5
    got = boxes_overlap(a, b)
    torch.testing.assert_close(got, _overlap_all_pairs(a, b), rtol=0, atol=0)
    assert got[0].all() and got[1].sum() == 1 and got[1, 0, 5] and not got[2].any()


def _geoms(boxes: torch.Tensor) -> np.ndarray:
    """shapely geometries [...] of boxes [..., 5] as what they are: polygons, or points (zero length and
    width) and segments (one of them zero), since GEOS does not treat zero-area polygons as such."""
    corners = box_corners(boxes.double()).numpy()  # [..., 4, 2]
    size = boxes.double().numpy()[..., 3:5]
    geoms = shapely.polygons(corners)
    flat = (size == 0).any(-1)
    geoms[flat] = shapely.linestrings(corners[flat][:, [0, 2]])  # a degenerate box is its diagonal
    point = (size == 0).all(-1)
    geoms[point] = shapely.points(corners[point][:, 0])
    return geoms


def _edge_cases() -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
    """[C, 5] pairs (a, b) float64 with their hand-derived answer: touching, identical, nested, degenerate,
    far from the origin and tiny ones."""
    box = [0.0, 0.0, 0.0, 2.0, 1.0]  # x in [-1, 1], y in [-0.5, 0.5]
    r45 = math.pi / 4
    cases = [
        (box, box, True),  # identical
        (box, [0.1, 0.0, 0.7, 0.5, 0.2], True),  # nested, rotated
        (box, [2.0, 0.0, 0.0, 2.0, 1.0], True),  # shared edge
        (box, [2.0, 1.0, 0.0, 2.0, 1.0], True),  # shared corner
        (box, [1.0 + 0.5 * math.sqrt(2), 0.0, r45, 1.0, 1.0], True),  # diamond's corner on the edge
        (box, [1.0 + 0.5 * math.sqrt(2) + 1e-6, 0.0, r45, 1.0, 1.0], False),  # 1 µm away
        (box, [2.001, 0.0, 0.0, 2.0, 1.0], False),  # 1 mm apart
        (box, [0.3, 0.2, 0.0, 0.0, 0.0], True),  # point inside
        (box, [1.0, 0.2, 0.0, 0.0, 0.0], True),  # point on the edge
        (box, [1.0, 0.5, 0.0, 0.0, 0.0], True),  # point on the corner
        (box, [1.01, 0.2, 0.0, 0.0, 0.0], False),  # point outside
        ([0.5, 0.5, 0.0, 0.0, 0.0], [0.5, 0.5, 1.0, 0.0, 0.0], True),  # the same point
        ([0.5, 0.5, 0.0, 0.0, 0.0], [0.5, 0.51, 0.0, 0.0, 0.0], False),  # two points
        (box, [0.0, 1.0, r45, 0.0, 3.0], True),  # segment through the box
        (box, [0.0, 1.5, math.pi / 2, 2.0, 0.0], True),  # segment ending on the edge
        (box, [0.0, 1.6, math.pi / 2, 2.0, 0.0], False),  # segment ending short of it
        ([0.0, 0.0, 0.0, 2.0, 0.0], [0.0, 0.0, math.pi / 2, 2.0, 0.0], True),  # crossing segments
        ([0.0, 0.0, 0.0, 2.0, 0.0], [0.0, 0.1, 0.0, 2.0, 0.0], False),  # parallel segments
        ([0.0, 0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0, 2.0], True),  # the same segment
        # ~1e6 m from the origin: tolerance ~1e-9 m, gaps of 1 mm are clear
        ([1e6, -2e6, 0.4, 4.0, 2.0], [1e6 + 3.0, -2e6 + 1.0, 0.9, 4.0, 2.0], True),
        ([1e6, -2e6, 0.0, 4.0, 2.0], [1e6 + 4.001, -2e6, 0.0, 4.0, 2.0], False),
        ([1e6, -2e6, 0.0, 4.0, 2.0], [1e6 + 4.0, -2e6 + 1.0, 0.0, 4.0, 2.0], True),
        # beyond float32's range, which the kernel's float32 broad phase must not be fooled by
        ([5e60, 0.0, 0.3, 2e60, 1e60], [6e60, 1e59, 1.0, 1e60, 1e60], True),
        ([5e60, 0.0, 0.0, 2e60, 1e60], [8e60, 0.0, 0.0, 2e60, 1e60], False),
        # tiny: below float32's normal range, and down to a few of its subnormal steps (1.4e-45)
        ([0.0, 0.0, 0.0, 2e-40, 1e-40], [2e-40, 0.0, 0.0, 2e-40, 1e-40], True),
        ([0.0, 0.0, 0.0, 2e-40, 1e-40], [3e-40, 0.0, 0.0, 2e-40, 1e-40], False),
        ([0.0, 0.0, 0.0, 4e-45, 2e-45], [4e-45, 0.0, 0.0, 4e-45, 2e-45], True),
        ([0.0, 0.0, 0.0, 4e-45, 2e-45], [8e-45, 0.0, 0.0, 4e-45, 2e-45], False),
    ]
    a = torch.tensor([c[0] for c in cases], dtype=torch.float64)
    b = torch.tensor([c[1] for c in cases], dtype=torch.float64)
    return a, b, [c[2] for c in cases]


def test_edge_cases_kernel_equals_torch_equals_shapely():
    """Hand-derived answers on touching, identical, nested, degenerate (points, segments), far and tiny
    boxes: the compiled kernel (all pairs, both argument orders), the torch path and shapely's
    `intersects` on the same geometry agree with them."""
    a, b, expected = _edge_cases()
    want = np.array(expected)
    np.testing.assert_array_equal(shapely.intersects(_geoms(a), _geoms(b)), want)
    for x, y in ((a, b), (b, a)):
        np.testing.assert_array_equal(boxes_overlap(x, y).diagonal().numpy(), want)
        np.testing.assert_array_equal(boxes_overlap(x[:, None], y[:, None])[:, 0, 0].numpy(), want)  # batched
        alone = [bool(boxes_overlap(x[i, None], y[i, None])) for i in range(len(want))]  # no far box beside
        np.testing.assert_array_equal(alone, want)
        np.testing.assert_array_equal(_overlap_all_pairs(x, y).diagonal().numpy(), want)
        np.testing.assert_array_equal(boxes_overlap_paired(x, y).numpy(), want)
    # all C × C pairs: the torch path everywhere; shapely on the boxes within 1 km of the origin (where a
    # 1 µm band is far above rounding), on the pairs whose answer a 1 µm change cannot flip
    got = boxes_overlap(a, b)
    torch.testing.assert_close(got, _overlap_all_pairs(a, b), rtol=0, atol=0)
    na, nb = (a[:, :2].abs().amax(-1) < 1e3).numpy(), (b[:, :2].abs().amax(-1) < 1e3).numpy()
    ga, gb = _geoms(a[na])[:, None], _geoms(b[nb])[None, :]
    keep = _unambiguous(ga, gb, 1e-6)
    assert keep.sum() > 0.4 * keep.size
    np.testing.assert_array_equal(got.numpy()[na][:, nb][keep], shapely.intersects(ga, gb)[keep])


def test_float32_edge_cases_agree_with_torch_path():
    """The edge cases float32 can hold (not beyond its range, no nonzero number below 1e-30): kernel ==
    torch path, and overlapping pairs stay overlapping (the 1 µm / 1 mm gaps may fall inside float32's
    rounding tolerance, so disjoint ones are not asserted)."""
    a, b, expected = _edge_cases()
    both = torch.stack([a, b], 1).flatten(1)  # [C, 10]
    fits = (both.abs().amax(-1) < 1e30) & ~((both != 0) & (both.abs() < 1e-30)).any(-1)
    assert int(fits.sum()) == len(expected) - 6
    a32, b32 = a[fits].float(), b[fits].float()
    got = boxes_overlap(a32, b32)
    torch.testing.assert_close(got, _overlap_all_pairs(a32, b32), rtol=0, atol=0)
    overlapping = torch.tensor(expected)[fits]
    assert bool(got.diagonal()[overlapping].all())


def test_input_layouts_and_dtypes():
    """Mixed dtypes, non-contiguous views, tensors that need grad and M not a multiple of 8 take the
    compiled path with the same answers as the torch path."""
    a, b = _agreement_boxes()
    a, b = a[:97], b[:131]
    ref = _overlap_all_pairs(a, b)
    torch.testing.assert_close(boxes_overlap(a.float(), b), _overlap_all_pairs(a.float(), b), rtol=0, atol=0)
    strided = torch.cat([b, b], -1)[:, :5]  # a view with row stride 10
    assert not strided.is_contiguous()
    torch.testing.assert_close(boxes_overlap(a, strided), ref, rtol=0, atol=0)
    torch.testing.assert_close(boxes_overlap(a.T.contiguous().T, b), ref, rtol=0, atol=0)  # column-major
    torch.testing.assert_close(boxes_overlap(a.requires_grad_(), b), ref, rtol=0, atol=0)
    assert boxes_overlap(torch.zeros(0, 3, 5), b).shape == (0, 3, 131)
    assert boxes_overlap(a, torch.zeros(2, 0, 5)).shape == (2, 97, 0)


def test_torch_fallback_without_numba_jit():
    """With numba's JIT disabled (`NUMBA_DISABLE_JIT=1`, the kernel would run as slow pure Python),
    `boxes_overlap` takes the torch path and answers the same."""
    a, b = _agreement_boxes()
    code = (
        "import sys, torch, agents.boxes as m; a, b = torch.load(sys.argv[1]); "
        "assert m._kernel() is None; torch.save(m.boxes_overlap(a, b), sys.argv[2])"
    )
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.pt"), Path(tmp, "out.pt")
        torch.save((a, b), src)
        env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
        subprocess.run([sys.executable, "-c", code, str(src), str(dst)], check=True, env=env, timeout=120)
        torch.testing.assert_close(torch.load(dst), boxes_overlap(a, b), rtol=0, atol=0)


def test_box_distance_matches_shapely(random_pairs):
    a, b, _ = random_pairs
    a, b = a[:120], b[:90]
    got = box_distance(a, b)
    ref = shapely.distance(_polys(a)[:, None], _polys(b)[None, :])
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-9)
    assert float((got == 0).double().mean()) > 0.02
    assert box_distance(a[None, :5], b[None, :7]).shape == (1, 5, 7)


def test_corners_are_ccw_and_match_size():
    boxes = _random_boxes(200, 9)
    corners = box_corners(boxes)
    assert corners.shape == (200, 4, 2)
    ring = shapely.polygons(corners.numpy())
    assert bool(shapely.is_ccw(shapely.get_exterior_ring(ring)).all())
    np.testing.assert_allclose(shapely.area(ring), (boxes[:, 3] * boxes[:, 4]).numpy(), rtol=1e-12)
    # first corner is front-right
    fr = box_corners(torch.tensor([1.0, 2.0, 0.0, 4.0, 2.0]))
    torch.testing.assert_close(fr[0], torch.tensor([3.0, 1.0]))


def test_ego_boxes_offset_along_yaw():
    poses = torch.tensor([[0.0, 0.0, 0.0], [10.0, -2.0, math.pi / 2]])
    boxes = ego_boxes(poses)
    torch.testing.assert_close(boxes[0], torch.tensor([EGO.rear_axle_to_center, 0.0, 0.0, EGO.length, EGO.width]))
    torch.testing.assert_close(boxes[1, :2], torch.tensor([10.0, -2.0 + EGO.rear_axle_to_center]))
    # the rear axle is inside the box, 1.38 m ahead of the box's rear... i.e. the box spans [-0.662, 3.422] m
    xs = box_corners(boxes[0])[:, 0]
    torch.testing.assert_close(xs.min(), torch.tensor(EGO.rear_axle_to_center - EGO.length / 2))
    assert ego_boxes(torch.zeros(2, 3, 6, 3)).shape == (2, 3, 6, 5)


def test_agent_boxes_from_states():
    s = AgentStates.create(
        xy=torch.tensor([[1.0, 2.0]]),
        yaw=torch.tensor([0.5]),
        size=torch.tensor([[4.0, 2.0, 1.5]]),
        cls=torch.tensor([int(AgentClass.CAR)]),
    )
    torch.testing.assert_close(agent_boxes(s), torch.tensor([[1.0, 2.0, 0.5, 4.0, 2.0]]))


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda: boxes_overlap(torch.zeros(3, 4), torch.zeros(2, 5)), "a must have shape"),
        (lambda: boxes_overlap(torch.zeros(3, 5), torch.zeros(5)), "b must have shape"),
        (lambda: boxes_overlap(torch.zeros(2, 3, 5), torch.zeros(3, 4, 5)), "leading dims that do not broadcast"),
        (lambda: boxes_overlap(torch.zeros(2, 3, 5).half(), torch.zeros(3, 4, 5)), "leading dims that do not"),
        (lambda: boxes_overlap_paired(torch.zeros(5), torch.full((5,), float("nan"))), "b contains NaN"),
        (lambda: boxes_overlap(torch.zeros(2, 5), torch.tensor([[0.0, 0, 0, 1, float("inf")]])), "b contains NaN"),
        (lambda: boxes_overlap(torch.tensor([[0.0, 0, 0, 1, -1]]).double(), torch.zeros(1, 3, 5)), "a has a negative"),
        (lambda: boxes_overlap(torch.full((1, 5), float("nan")), torch.zeros(1, 5)), "a contains NaN"),
        (lambda: box_distance(torch.tensor([[0.0, 0, 0, -1, 1]]), torch.zeros(1, 5)), "a has a negative"),
        (lambda: box_corners(torch.zeros(5, dtype=torch.int64)), "boxes must be a floating-point"),
        (lambda: ego_boxes(torch.zeros(4, 2)), "poses must be"),
    ],
)
def test_bad_input_names_the_argument(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
