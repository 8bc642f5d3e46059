"""Rendering of a relevance run: the BEV figure of a scene, the summary of headline figures
(`headlines`), the plots (`write_plots`: predicted vs true plan score, τ per scene, ROC of unsafe-plan
rejection, reliability of every gated probability), the tables and report.md/.html.

Every model row of the results is rendered alike (a new world model appears as one more row); a
reliability diagram is drawn for every probability a row carries (`probability_panels`)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
)
from drivewm.evaluation.common.stats import bootstrap_ci, mean_ci
from drivewm.evaluation.common.targets import BASELINES, Estimate, Headline
from drivewm.evaluation.relevance.metrics import auroc, kendall_tau, rank_per_scene
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


def _scene_arrays(results: dict, row: str) -> dict[str, np.ndarray]:
    """`[S, N]` arrays of one model row over the scenes of a run: score, dependent, unsafety, and the
    truth's score, dependent and unsafe."""
    scenes = results["scenes"]
    m = [r["models"][row] for r in scenes]
    return {
        "score": np.array([x["score"] for x in m], dtype=np.float64),
        "dependent": np.array([x["dependent"] for x in m], dtype=np.float64),
        "unsafety": np.array([x["unsafety"] for x in m], dtype=np.float64),
        "true_score": np.array([r["truth"]["score"] for r in scenes], dtype=np.float64),
        "true_dependent": np.array([r["truth"]["dependent"] for r in scenes], dtype=np.float64),
        "unsafe": np.array([r["truth"]["unsafe"] for r in scenes], dtype=bool),
    }


def model_rows(results: dict) -> list[str]:
    """The model rows of a run (every key of `results["models"]` but the truth's)."""
    return [name for name in results["models"] if not name.startswith("_")]


def tau_per_scene(results: dict, row: str, dependent: bool) -> np.ndarray:
    """Kendall τ-b per scene `[S]` of a row's (dependent) scores against the truth's (NaN: constant truth)."""
    a = _scene_arrays(results, row)
    if dependent:
        return rank_per_scene(kendall_tau, a["dependent"], a["true_dependent"])
    return rank_per_scene(kendall_tau, a["score"], a["true_score"])


def _auroc_of(groups) -> float:
    """AUROC of unsafety vs truth pooled over the plans of `groups` (each `(unsafety [N], unsafe [N])`)."""
    return auroc(np.concatenate([g[0] for g in groups]), np.concatenate([g[1] for g in groups]))


def _auroc_ci(a: dict, b: dict | None = None) -> Estimate | None:
    """The pooled unsafe-plan AUROC of `a` with a 95 % bootstrap interval over scenes, or the paired
    difference AUROC(a) − AUROC(b) on the same resampled scenes."""
    if b is None:
        groups = list(zip(a["unsafety"], a["unsafe"]))
        return Estimate.of(bootstrap_ci(_auroc_of, groups))
    groups = list(zip(a["unsafety"], b["unsafety"], a["unsafe"]))

    def diff(gs) -> float:
        return _auroc_of([(g[0], g[2]) for g in gs]) - _auroc_of([(g[1], g[2]) for g in gs])

    return Estimate.of(bootstrap_ci(diff, groups))


