"""BEV rendering of occupancy for reports: colour images and matplotlib overlays.

Image convention (as a driver's map): the ego's x (forward) points **up**, y (left) points **left**.
For a grid `[X, Y, Z]` the BEV image is `[X, Y, 3]` (rows = X, columns = Y) with
`image[r, c] = colour of column (ix = X - 1 - r, iy = Y - 1 - c)`. Matplotlib figures use the same
view in metres: the horizontal axis is y (decreasing to the right), the vertical axis is x; overlay
helpers take ego-frame (x, y) and do the swap. Figures are built without pyplot (no global state).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from agents.boxes import box_corners
from agents.ego import EGO, EgoVehicle
from occupancy.atomic import atomic_path
from occupancy.classes import NUM_CLASSES, OCC3D_CLASSES, OCC3D_COLORS, Occ3DClass
from occupancy.grid import GridSpec

__all__ = [
    "bev_figure",
    "bev_image",
    "bev_labels",
    "draw_boxes",
    "draw_ego",
    "draw_plans",
    "draw_trajectories",
    "render_bev",
    "save_figure",
]


_OCC3D = GridSpec.occ3d()


def _np(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def bev_labels(semantics: np.ndarray | torch.Tensor) -> np.ndarray:
    """`[X, Y, Z]` labels → `[X, Y]` uint8: the class of the highest non-free voxel of each column
    (`FREE` where the column is empty)."""
    sem = _np(semantics)
    if sem.ndim != 3:
        raise ValueError(f"semantics must have shape [X, Y, Z], got {sem.shape}")
    if sem.size and (sem.min() < 0 or sem.max() >= NUM_CLASSES):
        raise ValueError(f"semantics has class ids outside 0..{NUM_CLASSES - 1}")
    occupied = sem != Occ3DClass.FREE  # [X, Y, Z]
    z = sem.shape[2]
    top = z - 1 - np.argmax(occupied[:, :, ::-1], axis=2)  # [X, Y] highest occupied layer
    out = np.take_along_axis(sem, top[:, :, None], axis=2)[:, :, 0].astype(np.uint8)
    out[~occupied.any(axis=2)] = Occ3DClass.FREE
    return out


def bev_image(semantics: np.ndarray | torch.Tensor, colors: np.ndarray = OCC3D_COLORS) -> np.ndarray:
    """`[X, Y, Z]` labels → `[X, Y, 3]` uint8 RGB top-down image (x up, y left; see module docstring)."""
    colors = np.asarray(colors, dtype=np.uint8)
    if colors.shape != (NUM_CLASSES, 3):
        raise ValueError(f"colors must have shape [{NUM_CLASSES}, 3], got {colors.shape}")
    return colors[bev_labels(semantics)[::-1, ::-1]]


def bev_figure(
    semantics: np.ndarray | torch.Tensor | None,
    grid: GridSpec = _OCC3D,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (6.0, 6.0),
    legend: bool = True,
) -> tuple[Figure, Axes]:
    """A figure showing the BEV image of `semantics` (or an empty grid) in ego-frame metres.

    Returns:
        (figure, axes); draw overlays with the `draw_*` helpers.
    """
    if ax is None:
        fig = Figure(figsize=figsize)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    (x0, y0, _), (x1, y1, _) = grid.lower, grid.upper
    if semantics is not None:
        img = bev_image(semantics)
        ax.imshow(img, extent=(y1, y0, x0, x1), origin="upper", interpolation="nearest")
        if legend:
            shown = sorted(set(np.unique(bev_labels(semantics)).tolist()) - {Occ3DClass.FREE})
            handles = [Polygon(np.zeros((3, 2)), color=OCC3D_COLORS[c] / 255.0, label=OCC3D_CLASSES[c]) for c in shown]
            if handles:
                ax.legend(handles=handles, loc="upper right", fontsize=6, framealpha=0.8)
    ax.set_xlim(y1, y0)
    ax.set_ylim(x0, x1)
    ax.set_aspect("equal")
    ax.set_xlabel("y [m] (left)")
    ax.set_ylabel("x [m] (forward)")
    return fig, ax


def _boxes5(boxes: np.ndarray | torch.Tensor) -> torch.Tensor:
    b = torch.as_tensor(_np(boxes), dtype=torch.float32)
    if b.dim() != 2 or b.shape[-1] != 5:
        raise ValueError(f"boxes must have shape [M, 5] (x, y, yaw, length, width), got {tuple(b.shape)}")
    return b


def draw_boxes(
    ax: Axes,
    boxes: np.ndarray | torch.Tensor,
    color: str | tuple | list = "black",
    heading: bool = True,
    linewidth: float = 1.0,
    fill: bool = False,
    labels: list[str] | None = None,
) -> None:
    """Draw oriented boxes `[M, 5]` (x, y, yaw, length, width) in the ego frame; `color` is one colour
    or a list of M; `heading` draws a line from the centre to the front edge."""
    b = _boxes5(boxes)
    corners = box_corners(b).numpy() if b.shape[0] else np.zeros((0, 4, 2))  # [M, 4, 2]
    colors = color if isinstance(color, list) else [color] * len(corners)
    for i, c in enumerate(corners):
        ax.add_patch(
            Polygon(c[:, ::-1], closed=True, fill=fill, edgecolor=colors[i], facecolor=colors[i], lw=linewidth)
        )
        if heading:
            front = c[:2].mean(0)
            ax.plot([b[i, 1], front[1]], [b[i, 0], front[0]], color=colors[i], lw=linewidth)
        if labels is not None:
            ax.annotate(labels[i], (float(b[i, 1]), float(b[i, 0])), fontsize=6, color=colors[i])


def draw_ego(ax: Axes, pose: tuple[float, float, float] = (0.0, 0.0, 0.0), ego: EgoVehicle = EGO, **kw) -> None:
    """Draw the ego box for a rear-axle pose (x, y, yaw) in the ego frame (default: the origin)."""
    x, y, yaw = pose
    cx, cy = x + ego.rear_axle_to_center * np.cos(yaw), y + ego.rear_axle_to_center * np.sin(yaw)
    kw.setdefault("color", "red")
    kw.setdefault("linewidth", 1.5)
    draw_boxes(ax, np.array([[cx, cy, yaw, ego.length, ego.width]]), **kw)


def draw_trajectories(
    ax: Axes,
    trajectories: np.ndarray | torch.Tensor,
    valid: np.ndarray | torch.Tensor | None = None,
    color: str = "tab:blue",
    marker: str = ".",
    linewidth: float = 1.0,
) -> None:
    """Draw `[A, T, >=2]` (x, y, ...) trajectories; `valid` `[A, T]` hides invalid steps."""
    tr = _np(trajectories)
    if tr.ndim != 3 or tr.shape[-1] < 2:
        raise ValueError(f"trajectories must have shape [A, T, >=2], got {tr.shape}")
    ok = np.ones(tr.shape[:2], dtype=bool) if valid is None else _np(valid).astype(bool)
    if ok.shape != tr.shape[:2]:
        raise ValueError(f"valid must have shape {tr.shape[:2]}, got {ok.shape}")
    for a in range(tr.shape[0]):
        pts = tr[a, ok[a], :2]
        if len(pts):
            ax.plot(pts[:, 1], pts[:, 0], color=color, marker=marker, ms=2, lw=linewidth)


def draw_plans(
    ax: Axes,
    plans: np.ndarray | torch.Tensor,
    scores: np.ndarray | torch.Tensor | None = None,
    cmap: str = "viridis",
    best: int | None = None,
    colorbar: bool = True,
) -> None:
    """Draw candidate ego plans `[N, T, 3]` (rear-axle x, y, yaw) from the origin, coloured by `scores`
    `[N]` (higher = better); `best` is highlighted in red with its final ego box."""
    p = _np(plans)
    if p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"plans must have shape [N, T, 3], got {p.shape}")
    n = p.shape[0]
    s = np.zeros(n) if scores is None else _np(scores).astype(float)
    if s.shape != (n,):
        raise ValueError(f"scores must have shape [{n}], got {s.shape}")
    finite = np.isfinite(s)
    lo, hi = (s[finite].min(), s[finite].max()) if finite.any() else (0.0, 1.0)
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-6)
    cm = colormaps[cmap]
    for i in np.argsort(np.where(finite, s, -np.inf)):  # best drawn last (on top)
        xy = np.concatenate([np.zeros((1, 2)), p[i, :, :2]])
        ax.plot(xy[:, 1], xy[:, 0], color=cm(norm(s[i])) if finite[i] else "grey", lw=0.8, alpha=0.8)
    if best is not None:
        xy = np.concatenate([np.zeros((1, 2)), p[best, :, :2]])
        ax.plot(xy[:, 1], xy[:, 0], color="red", lw=2.0)
        draw_ego(ax, tuple(float(v) for v in p[best, -1]), color="red", linewidth=1.0)
    if colorbar and scores is not None:
        ax.figure.colorbar(ScalarMappable(norm=norm, cmap=cm), ax=ax, fraction=0.04, label="plan score")


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a figure as PNG atomically (temporary file + rename); parent directories are created."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    return Path(path)


def render_bev(
    semantics: np.ndarray | torch.Tensor | None,
    grid: GridSpec = _OCC3D,
    boxes: np.ndarray | torch.Tensor | None = None,
    trajectories: np.ndarray | torch.Tensor | None = None,
    trajectory_valid: np.ndarray | torch.Tensor | None = None,
    plans: np.ndarray | torch.Tensor | None = None,
    scores: np.ndarray | torch.Tensor | None = None,
    best: int | None = None,
    ego: bool = True,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """One-call report figure: BEV occupancy + agent boxes `[M, 5]` + trajectories `[A, T, 2]` +
    candidate plans `[N, T, 3]` coloured by `scores` `[N]` + the ego box; saved as PNG if `path`."""
    fig, ax = bev_figure(semantics, grid)
    if boxes is not None:
        draw_boxes(ax, boxes, color="black")
    if trajectories is not None:
        draw_trajectories(ax, trajectories, trajectory_valid)
    if plans is not None:
        draw_plans(ax, plans, scores, best=best)
    if ego:
        draw_ego(ax)
    if title:
        ax.set_title(title)
    if path is not None:
        save_figure(fig, path)
    return fig
