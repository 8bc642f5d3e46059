"""Rendering of an open-loop run: the report's tables, report.md/.html, and its figures — predicted vs
true BEV occupancy per horizon (with agents and the plan), and predicted boxes and the plan projected
onto the six cameras."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from agents.boxes import box_corners
from drivewm.data.config import CAMERAS
from drivewm.evaluation.common.report import html_page, html_table, md_table, write_results
from occupancy import GridSpec
from occupancy.atomic import write_text_atomic
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


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def report_tables(results: dict) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, header, rows, note) tables shared by the Markdown and HTML reports."""
    tables = []
    hz = [str(float(t)) for t in results["eval_config"]["planning_horizons"]]  # keys of results["planning"]
    rows = []
    for name, r in results["planning"].items():
        for conv, label in (("avg", "average up to t"), ("at", "at t")):
            rows.append(
                [name, label]
                + [_fmt(r["l2"][conv].get(h)) for h in hz]
                + [
                    _fmt(100 * r["collision"][conv][h] if r["collision"][conv].get(h) is not None else None, 2)
                    for h in hz
                ]
            )
    any_plan = next(iter(results["planning"].values()))
    tables.append(
        (
            "Planning (open loop)",
            ["plan", "convention"]
            + [f"L2 {float(h):g}s" + (" [m]" if i == 0 else "") for i, h in enumerate(hz)]
            + [f"coll. {float(h):g}s" + (" [%]" if i == 0 else "") for i, h in enumerate(hz)],
            rows,
            f"{any_plan['num_samples']} samples; {any_plan['num_excluded']} whose logged future collides are excluded "
            f"from the collision rates. Navigation: {results['navigation']}.",
        )
    )
    lm = results.get("traffic_light")
    if lm is not None:
        tables.append(
            (
                "Traffic-light head (light governing the ego's route)",
                ["samples", "accuracy", "red recall", "red precision", "green recall", "none recall"],
                [
                    [
                        str(lm["samples"]),
                        _fmt(lm["accuracy"]),
                        _fmt(lm["red_recall"]),
                        _fmt(lm["red_precision"]),
                        _fmt(lm["green_recall"]),
                        _fmt(lm["none_recall"]),
                    ]
                ],
                f"Confusion [true red, green, none] × [predicted]: {lm['confusion_true_by_pred']}. The planner's "
                "red-light gate acts on the predicted red probability.",
            )
        )
    times = results["horizon_times"]
    rows = []
    for name, r in results["occupancy"].items():
        per = r["per_horizon"]
        label = name + (" (privileged)" if name == "copy_last_gt" else "")
        rows.append([label, "IoU"] + [_fmt(p["geometry_iou"]) for p in per])
        rows.append([label, "mIoU"] + [_fmt(p["miou"]) for p in per])
    grid = results["occupancy_grid"]
    tables.append(
        (
            "Occupancy per horizon (camera mask, ego excluded)",
            ["prediction", "metric"] + [f"{t:.1f} s" for t in times],
            rows,
            "IoU = geometry (occupied vs free); mIoU over classes present in the ground truth; "
            f"grid voxel {grid['voxel']} m.",
        )
    )
    per_class = results["occupancy"]["model"]["overall"]["per_class_iou"]
    tables.append(
        (
            "Occupancy per class (model, all horizons)",
            ["class", "IoU"],
            [[c, _fmt(v)] for c, v in per_class.items()],
            "– = class absent from the ground truth.",
        )
    )
    rows = []
    for name in ("model", "plan_off", "cv_own_detections", "cv_gt_privileged"):
        r = results["agents"].get(name, {})
        rows.append(
            [name + (" (privileged)" if "gt" in name else "")]
            + [_fmt(r.get(k)) for k in ("minADE_1", "minFDE_1", "MR_1", "minADE_5", "minFDE_5", "MR_5")]
            + [_fmt(int(r["num_agents"]) if "num_agents" in r else None)]
        )
    mt = results["agents"]["matching"]
    tables.append(
        (
            "Agents (under the logged plan)",
            ["prediction", "minADE1", "minFDE1", "MR1", "minADE5", "minFDE5", "MR5", "agents"],
            rows,
            f"Matching: {mt['method']}; recall {_fmt(mt['recall'])} ({mt['matched']}/{mt['gt_agents']}). {mt['note']}. "
            f"Detection heatmap: median score {_fmt(mt.get('score_at_gt_centres_median'))} at ground-truth centres, "
            f"median strongest peak away from any agent {_fmt(mt.get('strongest_background_peak_median'))}; velocity "
            f"error of matched detections {_fmt(mt.get('velocity_error_matched'))} m/s (every forecast built on a "
            "detection, constant velocity included, starts from it).",
        )
    )
    rows = [
        [
            name,
            _fmt(r["bev_obstacle_iou"]),
            _fmt(r.get("bev_obstacle_iou_plan_dependent")),
            _fmt(r["agent_minADE_1"]),
            _fmt(r.get("agent_minADE_1_gt_tokens")),
            str(r["num_branches"]),
            str(r["num_agent_futures"]),
            str(r.get("num_agent_futures_gt_tokens", "–")),
        ]
        for name, r in results["plan_sensitivity"].items()
    ]
    tables.append(
        (
            "Plan sensitivity on counterfactual branches",
            [
                "prediction",
                "BEV obstacle IoU",
                "IoU on plan-dependent cells",
                "agent minADE1 [m]",
                "agent minADE1, GT agent tokens [m] (privileged)",
                "branches",
                "agent futures",
                "agent futures (GT tokens)",
            ],
            rows,
            "branch_plan: rollout under each branch's plan vs that branch's truth; logged_plan: the rollout under the "
            "logged plan scored against the branch truth; plan_off: plan conditioning switched off. Plan-dependent "
            "cells: where the truths of a sample's branches disagree (a plan-agnostic prediction cannot be right "
            "for every branch there). Agent minADE1 "
            "scores the top mode of matched detections; the privileged column feeds the ground-truth agents at t0 as "
            "tokens (velocity still the model's own estimate), isolating the plan-conditioned dynamics from detection.",
        )
    )
    return tables