def headlines(results: dict) -> list[Headline]:
    """The relevance headline figures of every model under test (each row but the reference world
    models): Kendall τ on the model-dependent terms and the unsafe-plan AUROC against cv-gt (paired by
    scene), the oracle as the ceiling; and the planner step at N = 128 against the budget."""
    rows = model_rows(results)
    base = "cv-gt" if "cv-gt" in rows else None
    ceiling = "oracle" if "oracle" in rows else None
    out: list[Headline] = []
    for row in (r for r in rows if r not in BASELINES):
        tau = {r: tau_per_scene(results, r, dependent=True) for r in (row, base, ceiling) if r}
        arrays = {r: _scene_arrays(results, r) for r in (row, base, ceiling) if r}
        delta = None if base is None else Estimate.of(mean_ci(tau[row] - tau[base]))
        out.append(
            Headline(
                "Action relevance",
                "τ on the model-dependent terms",
                row,
                Estimate.of(mean_ci(tau[row])),
                target="relevance_tau_dependent",
                baseline=base,
                baseline_value=None if base is None else Estimate.of(mean_ci(tau[base])),
                delta=delta,
                reference=ceiling,
                reference_value=None if ceiling is None else Estimate.of(mean_ci(tau[ceiling])),
                link="report.html#ranking",
            )
        )
        out.append(
            Headline(
                "Action relevance",
                "unsafe-plan AUROC",
                row,
                _auroc_ci(arrays[row]),
                target="relevance_unsafe_auroc",
                baseline=base,
                baseline_value=None if base is None else _auroc_ci(arrays[base]),
                delta=None if base is None else _auroc_ci(arrays[row], arrays[base]),
                reference=ceiling,
                reference_value=None if ceiling is None else _auroc_ci(arrays[ceiling]),
                link="report.html#rejection",
            )
        )
        ms = ((results.get("latency_ms") or {}).get(row) or {}).get("128")
        if ms is not None:
            out.append(
                Headline(
                    "Action relevance",
                    "planner step, N = 128 [ms]",
                    row,
                    Estimate(float(ms)),
                    target="planner_step_ms",
                    digits=0,
                    link="report.html#rejection",
                )
            )
    return out


