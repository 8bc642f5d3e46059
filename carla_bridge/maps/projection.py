"""Vectorized projection of world points onto the nearest driving-lane centreline.

All lane segments (≈1 m) are stacked; a KD-tree over segment midpoints gives K candidates per query
point, and the exact point-to-segment distance picks the nearest. With an optional heading hint the
cost adds ``heading_weight · |Δyaw|`` so overlapping junction lanes resolve to the one being driven.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from carla_bridge.coords import wrap_angle_np
from carla_bridge.maps.lanes import Lane


class LaneIndex:
    """Segment index over lanes for `project`.

    Attributes:
        seg_a, seg_b: `[G, 2]` segment endpoints; seg_lane `[G]` lane id; seg_s0 `[G]` arc length at seg_a;
        seg_yaw `[G]` segment heading [rad].
    """

    def __init__(self, lanes: list[Lane], candidates: int = 16) -> None:
        a, b, lane_ids, s0 = [], [], [], []
        for ln in lanes:
            a.append(ln.points[:-1])
            b.append(ln.points[1:])
            lane_ids.append(np.full(len(ln.points) - 1, ln.id, np.int64))
            s0.append(ln.s[:-1])
        self.seg_a = np.concatenate(a)
        self.seg_b = np.concatenate(b)
        self.seg_lane = np.concatenate(lane_ids)
        self.seg_s0 = np.concatenate(s0)
        d = self.seg_b - self.seg_a
        self.seg_len = np.linalg.norm(d, axis=1)
        self.seg_yaw = np.arctan2(d[:, 1], d[:, 0])
        self.tree = cKDTree(0.5 * (self.seg_a + self.seg_b))
        self.k = min(candidates, len(self.seg_a))

    def project(
        self, xy: np.ndarray, yaw: np.ndarray | None = None, heading_weight: float = 2.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Project points onto their nearest lane.

        Args:
            xy: `[M, 2]` world points [m].
            yaw: optional `[M]` headings [rad]; adds `heading_weight` [m/rad] × |Δyaw| to the distance.

        Returns:
            (lane `[M]` int64, s `[M]` arc length on that lane [m], lateral `[M]` signed offset [m], positive
            left of the lane direction, distance `[M]` [m]).
        """
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"project: xy must have shape [M, 2], got {list(xy.shape)}")
        if not np.isfinite(xy).all():
            raise ValueError("project: xy contains NaN or inf")
        m = len(xy)
        if m == 0:
            e = np.zeros(0)
            return e.astype(np.int64), e, e, e
        _, cand = self.tree.query(xy, k=self.k)  # [M, K]
        cand = cand.reshape(m, -1)
        a, b = self.seg_a[cand], self.seg_b[cand]  # [M, K, 2]
        d = b - a
        ln2 = np.maximum((d**2).sum(-1), 1e-12)
        rel = xy[:, None, :] - a
        t = np.clip((rel * d).sum(-1) / ln2, 0.0, 1.0)  # [M, K]
        foot = a + t[..., None] * d
        dist = np.linalg.norm(xy[:, None, :] - foot, axis=-1)
        cost = dist
        if yaw is not None:
            yaw = np.asarray(yaw, dtype=np.float64).reshape(m)
            cost = dist + heading_weight * np.abs(wrap_angle_np(yaw[:, None] - self.seg_yaw[cand]))
        k = np.argmin(cost, axis=1)
        rows = np.arange(m)
        g = cand[rows, k]
        tk = t[rows, k]
        s = self.seg_s0[g] + tk * self.seg_len[g]
        dk = d[rows, k]
        cross = dk[:, 0] * rel[rows, k, 1] - dk[:, 1] * rel[rows, k, 0]
        lateral = np.sign(cross) * dist[rows, k]
        return self.seg_lane[g], s, lateral, dist[rows, k]

    def candidates(self, xy: np.ndarray, radius: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Every lane passing within `radius` of each point, at its closest point.

        Args:
            xy: `[M, 2]` world points [m].
            radius: search radius [m].

        Returns:
            per point: (lane `[C]` int64, s `[C]`, distance `[C]`, segment yaw `[C]`), sorted by distance.
        """
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        out = []
        # A segment whose closest point is within `radius` has its midpoint within radius + half its length.
        reach = radius + 0.5 * float(self.seg_len.max())
        for p, idx in zip(xy, self.tree.query_ball_point(xy, reach)):
            g = np.asarray(idx, dtype=np.int64)
            if len(g) == 0:
                out.append((g, np.zeros(0), np.zeros(0), np.zeros(0)))
                continue
            a, d = self.seg_a[g], self.seg_b[g] - self.seg_a[g]
            t = np.clip(((p - a) * d).sum(-1) / np.maximum((d**2).sum(-1), 1e-12), 0.0, 1.0)
            dist = np.linalg.norm(p - (a + t[:, None] * d), axis=1)
            keep = dist <= radius
            g, t, dist = g[keep], t[keep], dist[keep]
            order = np.argsort(dist, kind="stable")
            g, t, dist = g[order], t[order], dist[order]
            _, first = np.unique(self.seg_lane[g], return_index=True)
            first = np.sort(first)
            gf = g[first]
            out.append(
                (self.seg_lane[gf], self.seg_s0[gf] + t[first] * self.seg_len[gf], dist[first], self.seg_yaw[gf])
            )
        return out
