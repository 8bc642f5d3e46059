"""The closed-loop report of an output folder: every agent found in `<out>/checkpoint.json` side by side.

Writes `report.md`, `report.html` and `results.json` (the per-agent command configs, seeds, git
commit, package versions, the aggregate and every route record), plots (`figures/`: driving score and
route completion per agent with 95 % interval bars and one dot per route × seed; infractions per km
as one stacked bar per agent; success per scenario type when the records carry `scenario_type`, and
per ability when the aggregate carries Bench2Drive abilities)
and GIFs of the worst routes (`videos/`): the BEV around the ego (true agents, route, the agent's
candidate plans coloured by score, the chosen one highlighted) beside the front camera.

The page opens with the summary of headline figures (`headlines`), then the plots and narrow tables:
scores, infractions per km, planner and timing, per scenario type and per ability when the records
carry them (`scenario_type`, Bench2Drive `abilities`), per route, and every infraction with its time
and place.

Aggregates are means over routes × seeds with 95 % confidence intervals (Student t); infractions
per km are totals over the km driven (floored at 1 m, like the leaderboard).
"""

from __future__ import annotations

import html
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from carla_bridge.run_metadata import git_commit, package_versions
from carla_bridge.scoring import InfractionKind
from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint
from drivewm.evaluation.closed_loop.evaluate import CHECKPOINT_NAME, config_path
from drivewm.evaluation.closed_loop.metrics import aggregate_agent
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
from drivewm.evaluation.common.stats import mean_ci, wilson_ci
from drivewm.evaluation.common.targets import EXPERTS, REFERENCE_AGENTS, Estimate, Headline
from occupancy.atomic import atomic_path, write_text_atomic


def _fmt(m: dict[str, float | None] | None, digits: int = 1) -> str:
    """`mean ± half width`; `mean ± –` when the interval is undefined (a single run)."""
    if not m or m.get("mean") is None:
        return "–"
    ci = "–" if m.get("ci95") is None else f"{m['ci95']:.{digits}f}"
    return f"{m['mean']:.{digits}f} ± {ci}"


def write_report(out: str | os.PathLike, worst: int = 2, videos: bool = True) -> dict[str, Path]:
    """Write the report of the folder `out` (see the module docstring); returns the paths written.

    Args:
        out: the output folder holding `checkpoint.json`.
        worst: GIFs of this many worst routes (lowest driving score) per agent.
        videos: render the GIFs (needs frames captured during the runs).
    """
    out = Path(out)
    records = ResultsCheckpoint(out / CHECKPOINT_NAME).load()
    if not records:
        raise FileNotFoundError(
            f"no closed-loop results in {out / CHECKPOINT_NAME}; run drivewm eval closed-loop first"
        )
    agents = sorted({r["agent"] for r in records})
    by_agent = {a: [r for r in records if r["agent"] == a] for a in agents}
    agg = {a: aggregate_agent(rs) for a, rs in by_agent.items()}
    keys = {a: {(r["route_id"], int(r["seed"])) for r in rs} for a, rs in by_agent.items()}
    identical = len({frozenset(k) for k in keys.values()}) == 1
    configs = {}
    for a in agents:
        p = config_path(out, a)
        if p.exists():
            configs[a] = json.loads(p.read_text())
    video_paths: dict[tuple[str, str, int], Path] = {}
    if videos:
        for a, rs in by_agent.items():
            for r in sorted(rs, key=lambda r: (r["driving_score"], r["route_id"], r["seed"]))[:worst]:
                frames = r.get("frames")
                if frames and Path(frames).exists():
                    gif = out / "videos" / f"{a}_{r['route_id']}_s{r['seed']}.gif"
                    try:
                        render_route_gif(frames, gif, title=f"{a} · route {r['route_id']} · seed {r['seed']}")
                        video_paths[(a, r["route_id"], int(r["seed"]))] = gif
                    except (OSError, ValueError) as err:
                        print(f"report: could not render {gif.name}: {err}")
    results = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "package_versions": package_versions(),
        "config": configs,
        "seeds": sorted({int(r["seed"]) for r in records}),
        "identical_routes_and_seeds": identical,
        "aggregate": agg,
        "records": records,
    }
    paths = {"results": out / "results.json", "md": out / "report.md", "html": out / "report.html"}
    write_results(paths["results"], results)
    md, page = render_report(out, results, video_paths)
    write_text_atomic(paths["md"], md)
    write_text_atomic(paths["html"], page)
    return paths