def probability_panels(results: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`{"<model>: <event>": (predicted probability, observed 0/1)}` for every probability a model row
    carries (`models[row]["probabilities"][key]`, a value per plan or per scene) whose truth the scene
    records hold under the same key; non-finite predictions (a rejected scene) are left out."""
    panels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for row in model_rows(results):
        keys = dict.fromkeys(k for r in results["scenes"] for k in (r["models"][row].get("probabilities") or {}))
        for key in keys:
            prob, label = [], []
            for r in results["scenes"]:
                p = (r["models"][row].get("probabilities") or {}).get(key)
                t = r["truth"].get(key)
                if p is None or t is None:
                    continue
                prob.append(np.atleast_1d(np.asarray(p, dtype=np.float64)))
                label.append(np.atleast_1d(np.asarray(t, dtype=bool)))
            if prob:
                p, t = np.concatenate(prob), np.concatenate(label)
                ok = np.isfinite(p)
                panels[f"{row}: {key.replace('_', ' ')}"] = (np.clip(p[ok], 0.0, 1.0), t[ok])
    return panels


def write_plots(out: Path, results: dict) -> list[tuple[Path, str]]:
    """The relevance plots under `out/figures/`: predicted vs true plan score per scene, τ per scene as a
    strip, the ROC curves of unsafe-plan rejection and the reliability diagrams (see `probability_panels`)."""
    rows = model_rows(results)
    arrays = {r: _scene_arrays(results, r) for r in rows}
    figs = out / "figures"
    figures = [
        (
            plots.scatter_panels(
                figs / "scores.png",
                [(r, list(a["true_score"]), list(a["score"])) for r, a in arrays.items()],
                "true plan score",
                "predicted plan score",
            ),
            "Predicted against true plan score, one colour per scene",
        ),
        (
            plots.strips(
                figs / "tau.png",
                [
                    ("full score", {r: tau_per_scene(results, r, False) for r in rows}),
                    ("model-dependent terms", {r: tau_per_scene(results, r, True) for r in rows}),
                ],
                "Kendall τ per scene",
            ),
            "Kendall τ per scene (dots), mean and 95 % interval (diamond)",
        ),
        (
            plots.roc_curves(
                figs / "roc.png",
                {
                    r: (a["unsafety"].ravel(), a["unsafe"].ravel(), auroc(a["unsafety"], a["unsafe"]))
                    for r, a in arrays.items()
                },
            ),
            "ROC of unsafe-plan rejection (pooled over the plans of every scene)",
        ),
    ]
    panels = probability_panels(results)
    if panels:
        figures.append(
            (
                plots.reliability_diagrams(figs / "reliability.png", panels),
                "Reliability of every probability the planner gates on (observed frequency against prediction)",
            )
        )
    return figures


def calibration_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """Expected calibration error (10 bins) of every probability the rows carry."""
    rows = []
    for name, (p, t) in probability_panels(results).items():
        r = plots.reliability_bins(p, t)
        rows.append(
            [
                name,
                str(len(p)),
                f"{float(t.mean()):.3f}" if len(t) else "n/a",
                f"{float(p.mean()):.3f}" if len(p) else "n/a",
                _f(r["ece"]),
            ]
        )
    return ["model: probability", "n", "observed rate", "mean prediction", "ECE"], rows


RANKING_COLUMNS = 6
"""The first columns of `report_table`: model, τ/ρ full, τ/ρ dependent, top-1 regret; the rest are
rejection, occupancy and latency."""


def write_reports(out: Path, results: dict) -> None:
    """`report.md` and `report.html` (and their plots) beside `results.json`."""
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
        "Top-1 regret: true score of the best plan minus that of the model's choice."
    )
    notes_rejection = (
        f"Unsafe AUROC / false accept at unsafety < {cfg['threshold']} (the scorer's gates). Occ IoU: "
        "pooled over scenes, plans and t = 0.5…3 s, obstacle ≥ 0.5 vs true boxes under the same plan, ego "
        "excluded. Latency: encode + rollout + score on this machine. The oracle row is the prediction the "
        "truth is scored from (upper bound)."
    )
    ranking = ([head[:RANKING_COLUMNS], [r[:RANKING_COLUMNS] for r in rows]], "ranking", "Ranking", notes)
    rejection = (
        [[head[0], *head[RANKING_COLUMNS:]], [[r[0], *r[RANKING_COLUMNS:]] for r in rows]],
        "rejection",
        "Rejection, occupancy and latency",
        notes_rejection,
    )
    cal_head, cal_rows = calibration_table(results)
    calibration = (
        [cal_head, cal_rows],
        "calibration",
        "Calibration",
        "ECE = Σ_b n_b / n · |mean prediction − observed frequency| over 10 equal-width bins.",
    )
    tables = [ranking, rejection] + ([calibration] if cal_rows else [])
    summary = headlines(results)
    figures = write_plots(out, results)
    scenes = [(Path(r["figure"]), f"scene {i}") for i, r in enumerate(results["scenes"]) if r.get("figure")]
    learned = {r: cfg.get("ckpt") for r in model_rows(results) if r not in BASELINES}
    context = provenance_text(meta.get("git_commit"), learned)
    md = [f"# Action relevance\n\n{intro}\n", *summary_md(summary, context), "## Plots", ""]
    md += [*md_figures(out, figures), ""]
    page = [
        f"<p>{html.escape(intro)}</p>",
        summary_html(summary, context),
        "<h2 id='plots'>Plots</h2>",
        html_figures(out, figures),
    ]
    for (t_head, t_rows), anchor, title, note in tables:
        md += [f"## {title}", "", md_table(t_head, t_rows), "", note, ""]
        page.append(html_section(anchor, title, html_table(t_head, t_rows), note))
    if scenes:
        md += ["## Scenes", "", *md_figures(out, scenes), ""]
        page.append(
            html_section(
                "scenes",
                "Scenes",
                html_figures(out, scenes),
                "One BEV panel per model (plans coloured by the model's score, its choice in red) and the truth "
                "(plans coloured by their true score, truly unsafe plans marked ×).",
            )
        )
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    write_text_atomic(out / "report.html", html_page("Action relevance", "".join(page)))


__all__ = [
    "headlines",
    "probability_panels",
    "report_table",
    "tau_per_scene",
    "write_figure",
    "write_plots",
    "write_reports",
]
