"""Rendering of an open-loop run: the summary of headline figures (`headlines`), the plots
(`write_plots`: occupancy IoU/mIoU and planning L2/collisions over the horizon, reliability of the
light head), the tables, report.md/.html, and the sample figures — predicted vs true BEV occupancy per
horizon (with agents and the plan), and predicted boxes and the plan projected onto the six cameras."""

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
from drivewm.evaluation.common import plots
from drivewm.evaluation.common.provenance import provenance_text
from drivewm.evaluation.common.report import (
    html_figures,
    html_page,
    html_section,
    html_table,
    md_figures,
    md_table,
    summary_html,
    summary_md,
    write_results,
)
from drivewm.evaluation.common.stats import mean_ci
from drivewm.evaluation.common.targets import Estimate, Headline
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


ANCHORS = {"Occupancy per horizon": "occupancy", "Agents": "agents", "Planning": "planning"}


def _anchor(title: str) -> str:
    """The HTML id of a table's section (the summary links to some of them)."""
    for prefix, anchor in ANCHORS.items():
        if title.startswith(prefix):
            return anchor
    return "".join(c if c.isalnum() else "-" for c in title.lower())


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


def _one_second(results: dict) -> int | None:
    """Index of the 1 s horizon in `results["horizon_times"]` (None if absent)."""
    times = [round(float(t), 3) for t in results["horizon_times"]]
    return times.index(1.0) if 1.0 in times else None


def _per_scene(values: dict[str, float | None]) -> Estimate | None:
    ok = [v for v in values.values() if v is not None and math.isfinite(v)]
    return Estimate.of(mean_ci(ok)) if ok else None


def _paired(a: dict[str, float | None], b: dict[str, float | None]) -> Estimate | None:
    """Mean and 95 % interval over scenes of `a − b` (scenes where both are defined)."""
    d = [a[s] - b[s] for s in a if a[s] is not None and b.get(s) is not None and math.isfinite(a[s] - b[s])]
    return Estimate.of(mean_ci(d)) if d else None


def headlines(results: dict) -> list[Headline]:
    """The open-loop headline figures with 95 % intervals over the scenes of the split: occupancy IoU at
    1 s against copy-last of the model's own t = 0 estimate, and agent minADE (top mode, and over all
    modes) against constant velocity on the model's own detections, each paired by scene."""
    out: list[Headline] = []
    t1 = _one_second(results)
    per_scene = results.get("occupancy_per_scene")
    if t1 is not None and per_scene:
        iou = {
            k: {scene: v["geometry_iou"][t1] for scene, v in per_scene[k].items()} for k in ("model", "copy_last_own")
        }
        out.append(
            Headline(
                "Open loop",
                "occupancy IoU at 1 s",
                "drivewm",
                _per_scene(iou["model"]),
                target="occupancy_iou_1s",
                baseline="copy-last",
                baseline_value=_per_scene(iou["copy_last_own"]),
                delta=_paired(iou["model"], iou["copy_last_own"]),
                link="report.html#occupancy",
            )
        )
    agents = results.get("agents_per_scene") or {}
    modes = (results.get("agents", {}).get("matching") or {}).get("modes")
    for k, label in ((1, "agent minADE, top mode [m]"), (5, f"agent minADE, best of {modes or 5} modes [m]")):
        key = f"minADE_{k}"
        # no matched agent in the split: the figure is shown as "no data", not left out
        model = {scene: m.get(key) for scene, m in (agents.get("model") or {}).items()}
        cv = {scene: m.get(key) for scene, m in (agents.get("cv_own_detections") or {}).items()}
        out.append(
            Headline(
                "Open loop",
                label,
                "drivewm",
                _per_scene(model),
                target="agent_min_ade",
                baseline="constant velocity",
                baseline_value=_per_scene(cv),
                delta=_paired(model, cv),
                digits=2,
                link="report.html#agents",
            )
        )
    return out


def write_plots(results: dict, out: Path) -> list[tuple[Path, str]]:
    """Occupancy IoU and mIoU over the horizon per prediction, planning L2 and collision rate over the
    horizon per plan, and the reliability diagram of every probability the results carry."""
    figures = []
    times = [float(t) for t in results["horizon_times"]]
    occ = results["occupancy"]
    label = {"copy_last_gt": "copy_last_gt (privileged)"}
    figures.append(
        (
            plots.horizon_curves(
                out / "figures" / "occupancy_horizon.png",
                [
                    (
                        metric,
                        metric,
                        times,
                        {label.get(k, k): [p[key] for p in r["per_horizon"]] for k, r in occ.items()},
                    )
                    for metric, key in (("IoU", "geometry_iou"), ("mIoU", "miou"))
                ],
            ),
            "Occupancy IoU and mIoU over the horizon (camera mask, ego excluded)",
        )
    )
    hz = [str(float(t)) for t in results["eval_config"]["planning_horizons"]]
    x = [float(h) for h in hz]
    pl = results["planning"]
    figures.append(
        (
            plots.horizon_curves(
                out / "figures" / "planning_horizon.png",
                [
                    (
                        "L2, average up to t",
                        "L2 [m]",
                        x,
                        {k: [r["l2"]["avg"].get(h) for h in hz] for k, r in pl.items()},
                    ),
                    (
                        "collision rate, average up to t",
                        "collisions [%]",
                        x,
                        {
                            k: [
                                None if r["collision"]["avg"].get(h) is None else 100 * r["collision"]["avg"][h]
                                for h in hz
                            ]
                            for k, r in pl.items()
                        },
                    ),
                ],
            ),
            "Planning L2 and collision rate over the horizon per plan",
        )
    )
    probs = {k: v for k, v in (results.get("probabilities") or {}).items() if v.get("prob")}
    if probs:
        figures.append(
            (
                plots.reliability_diagrams(
                    out / "figures" / "reliability.png",
                    {k: (np.array(v["prob"]), np.array(v["label"])) for k, v in probs.items()},
                ),
                "Reliability of " + ", ".join(probs) + " (observed frequency against predicted probability)",
            )
        )
    return figures


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
    summary = headlines(results)
    plot_paths = write_plots(results, out)
    meta = results.get("meta", {})
    head = (
        f"checkpoint `{results['config'].get('ckpt')}`, dataset `{results['config'].get('version')}` split "
        f"`{results['config'].get('split')}`, {results['num_samples']} samples, protocol {results['protocol']}, "
        f"git `{meta.get('git_commit')}`."
    )
    context = provenance_text(meta.get("git_commit"), {"drivewm": results["config"].get("ckpt")})
    md = [
        "# Open-loop evaluation",
        "",
        head,
        "",
        *summary_md(summary, context),
        "## Plots",
        "",
        *md_figures(out, plot_paths),
        "",
    ]
    body = [
        f"<p>{html.escape(head)}</p>",
        summary_html(summary, context),
        "<h2 id='plots'>Plots</h2>",
        html_figures(out, plot_paths),
    ]
    for title, header, rows, note in tables:
        md += [f"## {title}", "", md_table(header, rows), "", note, ""]
        body.append(html_section(_anchor(title), title, html_table(header, rows), note))
    if images:
        samples = [(p, p.stem.replace("_", " ")) for p in images]
        md += ["## Samples", "", *md_figures(out, samples)]
        body.append(html_section("samples", "Samples", html_figures(out, samples)))
    paths["md"] = write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    paths["html"] = write_text_atomic(out / "report.html", html_page("Open-loop evaluation", "".join(body)))
    return paths


__all__ = ["bev_comparison", "camera_overlay", "headlines", "report_tables", "write_open_loop_report", "write_plots"]