# ------------------------------------------------------------------------------------------ per-route figures


def route_success(record: dict[str, Any]) -> bool:
    """The record's own `success` where its rules define one (Bench2Drive); otherwise Bench2Drive's
    definition applied to it: the route ended Perfect or Completed with no infraction but min speed."""
    if isinstance(record.get("success"), bool):
        return bool(record["success"])
    counts = record.get("counts") or {}
    clean = all(int(v) == 0 for k, v in counts.items() if k != InfractionKind.MIN_SPEED.value)
    return record.get("status") in ("Perfect", "Completed") and clean


def success_label(records: list[dict[str, Any]]) -> str:
    """How `route_success` was decided for these records (printed beside the numbers)."""
    if all(isinstance(r.get("success"), bool) for r in records):
        return "success (the rule set's own)"
    return "success (Bench2Drive definition: completed, no infraction but min speed)"


def success_rate(records: list[dict[str, Any]]) -> Estimate | None:
    """The success rate [%] of runs with its 95 % Wilson interval."""
    ci = wilson_ci(sum(route_success(r) for r in records), len(records))
    return Estimate.of({k: 100.0 * v if k != "n" else v for k, v in ci.items()})


def _run_key(r: dict[str, Any]) -> tuple[str, int]:
    return str(r["route_id"]), int(r["seed"])


