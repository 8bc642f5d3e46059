"""Polylines with widths → shapely polygons and offset lines (lane areas, strips, boundaries, dashes)."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon


def left_normals(points: np.ndarray) -> np.ndarray:
    """`[P, 2]` polyline → `[P, 2]` unit left normals (from central-difference tangents)."""
    d = np.gradient(points, axis=0) if len(points) > 1 else np.array([[1.0, 0.0]])
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    return np.stack([-d[:, 1], d[:, 0]], -1)


def offset_line(points: np.ndarray, offsets: np.ndarray | float) -> np.ndarray:
    """`[P, 2]` polyline shifted left by `offsets` `[P]` (negative = right) [m]."""
    return points + left_normals(points) * np.broadcast_to(np.asarray(offsets, float), (len(points),))[:, None]


def strip_polygon(points: np.ndarray, widths: np.ndarray | float) -> Polygon:
    """The area of a strip of `widths` `[P]` centred on `points` `[P, 2]` (made valid if it self-intersects)."""
    half = 0.5 * np.broadcast_to(np.asarray(widths, float), (len(points),))
    left, right = offset_line(points, half), offset_line(points, -half)
    poly = Polygon(np.concatenate([left, right[::-1]]))
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
        polys = [g for g in getattr(poly, "geoms", [poly]) if isinstance(g, Polygon)]
        poly = shapely.union_all(polys) if polys else Polygon()
    return poly


def dashed(points: np.ndarray, on: float = 3.0, off: float = 3.0, step: float = 0.5) -> list[LineString]:
    """Dashes (`on` m painted, `off` m gap) along a `[P, 2]` polyline, each resampled every `step` m."""
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    out = []
    for a in np.arange(0.0, cum[-1], on + off):
        b = min(a + on, cum[-1])
        if b - a <= 0.1:
            continue
        s = np.linspace(a, b, max(2, int(np.ceil((b - a) / step)) + 1))
        out.append(LineString(np.stack([np.interp(s, cum, points[:, 0]), np.interp(s, cum, points[:, 1])], -1)))
    return out


def segment_across(center: np.ndarray, heading: float, length: float) -> LineString:
    """A segment of `length` [m] centred on `center` `[2]`, perpendicular to `heading` [rad]."""
    n = np.array([-np.sin(heading), np.cos(heading)]) * (length / 2.0)
    return LineString([center - n, center + n])
