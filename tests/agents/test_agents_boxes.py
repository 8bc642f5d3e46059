import math

import numpy as np
import pytest
import shapely
import torch

from agents import EGO, AgentClass, AgentStates
from agents.boxes import (
    _candidate_pairs,
    _overlap_all_pairs,
    _overlap_broad_phase,
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


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_broad_phase_path_agrees_with_all_pairs_exact_path(dtype):
    a, b = (x.to(dtype) for x in _agreement_boxes())  # ~800 x ~900 boxes: ~700k pairs
    fast, exact = _overlap_broad_phase(a, b), _overlap_all_pairs(a, b)
    torch.testing.assert_close(fast, exact, rtol=0, atol=0)
    torch.testing.assert_close(boxes_overlap(a, b), exact, rtol=0, atol=0)
    c = len(_touching_cases())
    assert bool(fast.diagonal()[:c].all())  # touching pairs overlap
    assert not bool(fast.diagonal()[c : 2 * c].any())  # 1e-3 m apart: no overlap
    assert 0.005 < float(exact.double().mean()) < 0.2
    # the broad phase does prune: far fewer candidates than pairs, yet a superset of the overlaps
    from agents.boxes import _ROUNDING_ULPS, _box_table

    boxes = torch.cat([a, b]).double().numpy()
    table = _box_table(boxes, torch.finfo(dtype).eps * _ROUNDING_ULPS)
    idx = _candidate_pairs(table, len(a), (1, len(a), len(b)))
    assert idx.size < 0.3 * a.shape[0] * b.shape[0]
    assert set(np.flatnonzero(exact.numpy())) <= set(idx.tolist())


def test_broad_phase_path_batched_matches_all_pairs():
    a, b = _agreement_boxes()
    a, b = a[:240].reshape(4, 1, 60, 5), b[:210].reshape(1, 3, 70, 5)
    got = boxes_overlap(a, b)
    assert got.shape == (4, 3, 60, 70)
    torch.testing.assert_close(got, _overlap_all_pairs(a, b), rtol=0, atol=0)
    assert bool(got.any())


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
