"""Shared pieces of evaluation reports: the results.json writer, Markdown/HTML tables, figures, the
summary of headline figures with their verdicts, and the page itself.

Every page is self-contained: styles inline, images and links relative to the report's folder, no
script, so a report folder can be copied or served as is. Pages fit a 1280-pixel-wide window: tables
are kept narrow by their callers (wide ones are split), and a table that is still too wide scrolls
inside its own box instead of widening the page.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

from drivewm.evaluation.common.targets import TARGETS, Headline, Verdict
from occupancy.atomic import write_json_atomic


def write_results(path: str | os.PathLike, results: dict) -> Path:
    """Write a `results.json` atomically (indented; paths and other non-JSON values as text)."""
    return write_json_atomic(path, results, indent=1, default=str)


def md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def html_table(head: list[str], rows: list[list[str]], html_cells: bool = False) -> str:
    """A table; cells are escaped text unless `html_cells` (the caller escaped them)."""

    def cell(c: str) -> str:
        return c if html_cells else html.escape(c)

    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def html_section(anchor: str, title: str, content: str, note: str = "") -> str:
    """`<h2 id=anchor>title</h2>` + content (HTML) + the note (text)."""
    tail = f"<p class='note'>{html.escape(note)}</p>" if note else ""
    return f"<h2 id='{html.escape(anchor)}'>{html.escape(title)}</h2>{content}{tail}"


def html_figures(out: Path, figures: Sequence[tuple[Path, str]]) -> str:
    """Figures `(path, caption)` side by side (wrapping), linked relative to the report folder `out`."""
    items = []
    for path, caption in figures:
        rel = html.escape(Path(path).relative_to(out).as_posix())
        items.append(
            f"<figure><a href='{rel}'><img src='{rel}' alt='{html.escape(caption)}'></a>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    return f"<div class='figs'>{''.join(items)}</div>" if items else ""


def md_figures(out: Path, figures: Sequence[tuple[Path, str]]) -> list[str]:
    """Markdown lines embedding `(path, caption)` relative to `out`."""
    return [f"![{caption}]({Path(path).relative_to(out).as_posix()})" for path, caption in figures]


VERDICT_MARK = {
    Verdict.MET: "✓ met",
    Verdict.NOT_MET: "✗ not met",
    Verdict.NOT_SHOWN: "? not shown",
    Verdict.NO_DATA: "– no data",
}

SUMMARY_HEAD = ["figure", "model", "value [95 % CI]", "baseline", "Δ vs baseline", "target", "verdict"]
SUMMARY_NOTE = (
    "95 % intervals: Student t over scenes or routes × seeds, or a bootstrap over scenes for pooled "
    "figures (AUROC). ✓ met: the whole interval is on the right side of the target; ? not shown: the "
    "estimate is, its interval is not (too few runs to be sure); ✗ not met: the estimate is on the wrong side."
)


def _summary_cells(h: Headline) -> list[str]:
    value = "n/a" if h.value is None else h.value.text(h.digits, h.unit)
    base = ""
    if h.baseline is not None:
        base = h.baseline + ("" if h.baseline_value is None else f" {h.baseline_value.text(h.digits)}")
    if h.reference is not None and h.reference_value is not None:
        base += ("; " if base else "") + f"{h.reference} {h.reference_value.mean:.{h.digits}f}"
    delta = (
        ""
        if h.delta is None
        else f"{h.delta.mean:+.{h.digits}f}"
        + (f" [{h.delta.lo:+.{h.digits}f}, {h.delta.hi:+.{h.digits}f}]" if h.delta.has_interval else "")
    )
    target = "" if h.target is None else TARGETS[h.target].text
    return [h.figure, h.subject, value, base, delta, target]


def summary_note(headlines: Sequence[Headline]) -> str:
    """How to read the summary, and every target in words with where it is set."""
    targets = dict.fromkeys(
        f"{TARGETS[h.target].text}: {TARGETS[h.target].detail} ({TARGETS[h.target].source})"
        for h in headlines
        if h.target is not None
    )
    return SUMMARY_NOTE + (" Targets — " + "; ".join(targets) + "." if targets else "")


def summary_md(headlines: Sequence[Headline], context: str = "") -> list[str]:
    """The summary section (Markdown lines): `context` (e.g. the provenance), then one row per headline
    with its verdict."""
    rows = []
    for h in headlines:
        v = h.verdict
        rows.append([*_summary_cells(h), "" if v is None else VERDICT_MARK[v]])
    lead = [context, ""] if context else []
    return ["## Summary", "", *lead, md_table(SUMMARY_HEAD, rows), "", summary_note(headlines), ""]


def summary_html(
    headlines: Sequence[Headline], context: str = "", title: str | None = "Summary", note: bool = True
) -> str:
    """The summary section (HTML): `context` (e.g. the provenance), then one row per headline, the verdict
    as a coloured badge, the figure linked to the report section it comes from, the target's source as
    its tooltip; `note` adds how to read it."""
    rows = []
    for h in headlines:
        cells = [html.escape(c) for c in _summary_cells(h)]
        if h.link:
            cells[0] = f"<a href='{html.escape(h.link)}'>{cells[0]}</a>"
        v = h.verdict
        if h.target is not None:
            t = TARGETS[h.target]
            cells[5] = f"<span title='{html.escape(f'{t.detail} ({t.source})')}'>{cells[5]}</span>"
        badge = "" if v is None else f"<span class='v {v.name.lower()}'>{html.escape(VERDICT_MARK[v])}</span>"
        rows.append([*cells, badge])
    head = f"<h2 id='summary'>{html.escape(title)}</h2>" if title else ""
    head += f"<p class='context'>{html.escape(context)}</p>" if context else ""
    tail = f"<p class='note'>{html.escape(summary_note(headlines))}</p>" if note else ""
    return f"<section class='summary'>{head}{html_table(SUMMARY_HEAD, rows, html_cells=True)}{tail}</section>"


STYLE = (
    "body{font-family:system-ui,sans-serif;font-size:14px;max-width:1240px;margin:1em auto;padding:0 12px;"
    "color:#222}h1{font-size:1.5em;margin:0.3em 0}h2{font-size:1.2em;margin:1.2em 0 0.3em}"
    "table{border-collapse:collapse;margin:0.3em 0 0.8em;display:block;max-width:100%;overflow-x:auto}"
    "td,th{border:1px solid #ccc;padding:2px 7px;text-align:right;vertical-align:top}th{background:#f0f0f0}"
    "td:first-child,th:first-child{text-align:left}.summary td,.summary th{text-align:left}"
    ".summary td:nth-child(n+3){white-space:nowrap}"
    ".figs{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;max-width:100%}"
    "figure img{max-width:100%;height:auto;border:1px solid #ddd}figcaption{font-size:0.85em;color:#555}"
    "img{max-width:100%;height:auto}.note{color:#555;font-size:0.88em;margin:0.2em 0 0.8em}"
    ".v{padding:1px 6px;border-radius:3px;white-space:nowrap;font-weight:600}"
    ".v.met{background:#d4f4d2;color:#135d10}.v.not_met{background:#fbd5d5;color:#8a1010}"
    ".v.not_shown{background:#fdf0c4;color:#6b5300}.v.no_data{background:#eee;color:#555}"
    "code{overflow-wrap:anywhere}details{margin:0.5em 0}.context{overflow-wrap:anywhere;margin:0.2em 0}"
)


def html_page(title: str, body: str, style: str = "") -> str:
    """A whole page: `title` as its heading, `body` (HTML), the shared style plus `style`."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'><link rel='icon' href='data:,'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}{style}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


__all__ = [
    "html_figures",
    "html_page",
    "html_section",
    "html_table",
    "md_figures",
    "md_table",
    "summary_html",
    "summary_md",
    "summary_note",
    "write_results",
]
