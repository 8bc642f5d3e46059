"""Rendering of a relevance run: the BEV figure of a scene, the side-by-side table, report.md/.html."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import torch

from drivewm.evaluation.common.report import html_page, html_table, md_table
from occupancy import GridSpec
from occupancy.atomic import write_text_atomic


def write_figure(path: Path, keep: dict, rows: list[str]) -> Path:
    """One BEV panel per model (candidate plans coloured by the model's score, its choice in red) and a
    last panel with the true outcome (plans coloured by their true score, truly unsafe plans marked ×);
    the background is the true driveable area, the boxes are the agents at t = 3 s under the stop plan."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from occupancy.render import draw_boxes, draw_ego, draw_plans, save_figure

    grid: GridSpec = keep["grid"]
    plans = keep["plans"]
    panels = [(r, keep["pred"][r]) for r in rows] + [("truth", keep["true_score"])]
    fig = Figure(figsize=(3.2 * len(panels), 4.2))
    FigureCanvasAgg(fig)
    (x0, y0, _), (x1, y1, _) = grid.lower, grid.upper
    ok = keep["agent_valid"]
    boxes = keep["boxes"][0, -1][ok]  # [A', 5] agents at t = 3 s under the stop plan
    boxes = boxes[(boxes[:, 0] > x0) & (boxes[:, 0] < x1) & (boxes[:, 1] > y0) & (boxes[:, 1] < y1)]
    for j, (title, score) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), j + 1)
        ax.imshow(
            keep["drivable"].numpy()[::-1, ::-1],  # [X, Y] → image rows = x down, columns = y right-to-left
            extent=(y1, y0, x0, x1),
            origin="upper",
            cmap="Greys",
            vmin=0,
            vmax=3,
        )
        draw_boxes(ax, boxes, color="tab:blue", linewidth=0.6)
        draw_ego(ax, color="black", linewidth=0.8)
        draw_plans(ax, plans, score, best=int(torch.argmax(score)), colorbar=False)
        if title == "truth":
            u = keep["unsafe"]
            ends = plans[u, -1]
            ax.scatter(ends[:, 1], ends[:, 0], marker="x", color="red", s=25, zorder=5)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(min(y1, 25.0), max(y0, -25.0))
        ax.set_ylim(max(x0, -10.0), min(x1, 50.0))
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
    return save_figure(fig, path, dpi=90)


def _ci(d: dict) -> str:
    if not isinstance(d, dict) or d.get("mean") is None or not math.isfinite(d.get("mean", math.nan)):
        return "n/a"
    lo, hi = d.get("lo", math.nan), d.get("hi", math.nan)
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{d['mean']:.3f} [{lo:.3f}, {hi:.3f}]"
    return f"{d['mean']:.3f}"


def _f(v: Any, digits: int = 3) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def report_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """The side-by-side table of the report."""
    head = [
        "model",
        "τ full",
        "ρ full",
        "τ dependent",
        "ρ dependent",
        "top-1 regret",
        "unsafe AUROC",
        "false accept",
        "occ IoU",
    ]
    ns = [str(n) for n in results["config"]["latency_plans"]]
    head += [f"ms N={n}" for n in ns]
    rows = []
    lat = results.get("latency_ms") or {}
    for name, m in results["models"].items():
        if name.startswith("_"):
            continue
        rows.append(
            [
                name,
                _ci(m["kendall_tau"]),
                _ci(m["spearman_rho"]),
                _ci(m["dependent"]["kendall_tau"]),
                _ci(m["dependent"]["spearman_rho"]),
                _ci(m["top1_regret"]),
                _f(m["unsafe_auroc"]),
                _f(m["false_accept_rate"]),
                _f(m["occupancy_iou"]["pooled"]),
            ]
            + [_f(lat.get(name, {}).get(n), 1) for n in ns]
        )
    return head, rows


def write_reports(out: Path, results: dict) -> None:
    """`report.md` and `report.html` beside `results.json`."""
    cfg, truth = results["config"], results["models"]["_truth"]
    head, rows = report_table(results)
    meta = results["metadata"]
    intro = (
        f"towns {', '.join(cfg['towns'])}, {cfg['scenes']} scenes × {cfg['plans']} plans, seed {cfg['seed']}; "
        f"truth = lite simulator branches at dt {cfg['oracle_dt']} s with reactive traffic; "
        f"{100 * truth['unsafe_fraction']:.1f} % of plans truly unsafe (collision "
        f"{100 * truth['collision_fraction']:.1f} %, off road {100 * truth['off_road_fraction']:.1f} %); "
        f"{100 * truth['constructed_unsafe_truly_unsafe']:.1f} % of the plans built to be unsafe were. "
        f"Protocol {results['protocol']}; git {meta.get('git_commit')}."
    )
    notes = (
        "τ/ρ: Kendall τ-b / Spearman ρ between the model's and the true plan scores per scene, mean "
        "[95 % CI] (a model that scores all plans of a scene alike gets 0 there; scenes with a constant "
        "truth are left out); 'dependent' = the model-dependent terms alone (collision time, TTC, drivable area). "
        "Top-1 regret: true score of the best plan minus that of the model's choice. Unsafe AUROC / false "
        f"accept at unsafety < {cfg['threshold']} (the scorer's gates). Occ IoU: "
        "pooled over scenes, plans and t = 0.5…3 s, obstacle ≥ 0.5 vs true boxes under the same plan, ego "
        "excluded. Latency: encode + rollout + score on this machine. The oracle row is the prediction the "
        "truth is scored from (upper bound)."
    )
    figs = [r["figure"] for r in results["scenes"] if r.get("figure")]
    md = [f"# Action relevance\n\n{intro}\n", md_table(head, rows), "", notes, ""]
    md += [f"![scene]({Path(f).relative_to(out)})" for f in figs]
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    body = f"<p>{html.escape(intro)}</p>" + html_table(head, rows) + f"<p class='note'>{html.escape(notes)}</p>"
    body += "".join(f"<img src='{Path(f).relative_to(out)}'>" for f in figs)
    write_text_atomic(out / "report.html", html_page("Action relevance", body))


__all__ = ["report_table", "write_figure", "write_reports"]