def write_open_loop_report(
    results: dict, figures: list[dict], grid: GridSpec, out: str | os.PathLike
) -> dict[str, Path]:
    """Write `results.json`, `report.md`, `report.html` and the figures into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for i, sample in enumerate(figures):
        images.append(bev_comparison(sample, grid, out / "figures" / f"bev_{i}.png"))
        images.append(camera_overlay(sample, out / "figures" / f"cameras_{i}.png"))
    paths = {"results": write_results(out / "results.json", results)}
    tables = report_tables(results)
    meta = results.get("meta", {})
    head = (
        f"checkpoint `{results['config'].get('ckpt')}`, dataset `{results['config'].get('version')}` split "
        f"`{results['config'].get('split')}`, {results['num_samples']} samples, protocol {results['protocol']}, "
        f"git `{meta.get('git_commit')}`."
    )
    md = ["# Open-loop evaluation", "", head, ""]
    body = [f"<p>{html.escape(head)}</p>"]
    for title, header, rows, note in tables:
        md += [f"## {title}", "", md_table(header, rows), "", note, ""]
        body.append(f"<h2>{html.escape(title)}</h2>{html_table(header, rows)}<p class='note'>{html.escape(note)}</p>")
    if images:
        md += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in images]
        body.append("<h2>Figures</h2>" + "".join(f"<p><img src='figures/{p.name}' alt='{p.stem}'></p>" for p in images))
    paths["md"] = write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    paths["html"] = write_text_atomic(out / "report.html", html_page("Open-loop evaluation", "".join(body)))
    return paths


__all__ = ["bev_comparison", "camera_overlay", "report_tables", "write_open_loop_report"]
