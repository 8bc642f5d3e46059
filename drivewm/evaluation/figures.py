"""Report figures: predicted vs true BEV occupancy per horizon (with agents and the plan), and
predicted boxes and the plan projected onto the six cameras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from agents.boxes import box_corners
from drivewm.data.config import CAMERAS
from occupancy import GridSpec
from occupancy.render import bev_figure, draw_boxes, draw_ego, draw_trajectories, save_figure


def bev_comparison(sample: dict, grid: GridSpec, path: Path, steps: tuple[int, ...] = (1, 3, 5)) -> Path:
    """Row 1: predicted obstacle probability under the logged plan + detections and their most
    likely futures; row 2: true semantics + true boxes and futures. Columns: horizons."""
    fig = Figure(figsize=(4.2 * len(steps), 8.4))
    FigureCanvasAgg(fig)
    (x0, y0, _), (x1, y1, _) = grid.lower, grid.upper
    t_max = sample["obstacle"].shape[0]
    for col, s in enumerate(s for s in steps if s < t_max):
        ax = fig.add_subplot(2, len(steps), col + 1)
        prob = sample["obstacle"][s].numpy()
        ax.imshow(prob[::-1, ::-1], extent=(y1, y0, x0, x1), cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"predicted obstacles t = {0.5 * (s + 1):.1f} s", fontsize=9)
        if len(sample["det_boxes"]):
            draw_boxes(ax, sample["det_boxes"], color="cyan")
            best = sample["det_probs"].argmax(-1)
            top = sample["det_trajs"][torch.arange(len(best)), best]  # [A, T, 3]
            draw_trajectories(ax, top[:, : s + 1], color="cyan")
        _plan(ax, sample["plan"], s, "lime")
        _plan(ax, sample["plan_model"], s, "red")
        ax.set_xlim(y1, y0)
        ax.set_ylim(x0, x1)
        ax2 = fig.add_subplot(2, len(steps), len(steps) + col + 1)
        bev_figure(sample["gt_sem"][s], grid, ax=ax2, legend=col == 0)
        ax2.set_title(f"ground truth t = {0.5 * (s + 1):.1f} s", fontsize=9)
        if len(sample["gt_boxes"]):
            draw_boxes(ax2, sample["gt_boxes"], color="black")
            draw_trajectories(ax2, sample["gt_trajs"][:, : s + 1], sample["gt_trajs_valid"][:, : s + 1], color="black")
        _plan(ax2, sample["plan"], s, "lime")
    fig.suptitle(f"{sample['token']}: green = logged plan, red = model plan, cyan = detections", fontsize=10)
    return save_figure(fig, path, dpi=80)


def _plan(ax, plan: torch.Tensor, step: int, color: str) -> None:
    xy = np.concatenate([np.zeros((1, 2)), plan[: step + 1, :2].numpy()])
    ax.plot(xy[:, 1], xy[:, 0], color=color, lw=1.5)
    draw_ego(ax, tuple(float(v) for v in plan[step]), color=color, linewidth=1.0)


def _project(points: np.ndarray, k: np.ndarray, cam_to_ego: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ego-frame points `[P, 3]` → pixels `[P, 2]` and in-front mask `[P]`."""
    ego_to_cam = np.linalg.inv(cam_to_ego)
    cam = points @ ego_to_cam[:3, :3].T + ego_to_cam[:3, 3]
    z = cam[:, 2]
    pix = cam @ k.T
    uv = pix[:, :2] / np.maximum(z, 1e-3)[:, None]
    return uv, z > 0.5


def camera_overlay(sample: dict, path: Path, box_height: float = 1.6) -> Path:
    """The six cameras with the logged plan (green), the model plan (red) and the predicted boxes (cyan)."""
    fig = Figure(figsize=(15, 6))
    FigureCanvasAgg(fig)
    images = sample["images"].permute(0, 2, 3, 1).numpy()
    h, w = images.shape[1:3]
    for v, name in enumerate(CAMERAS):
        ax = fig.add_subplot(2, 3, v + 1)
        ax.imshow(images[v])
        k, m = sample["intrinsics"][v].numpy(), sample["cam_to_ego"][v].numpy()
        for plan, color in ((sample["plan"], "lime"), (sample["plan_model"], "red")):
            pts = np.concatenate([np.zeros((1, 3)), np.c_[plan[:, :2].numpy(), np.zeros(len(plan))]])
            uv, ok = _project(pts, k, m)
            if ok.sum() >= 2:
                ax.plot(uv[ok, 0], uv[ok, 1], color=color, lw=2)
        boxes = sample["det_boxes"]
        if len(boxes):
            corners = box_corners(boxes).numpy()  # [M, 4, 2]
            for c in corners:
                for z0 in (0.0, box_height):
                    pts = np.c_[np.r_[c, c[:1]], np.full(5, z0)]
                    uv, ok = _project(pts, k, m)
                    if ok.all():
                        ax.plot(uv[:, 0], uv[:, 1], color="cyan", lw=1)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{sample['token']}: green = logged plan, red = model plan, cyan = predicted boxes", fontsize=10)
    return save_figure(fig, path, dpi=80)
