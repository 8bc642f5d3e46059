"""The front page of a run folder (`index.html` of every `drivewm demo` run): did it work, by how much,
how sure — in one screen.

It finds every evaluation in the folder (`*/results.json`, recognised by their keys), gathers each
one's headline figures (`<task>.render.headlines`: the figure, its baseline, the paired difference
with its 95 % interval, the verdict against DESIGN.md's target; ablations such as `drivewm-noplan`
stay in their report), below a tally of the verdicts and one line of provenance (commit, checkpoint,
how it was trained), with a link to each full report. Every link is
relative, so the folder can be copied or served as is.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivewm.evaluation.closed_loop import render as closed_loop_render
from drivewm.evaluation.common.provenance import provenance_text
from drivewm.evaluation.common.report import VERDICT_MARK, html_page, html_table, summary_html, summary_note
from drivewm.evaluation.common.targets import BASELINES, Headline, Verdict, is_ablation
from drivewm.evaluation.open_loop import render as open_loop_render
from drivewm.evaluation.relevance import render as relevance_render
from occupancy.atomic import write_text_atomic


@dataclass(frozen=True)
class Evaluation:
    """One kind of evaluation a run folder may hold: its title, how to recognise its results, its
    headline figures, and where its results keep the commit and the checkpoints."""

    title: str
    matches: Callable[[dict[str, Any]], bool]
    headlines: Callable[[dict[str, Any]], list[Headline]]
    commit: Callable[[dict[str, Any]], str | None]
    checkpoints: Callable[[dict[str, Any]], dict[str, str | None]]


def _closed_loop_ckpts(results: dict[str, Any]) -> dict[str, str | None]:
    return {a: ((c or {}).get("command") or {}).get("ckpt") for a, c in (results.get("config") or {}).items()}


def _relevance_ckpts(results: dict[str, Any]) -> dict[str, str | None]:
    rows = relevance_render.model_rows(results)
    return {r: results["config"].get("ckpt") for r in rows if r not in BASELINES}


EVALUATIONS: tuple[Evaluation, ...] = (
    Evaluation(
        "Open loop",
        lambda r: "occupancy" in r and "planning" in r,
        open_loop_render.headlines,
        lambda r: (r.get("meta") or {}).get("git_commit"),
        lambda r: {"drivewm": (r.get("config") or {}).get("ckpt")},
    ),
    Evaluation(
        "Action relevance",
        lambda r: "scenes" in r and "models" in r,
        relevance_render.headlines,
        lambda r: (r.get("metadata") or {}).get("git_commit"),
        _relevance_ckpts,
    ),
    Evaluation(
        "Closed loop",
        lambda r: "records" in r and "aggregate" in r,
        closed_loop_render.headlines,
        lambda r: r.get("git_commit"),
        _closed_loop_ckpts,
    ),
)


@dataclass(frozen=True)
class FoundReport:
    """An evaluation found in a run folder: its kind, folder (relative to the run) and results."""

    evaluation: Evaluation
    folder: str
    results: dict[str, Any]


def find_reports(run: Path) -> list[FoundReport]:
    """Every evaluation in `run/*/results.json`, in the order of `EVALUATIONS` (then by folder)."""
    found = []
    for path in sorted(Path(run).glob("*/results.json")):
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        kind = next((e for e in EVALUATIONS if isinstance(results, dict) and e.matches(results)), None)
        if kind is not None:
            found.append(FoundReport(kind, path.parent.name, results))
    return sorted(found, key=lambda f: (EVALUATIONS.index(f.evaluation), f.folder))


@dataclass(frozen=True)
class StepRow:
    """A pipeline step for the front page: name, duration text, the report it wrote (relative) if any."""

    name: str
    time: str
    report: str | None = None


def _tally(headlines: Sequence[Headline]) -> str:
    verdicts = [h.verdict for h in headlines if h.verdict is not None]
    if not verdicts:
        return "No figure with a target was found."
    parts = [f"{sum(v is k for v in verdicts)} {VERDICT_MARK[k].split(' ', 1)[1]}" for k in Verdict]
    return f"{len(verdicts)} targets: " + ", ".join(p for p in parts if not p.startswith("0 ")) + "."


def write_front_page(run: str | Path, title: str = "drivewm demo", steps: Sequence[StepRow] = ()) -> Path:
    """Write `run/index.html` (see the module docstring) and return its path."""
    run = Path(run)
    reports = find_reports(run)
    sections = []
    everything: list[Headline] = []
    commits: set[str] = set()
    ckpts: dict[str, str | None] = {}
    for rep in reports:
        ev = rep.evaluation
        heads = [h.with_link(rep.folder) for h in ev.headlines(rep.results) if not is_ablation(h.subject)]
        everything += heads
        if ev.commit(rep.results):
            commits.add(str(ev.commit(rep.results)))
        for user, ckpt in ev.checkpoints(rep.results).items():
            ckpts.setdefault(user, ckpt)
        link = f"<a href='{html.escape(rep.folder)}/report.html'>full report</a>"
        sections.append(
            f"<h2>{html.escape(ev.title)} <small>({link})</small></h2>" + summary_html(heads, title=None, note=False)
        )
    commit = ", ".join(sorted(commits)) if commits else None
    provenance = provenance_text(commit, ckpts)
    body = [
        f"<p class='tally'><b>{html.escape(_tally(everything))}</b></p>",
        f"<p class='context'>{html.escape(provenance)}</p>",
        *sections,
    ]
    if not reports:
        body.append("<p>No evaluation results in this folder yet.</p>")
    if steps:
        rows = [
            [
                html.escape(s.name),
                html.escape(s.time),
                f"<a href='{html.escape(s.report)}'>{html.escape(s.report)}</a>" if s.report else "",
            ]
            for s in steps
        ]
        body.append(
            f"<details><summary>pipeline steps</summary>{html_table(['step', 'time', 'report'], rows, html_cells=True)}"
            "</details>"
        )
    body.append(f"<p class='note'>{html.escape(summary_note(everything))}</p>")
    page = html_page(title, "".join(body), style="h2 small{font-weight:normal;font-size:0.75em}")
    return write_text_atomic(run / "index.html", page)


__all__ = ["EVALUATIONS", "Evaluation", "FoundReport", "StepRow", "find_reports", "write_front_page"]