def _paired_delta(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> Estimate | None:
    """Mean and 95 % interval of `a[key] − b[key]` over the (route, seed) runs both agents drove."""
    bv = {_run_key(r): float(r[key]) for r in b}
    diffs = [float(r[key]) - bv[_run_key(r)] for r in a if _run_key(r) in bv]
    return Estimate.of(mean_ci(diffs)) if diffs else None


def _mean(values: list[float]) -> Estimate | None:
    return Estimate.of(mean_ci(values)) if values else None


def headlines(results: dict[str, Any]) -> list[Headline]:
    """The closed-loop headline figures: every agent's driving score and success rate (95 % intervals
    over routes × seeds); the expert against its bound, every agent under test against the same planner
    with cv-gt's world model (paired by route and seed), and the widest interval against the resolution
    DESIGN.md asks for."""
    records = results["records"]
    agents = sorted({r["agent"] for r in records})
    by_agent = {a: [r for r in records if r["agent"] == a] for a in agents}
    out: list[Headline] = []
    base = by_agent.get("cv-gt")
    for a in agents:
        ds = _mean([float(r["driving_score"]) for r in by_agent[a]])
        h = Headline("Closed loop", "driving score", a, ds, digits=1, link="report.html#scores")
        if a in EXPERTS:
            h = replace(h, target="closed_loop_expert_ds")
        elif a not in REFERENCE_AGENTS and base is not None:
            base_ds = _mean([float(r["driving_score"]) for r in base])
            delta = _paired_delta(by_agent[a], base, "driving_score")
            h = replace(h, target="closed_loop_ds_vs_cv", baseline="cv-gt", baseline_value=base_ds, delta=delta)
        out.append(h)
    for a in agents:
        out.append(
            Headline(
                "Closed loop", "success rate [%]", a, success_rate(by_agent[a]), digits=0, link="report.html#scores"
            )
        )
    halves = {a: mean_ci([float(r["driving_score"]) for r in rs])["half"] for a, rs in by_agent.items()}
    widest = max(halves, key=lambda a: -1.0 if not math.isfinite(halves[a]) else halves[a])
    if all(math.isfinite(v) for v in halves.values()):
        value = Estimate(halves[widest])
    else:
        value = None  # a single run per agent: no interval at all
    out.append(
        Headline(
            "Closed loop",
            "DS interval half width (widest)",
            widest,
            value,
            target="closed_loop_resolution",
            digits=1,
            link="report.html#scores",
        )
    )
    return out


def _infractions_per_km(records: list[dict[str, Any]]) -> dict[str, float]:
    """Events per km driven of each infraction kind (totals over the km driven, floored at 1 m)."""
    km = max(sum(float(r.get("km_driven") or 0.0) for r in records), 0.001)
    kinds = sorted({k for r in records for k in (r.get("counts") or {})})
    return {k: sum(int((r.get("counts") or {}).get(k, 0)) for r in records) / km for k in kinds}


def infraction_events(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The infractions of a record with their time and place: its `infractions` ({kind: [event]}) where
    the record has them, else its `events` of an infraction kind."""
    if isinstance(record.get("infractions"), dict):
        return [{"kind": k, **e} for k, evs in record["infractions"].items() for e in evs]
    kinds = {k.value for k in InfractionKind}
    return [e for e in record.get("events") or [] if e.get("kind") in kinds]


def _abilities(agg: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """`{ability: {success, total, rate}}` of an agent's aggregate (Bench2Drive rules), if it has one."""
    for holder in (agg, agg.get("bench2drive") or {}):
        if isinstance(holder.get("abilities"), dict):
            return holder["abilities"]
    return None


def write_figures(out: Path, results: dict[str, Any]) -> list[tuple[Path, str]]:
    """The closed-loop plots (see the module docstring) under `out/figures/`: (path, caption) pairs."""
    records = results["records"]
    agents = sorted({r["agent"] for r in records})
    by_agent = {a: [r for r in records if r["agent"] == a] for a in agents}
    fig_dir = out / "figures"
    figures = [
        (
            plots.interval_dots(
                fig_dir / "scores.png",
                [
                    ("driving score", "DS [%]", {a: [float(r["driving_score"]) for r in by_agent[a]] for a in agents}),
                    (
                        "route completion",
                        "RC [%]",
                        {a: [float(r["route_completion"]) for r in by_agent[a]] for a in agents},
                    ),
                ],
                ylim=(-3.0, 103.0),
            ),
            "Driving score and route completion per agent: mean with 95 % interval, one dot per route × seed",
        ),
        (
            plots.stacked_bars(
                fig_dir / "infractions.png",
                {a: _infractions_per_km(by_agent[a]) for a in agents},
                "infractions per km",
            ),
            "Infractions per km driven, by kind",
        ),
    ]
    types = sorted({str(r["scenario_type"]) for r in records if r.get("scenario_type")})
    if types:
        runs = {a: {t: [r for r in by_agent[a] if r.get("scenario_type") == t] for t in types} for a in agents}
        series = {a: [_rate(_tally(runs[a][t])) for t in types] for a in agents}
        labels = {a: [_count(_tally(runs[a][t])) for t in types] for a in agents}
        figures.append(
            (
                plots.grouped_bars(
                    fig_dir / "scenario_types.png", types, series, "success [%]", labels=labels, ylim=(0.0, 105.0)
                ),
                "Success per scenario type, successes / routes over each bar",
            )
        )
    abilities = {a: _abilities(results["aggregate"].get(a) or {}) for a in agents}
    abilities = {a: ab for a, ab in abilities.items() if ab}
    if abilities:
        names = sorted({k for ab in abilities.values() for k in ab})
        series = {a: [_rate(ab.get(k)) for k in names] for a, ab in abilities.items()}
        labels = {a: [_count(ab.get(k)) for k in names] for a, ab in abilities.items()}
        figures.append(
            (
                plots.grouped_bars(
                    fig_dir / "abilities.png", names, series, "success [%]", labels=labels, ylim=(0.0, 105.0)
                ),
                "Success per ability (Bench2Drive), successes / routes over each bar",
            )
        )
    return figures


def _tally(records: list[dict[str, Any]]) -> dict[str, int]:
    """`{success, total}` of some runs (the shape of an ability entry)."""
    return {"success": sum(route_success(r) for r in records), "total": len(records)}


def _rate(entry: dict[str, Any] | None) -> float | None:
    if not entry or not entry.get("total"):
        return None
    return 100.0 * float(entry["success"]) / float(entry["total"])


def _count(entry: dict[str, Any] | None) -> str:
    return "" if not entry or not entry.get("total") else f"{entry['success']}/{entry['total']}"


# ------------------------------------------------------------------------------------------------ tables


def report_tables(results: dict[str, Any]) -> list[tuple[str, str, list[str], list[list[str]], str]]:
    """(anchor, title, header, rows, note) of every table of the report, narrow enough to read."""
    records = results["records"]
    agg = results["aggregate"]
    agents = sorted({r["agent"] for r in records})
    by_agent = {a: [r for r in records if r["agent"] == a] for a in agents}
    tables = []
    rows = []
    for a in agents:
        g = agg.get(a) or {}
        success = success_rate(by_agent[a])
        failures = int(g.get("failures", 0))
        rows.append(
            [
                a,
                str(len(by_agent[a])),
                _fmt(g.get("driving_score")),
                _fmt(g.get("route_completion")),
                _fmt(g.get("infraction_penalty"), digits=3),
                "–" if success is None else success.text(0),
                f"{sum(float(r.get('km_driven') or 0.0) for r in by_agent[a]):.3f}",
                str(failures) + (f" ({', '.join(g.get('failure_statuses', []))})" if failures else ""),
            ]
        )
    tables.append(
        (
            "scores",
            "Scores",
            ["agent", "runs", "driving score", "route completion", "penalty", "success [%]", "km", "failures"],
            rows,
            "Means over routes × seeds ± 95 % half width (Student t; – for one run); success rate [95 % Wilson "
            f"interval]; penalty = infraction penalty. {success_label(records)}.",
        )
    )
    per_km = {a: _infractions_per_km(by_agent[a]) for a in agents}
    kinds = sorted({k for v in per_km.values() for k in v})
    tables.append(
        (
            "infractions",
            "Infractions per km",
            ["agent", *[k.replace("_", " ") for k in kinds]],
            [[a, *[f"{per_km[a].get(k, 0.0):.2f}" for k in kinds]] for a in agents],
            "Events per km driven (totals over the km driven, floored at 1 m).",
        )
    )
    rows = []
    for a in agents:
        g = agg.get(a) or {}
        lat = g.get("planner_latency_ms") or {}
        wps = g.get("wall_per_sim_second")
        rows.append(
            [
                a,
                "–" if wps is None else f"{wps:.2f}",
                str(lat.get("p50", "–")),
                str(lat.get("p90", "–")),
                str(g.get("replans", "–")),
                str(g.get("rejections", "–")),
                str(g.get("fallbacks", "–")),
            ]
        )
    tables.append(
        (
            "planner",
            "Planner and timing",
            ["agent", "wall s / sim s", "replan p50 ms", "replan p90 ms", "replans", "rejections", "fallbacks"],
            rows,
            "Replan latency: encode + rollout + score + select on this machine (learned agents).",
        )
    )
    types = sorted({str(r["scenario_type"]) for r in records if r.get("scenario_type")})
    if types:
        rows = []
        for t in types:
            cells = [t]
            for a in agents:
                rs = [r for r in by_agent[a] if r.get("scenario_type") == t]
                if not rs:
                    cells.append("–")
                    continue
                ds = float(np.mean([float(r["driving_score"]) for r in rs]))
                cells.append(f"{sum(route_success(r) for r in rs)}/{len(rs)} · DS {ds:.1f}")
            rows.append(cells)
        tables.append(
            (
                "scenario-types",
                "Per scenario type",
                ["scenario type", *agents],
                rows,
                "Successful routes / routes of the type and their mean driving score (a route counts for the "
                "type of its first scenario).",
            )
        )
    abilities = {a: _abilities(agg.get(a) or {}) for a in agents}
    abilities = {a: ab for a, ab in abilities.items() if ab}
    if abilities:
        names = sorted({k for ab in abilities.values() for k in ab})
        rows = []
        for k in names:
            cells = [k]
            for a in agents:
                entry = (abilities.get(a) or {}).get(k)
                rate = _rate(entry)
                cells.append("–" if rate is None else f"{rate:.0f} % ({_count(entry)})")
            rows.append(cells)
        tables.append(
            (
                "abilities",
                "Per ability (Bench2Drive)",
                ["ability", *agents],
                rows,
                "Success rate per ability (successes / routes), as Bench2Drive's ability benchmark counts it.",
            )
        )
    route_keys = sorted(
        {(str(r["route_id"]), r.get("town", ""), int(r["seed"])) for r in records},
        key=lambda k: ((int(k[0]), "") if k[0].isdigit() else (1 << 30, k[0]), k[2]),
    )
    lookup = {(r["agent"], str(r["route_id"]), int(r["seed"])): r for r in records}
    rows = []
    for rid, town, seed in route_keys:
        cells = []
        for a in agents:
            r = lookup.get((a, rid, seed))
            cells.append(
                "–" if r is None else f"{r['driving_score']:.1f} / {r['route_completion']:.1f} / {r['status']}"
            )
        rows.append([rid, town, str(seed), *cells])
    tables.append(
        (
            "routes",
            "Per route",
            ["route", "town", "seed", *agents],
            rows,
            "Each cell: driving score % / route completion % / status.",
        )
    )
    return tables


def _events_table(records: list[dict[str, Any]], limit: int = 300) -> tuple[list[str], list[list[str]], int]:
    head = ["agent", "route", "seed", "infraction", "t [s]", "x [m]", "y [m]", "details"]
    rows = []
    for r in sorted(records, key=lambda r: (r["agent"], _run_key(r))):
        for e in sorted(infraction_events(r), key=lambda e: float(e.get("time", 0.0))):
            loc = e.get("location") or [math.nan, math.nan]
            facts = (e.get("details") or {}).items()
            details = ", ".join(f"{k} {v}" for k, v in facts if not isinstance(v, (list, dict)))
            rows.append(
                [
                    r["agent"],
                    str(r["route_id"]),
                    str(r["seed"]),
                    str(e.get("kind", "")).replace("_", " "),
                    f"{float(e.get('time', math.nan)):.1f}",
                    f"{float(loc[0]):.1f}",
                    f"{float(loc[1]):.1f}",
                    details,
                ]
            )
    return head, rows[:limit], len(rows)


def render_report(out: Path, results: dict[str, Any], video_paths: dict[tuple[str, str, int], Path]) -> tuple[str, str]:
    """report.md and report.html of the folder `out` (plots written under `out/figures/`)."""
    records = results["records"]
    agents = sorted({r["agent"] for r in records})
    note = (
        "All agents ran identical routes and seeds."
        if results["identical_routes_and_seeds"]
        else "Agents ran DIFFERENT route/seed sets — compare per route below."
    )
    protocols = {
        a: ((results["config"].get(a) or {}).get("command") or {}).get("protocol_label", "unknown") for a in agents
    }
    note += " Protocol: " + "; ".join(f"{a} {p}" for a, p in protocols.items()) + "."
    intro = (
        f"Output folder {out}; commit {results['git_commit']}; generated {results['generated']}. Means over "
        f"routes × seeds with 95 % confidence intervals (Student t). {note}"
    )
    summary = headlines(results)
    figures = write_figures(out, results)
    tables = report_tables(results)
    ev_head, ev_rows, ev_total = _events_table(records)
    ckpts = {a: ((results["config"].get(a) or {}).get("command") or {}).get("ckpt") for a in agents}
    context = provenance_text(results["git_commit"], ckpts)
    md = ["# Closed-loop evaluation", "", intro, "", *summary_md(summary, context)]
    md += ["## Plots", "", *md_figures(out, figures), ""]
    page = [f"<p>{html.escape(intro)}</p>", summary_html(summary, context)]
    page += ["<h2 id='plots'>Plots</h2>", html_figures(out, figures)]
    for anchor, title, head, rows, tnote in tables:
        md += [f"## {title}", "", md_table(head, rows), "", tnote, ""]
        page.append(html_section(anchor, title, html_table(head, rows), tnote))
    shown = f"{len(ev_rows)} of {ev_total}" if ev_total > len(ev_rows) else str(ev_total)
    md += [f"## Infractions with time and place ({shown})", ""]
    md += [md_table(ev_head, ev_rows), ""] if ev_rows else ["No infraction.", ""]
    page.append(f"<h2 id='events'>Infractions with time and place ({shown})</h2>")
    page.append(
        f"<details><summary>show the events</summary>{html_table(ev_head, ev_rows)}</details>"
        if ev_rows
        else "<p>No infraction.</p>"
    )
    if video_paths:
        gifs = [(p, f"{a}, route {rid}, seed {seed}") for (a, rid, seed), p in video_paths.items()]
        md += ["## Worst routes", "", *md_figures(out, gifs), ""]
        page += ["<h2 id='worst'>Worst routes</h2>", html_figures(out, gifs)]
    return "\n".join(md), html_page("Closed-loop evaluation", "\n".join(page))


def render_route_gif(
    frames_path: str | os.PathLike, gif: str | os.PathLike, title: str = "", max_frames: int = 80, ms: int = 250
) -> Path:
    """A GIF of one run's frames: BEV (true agents, route, candidate plans coloured by score) beside the
    front camera."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    from carla_bridge.closed_loop.runner import load_frames
    from occupancy.render import bev_figure, draw_boxes, draw_ego, draw_plans
    from planner.world_models import PLANNER_BEV_GRID

    frames = load_frames(frames_path)
    if not frames:
        raise ValueError(f"{frames_path} holds no frames")
    step = max(1, math.ceil(len(frames) / max_frames))
    images = []
    for f in frames[::step]:
        fig = Figure(figsize=(8.0, 3.6), dpi=72)
        FigureCanvasAgg(fig)
        ax_bev = fig.add_subplot(1, 2, 1)
        ax_cam = fig.add_subplot(1, 2, 2)
        bev_figure(None, PLANNER_BEV_GRID, ax=ax_bev, legend=False)
        ax_bev.set_xlim(30.0, -30.0)
        ax_bev.set_ylim(-15.0, 50.0)
        route = f.get("route")
        if route is not None and len(route):
            ax_bev.plot(route[:, 1], route[:, 0], color="#888888", linewidth=1.0, linestyle="--")
        if f.get("boxes") is not None and len(f["boxes"]):
            draw_boxes(ax_bev, f["boxes"], color="black", linewidth=0.8)
        if f.get("plans") is not None and len(f["plans"]):
            best = int(f["best"]) if "best" in f and int(f["best"]) >= 0 else None
            draw_plans(ax_bev, f["plans"], f["scores"], best=best, colorbar=False)
        draw_ego(ax_bev)
        ax_bev.set_title(f"t = {float(f['time']):.1f} s, v = {float(f.get('speed', 0.0)):.1f} m/s", fontsize=8)
        if f.get("camera") is not None:
            ax_cam.imshow(f["camera"])
            ax_cam.set_title("CAM_FRONT", fontsize=8)
        else:
            ax_cam.text(0.5, 0.5, "no camera", ha="center", va="center")
        ax_cam.axis("off")
        if title:
            fig.suptitle(title, fontsize=9)
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3].copy()))
    with atomic_path(gif) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=ms, loop=0)
    return Path(gif)
