"""The closed-loop report of an output folder: every agent found in `<out>/checkpoint.json` side by side.

Writes `report.md`, `report.html` and `results.json` (the per-agent command configs, seeds, git
commit, package versions, the aggregate and every route record) plus GIFs of the worst routes
(`videos/`): the BEV around the ego (true agents, route, the agent's candidate plans coloured by
score, the chosen one highlighted) beside the front camera.

Aggregates are means over routes × seeds with 95 % confidence intervals (Student t); infractions
per km are totals over the km driven (floored at 1 m, like the leaderboard).
"""

from __future__ import annotations

import html
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from carla_bridge.run_metadata import git_commit, package_versions
from drivewm.evaluation.closed_loop.checkpoint import ResultsCheckpoint
from drivewm.evaluation.closed_loop.evaluate import CHECKPOINT_NAME, config_path
from drivewm.evaluation.closed_loop.metrics import PENALIZED_KINDS, aggregate_agent
from drivewm.evaluation.common.report import html_page, html_table, md_table, write_results
from occupancy.atomic import atomic_path, write_text_atomic


def _fmt(m: dict[str, float | None], digits: int = 1) -> str:
    """`mean ± half width`; `mean ± –` when the interval is undefined (a single run)."""
    ci = "–" if m["ci95"] is None else f"{m['ci95']:.{digits}f}"
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
    md, page = _render_tables(out, agents, by_agent, agg, identical, video_paths, results)
    write_text_atomic(paths["md"], md)
    write_text_atomic(paths["html"], page)
    return paths


def _render_tables(out, agents, by_agent, agg, identical, video_paths, results) -> tuple[str, str]:
    kinds = [k.value for k in PENALIZED_KINDS]
    head = ["agent", "runs", "driving score", "route completion", "infraction penalty", "km", "failures"]
    head += [f"{k} /km" for k in kinds] + [
        "wall s / sim s",
        "replan p50 ms",
        "replan p90 ms",
        "rejections",
        "fallbacks",
    ]
    rows = []
    for a in agents:
        g = agg[a]
        lat = g["planner_latency_ms"] or {}
        rows.append(
            [
                a,
                str(g["runs"]),
                _fmt(g["driving_score"]),
                _fmt(g["route_completion"]),
                _fmt(g["infraction_penalty"], digits=3),
                f"{g['km_driven']:.3f}",
                str(g["failures"]) + (f" ({', '.join(g['failure_statuses'])})" if g["failures"] else ""),
                *[f"{g['infractions_per_km'][k]:.2f}" for k in kinds],
                "-" if g["wall_per_sim_second"] is None else f"{g['wall_per_sim_second']:.2f}",
                str(lat.get("p50", "-")),
                str(lat.get("p90", "-")),
                str(g["rejections"]),
                str(g["fallbacks"]),
            ]
        )
    route_head = ["route", "town", "seed", *agents]
    route_keys = sorted(
        {(r["route_id"], r["town"], int(r["seed"])) for rs in by_agent.values() for r in rs},
        key=lambda k: ((int(k[0]), "") if k[0].isdigit() else (1 << 30, k[0]), k[2]),
    )
    lookup = {(r["agent"], r["route_id"], int(r["seed"])): r for rs in by_agent.values() for r in rs}
    route_rows = []
    for rid, town, seed in route_keys:
        cells = []
        for a in agents:
            r = lookup.get((a, rid, seed))
            cells.append(
                "-" if r is None else f"DS {r['driving_score']:.1f} / RC {r['route_completion']:.1f} / {r['status']}"
            )
        route_rows.append([rid, town, str(seed), *cells])
    note = (
        "All agents ran identical routes and seeds."
        if identical
        else "Agents ran DIFFERENT route/seed sets — compare per route below."
    )
    protocols = {
        a: (results["config"].get(a, {}).get("command") or {}).get("protocol_label", "unknown") for a in agents
    }
    note += " Protocol: " + "; ".join(f"{a} {p}" for a, p in protocols.items()) + "."
    md = [
        "# Closed-loop evaluation",
        "",
        f"Output folder `{out}`; commit `{results['git_commit']}`; generated {results['generated']}.",
        "Means over routes × seeds with 95 % confidence intervals (Student t). Leaderboard-2.0 penalties.",
        note,
        "",
        "## Aggregate",
        "",
        md_table(head, rows),
        "",
        "## Per route (DS = driving score %, RC = route completion %)",
        "",
        md_table(route_head, route_rows),
        "",
    ]
    if video_paths:
        md += ["## Worst routes", ""]
        for (a, rid, seed), p in video_paths.items():
            md.append(f"- {a}, route {rid}, seed {seed}: ![]({p.relative_to(out)})")
        md.append("")
    page = [
        f"<p>Output folder <code>{html.escape(str(out))}</code>; commit <code>{html.escape(str(results['git_commit']))}"
        f"</code>; generated {html.escape(results['generated'])}. Means over routes × seeds with 95 % confidence "
        f"intervals. {html.escape(note)}</p>",
        "<h2>Aggregate</h2>",
        html_table(head, rows),
        "<h2>Per route</h2>",
        html_table(route_head, route_rows),
    ]
    if video_paths:
        page.append("<h2>Worst routes</h2>")
        for (a, rid, seed), p in video_paths.items():
            page.append(
                f"<figure><img src='{html.escape(str(p.relative_to(out)))}' width='720'>"
                f"<figcaption>{html.escape(a)}, route {html.escape(rid)}, seed {seed}</figcaption></figure>"
            )
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
