"""Reference ray caster: a brute-force torch slab test of every ray against every yaw-oriented box plus a
flat ground plane. Independent of the triangle mesh and Embree; used to cross-check `render_cameras` in
the tests and in `bench/bench_render.py` (it is ~30× slower, so only for small cases).
"""

from __future__ import annotations

import torch
from torch import Tensor


def slab_cast(
    origins: Tensor, directions: Tensor, boxes: Tensor, ground_z: float | None = 0.0, chunk: int = 65536
) -> tuple[Tensor, Tensor]:
    """First hits of rays against boxes and the plane z = ground_z.

    Args:
        origins: `[N, 3]` ray origins.
        directions: `[N, 3]` ray directions (t is in units of their length).
        boxes: `[K, 7]` (x, y, z_centre, yaw, length, width, height).
        ground_z: height of the ground plane, or None for no ground.
        chunk: rays per batch (memory: chunk × K floats × ~10).

    Returns:
        t: `[N]` float64 first-hit parameter (inf: none).
        prim: `[N]` int64 box index, -1 for the ground or no hit.
    """
    o_all = origins.double()
    d_all = directions.double()
    b = boxes.double()
    n = len(o_all)
    t_out = torch.full((n,), float("inf"), dtype=torch.float64)
    p_out = torch.full((n,), -1, dtype=torch.int64)
    c, s = torch.cos(b[:, 3]), torch.sin(b[:, 3])
    half = b[:, 4:7] / 2
    for lo in range(0, n, chunk):
        o, d = o_all[lo : lo + chunk], d_all[lo : lo + chunk]
        if len(b):
            rel = o[:, None, :] - b[None, :, :3]  # [n,K,3]
            # Into each box frame (rotate by -yaw about z).
            ox = c * rel[..., 0] + s * rel[..., 1]
            oy = -s * rel[..., 0] + c * rel[..., 1]
            dx = c * d[:, None, 0] + s * d[:, None, 1]
            dy = -s * d[:, None, 0] + c * d[:, None, 1]
            dz = d[:, None, 2].expand_as(dx)
            ol = torch.stack([ox, oy, rel[..., 2]], -1)
            dl = torch.stack([dx, dy, dz], -1)
            inv = 1.0 / torch.where(dl.abs() < 1e-12, torch.full_like(dl, 1e-12), dl)
            t1 = (-half - ol) * inv
            t2 = (half - ol) * inv
            tnear = torch.minimum(t1, t2).amax(-1)
            tfar = torch.maximum(t1, t2).amin(-1)
            hit = (tfar >= tnear) & (tfar > 0)
            tb = torch.where(hit, tnear.clamp_min(0.0), torch.full_like(tnear, float("inf")))
            tmin, arg = tb.min(1)
        else:
            tmin = torch.full((len(o),), float("inf"), dtype=torch.float64)
            arg = torch.full((len(o),), -1, dtype=torch.int64)
        prim = torch.where(torch.isfinite(tmin), arg, torch.full_like(arg, -1))
        if ground_z is not None:
            tg = (ground_z - o[:, 2]) / torch.where(d[:, 2] < -1e-12, d[:, 2], torch.full_like(d[:, 2], -1e-12))
            tg = torch.where((d[:, 2] < -1e-12) & (tg > 0), tg, torch.full_like(tg, float("inf")))
            g = tg < tmin
            tmin = torch.where(g, tg, tmin)
            prim = torch.where(g, torch.full_like(prim, -1), prim)
        t_out[lo : lo + chunk] = tmin
        p_out[lo : lo + chunk] = prim
    return t_out, p_out
