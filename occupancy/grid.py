"""`GridSpec`: an axis-aligned voxel grid in the ego frame (bounds, voxel size, shape).

Occ3D-nuScenes labels use x, y ∈ [-40, 40] m, z ∈ [-1, 5.4] m, voxel 0.4 m → 200 × 200 × 16.
Models may use coarser specs; resampling between specs is explicit (`occupancy.resample`).
Index order is (x, y, z): `grid[ix, iy, iz]`, ix growing with x (forward), iy with y (left).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class GridSpec:
    """Voxel grid.

    Attributes:
        lower: (x, y, z) lower bounds [m].
        upper: (x, y, z) upper bounds [m].
        voxel: (dx, dy, dz) voxel size [m]; (upper - lower) / voxel must be whole numbers.
    """

    lower: tuple[float, float, float] = (-40.0, -40.0, -1.0)
    upper: tuple[float, float, float] = (40.0, 40.0, 5.4)
    voxel: tuple[float, float, float] = (0.4, 0.4, 0.4)

    def __post_init__(self) -> None:
        for i, axis in enumerate("xyz"):
            if not self.voxel[i] > 0:
                raise ValueError(f"GridSpec.voxel[{axis}] must be positive, got {self.voxel[i]}")
            n = (self.upper[i] - self.lower[i]) / self.voxel[i]
            if n < 1 or abs(n - round(n)) > 1e-6:
                raise ValueError(
                    f"GridSpec extent along {axis} ({self.lower[i]}..{self.upper[i]}) is not a whole "
                    f"number of voxels of {self.voxel[i]} m"
                )

    @classmethod
    def occ3d(cls) -> GridSpec:
        """The Occ3D-nuScenes label grid: 200 × 200 × 16 at 0.4 m."""
        return cls()

    @classmethod
    def uniform(cls, lower: tuple[float, float, float], upper: tuple[float, float, float], size: float) -> GridSpec:
        return cls(tuple(lower), tuple(upper), (size, size, size))  # type: ignore[arg-type]

    def coarsen(self, factor: int, z_factor: int | None = None) -> GridSpec:
        """Same bounds, voxels `factor` times larger in x, y (and `z_factor`, default `factor`, in z)."""
        zf = factor if z_factor is None else z_factor
        return GridSpec(self.lower, self.upper, (self.voxel[0] * factor, self.voxel[1] * factor, self.voxel[2] * zf))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(X, Y, Z) number of voxels."""
        return tuple(round((self.upper[i] - self.lower[i]) / self.voxel[i]) for i in range(3))  # type: ignore[return-value]

    @property
    def bev_shape(self) -> tuple[int, int]:
        """(X, Y)."""
        return self.shape[0], self.shape[1]

    def axis_centers(self, axis: int, device: torch.device | str = "cpu") -> Tensor:
        """`[n]` voxel-centre coordinates along axis 0 (x), 1 (y) or 2 (z)."""
        n = self.shape[axis]
        return self.lower[axis] + (torch.arange(n, device=device, dtype=torch.float32) + 0.5) * self.voxel[axis]

    def voxel_centers(self, device: torch.device | str = "cpu") -> Tensor:
        """`[X, Y, Z, 3]` voxel-centre coordinates [m]."""
        xs, ys, zs = (self.axis_centers(i, device) for i in range(3))
        return torch.stack(torch.meshgrid(xs, ys, zs, indexing="ij"), dim=-1)

    def bev_centers(self, device: torch.device | str = "cpu") -> Tensor:
        """`[X, Y, 2]` cell-centre (x, y) coordinates [m]."""
        xs, ys = self.axis_centers(0, device), self.axis_centers(1, device)
        return torch.stack(torch.meshgrid(xs, ys, indexing="ij"), dim=-1)

    def world_to_voxel(self, points: Tensor) -> Tensor:
        """`[..., D]` points (D = 2 or 3) → `[..., D]` int64 voxel indices (floor). Out-of-grid points
        get out-of-range indices; use `contains` to mask them."""
        d = points.shape[-1]
        lower = torch.tensor(self.lower[:d], dtype=points.dtype, device=points.device)
        voxel = torch.tensor(self.voxel[:d], dtype=points.dtype, device=points.device)
        return torch.floor((points - lower) / voxel).long()

    def voxel_to_world(self, index: Tensor) -> Tensor:
        """`[..., D]` integer indices → `[..., D]` voxel-centre coordinates [m]."""
        d = index.shape[-1]
        lower = torch.tensor(self.lower[:d], dtype=torch.float32, device=index.device)
        voxel = torch.tensor(self.voxel[:d], dtype=torch.float32, device=index.device)
        return lower + (index.float() + 0.5) * voxel

    def contains(self, points: Tensor) -> Tensor:
        """`[..., D]` points → `[...]` bool, True inside the grid bounds (D = 2 or 3)."""
        d = points.shape[-1]
        lower = torch.tensor(self.lower[:d], dtype=points.dtype, device=points.device)
        upper = torch.tensor(self.upper[:d], dtype=points.dtype, device=points.device)
        return ((points >= lower) & (points < upper)).all(dim=-1)

    def to_dict(self) -> dict[str, list[float]]:
        return {"lower": list(self.lower), "upper": list(self.upper), "voxel": list(self.voxel)}

    @classmethod
    def from_dict(cls, d: dict) -> GridSpec:
        return cls(tuple(d["lower"]), tuple(d["upper"]), tuple(d["voxel"]))  # type: ignore[arg-type]

    def cell_area(self) -> float:
        return self.voxel[0] * self.voxel[1]

    def diagonal(self) -> float:
        return math.hypot(self.voxel[0], self.voxel[1])
