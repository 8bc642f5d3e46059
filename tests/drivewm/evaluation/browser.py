"""Headless Chromium for the report checks (test-only tooling): the distribution's `chromium`, driven by
Playwright's Python package (no browser download), with a fresh profile per session.

    with chromium_context(find_chromium()) as context:
        problems = check_page(context, Path("runs/demo/index.html"))   # [] when the page is clean
        screenshot(context, Path("runs/demo/index.html"), Path("docs/front_page.png"))

`check_page` opens a page from its file and reports: a console error or uncaught exception, a request
that failed, an image that did not load, a link or source that is not relative (the folder must be
self-contained), a relative link to a file that does not exist or to an anchor the target lacks, and
a page wider than the window. As a script it takes the README's screenshot of a run's front page:

    python tests/drivewm/evaluation/browser.py screenshot runs/demo/index.html docs/front_page.png
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

VIEWPORT = {"width": 1280, "height": 800}
"""The window every report must fit (the issue's 'one screen')."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Headless flags (Playwright adds `--headless`; the profile is a fresh temporary `--user-data-dir`)."""


def find_chromium() -> str | None:
    """The distribution's Chromium executable, or None."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def install_chromium() -> tuple[str | None, str]:
    """Find Chromium or install the distribution's package (`apt-get install -y chromium`, as root
    where apt exists). Returns (executable or None, why not)."""
    found = find_chromium()
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "no chromium on PATH and no apt-get to install it"
    if os.geteuid() != 0:
        return None, "no chromium on PATH and not root to apt-get install it"
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        done = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        )
        if done.returncode != 0:
            return None, f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}"
    found = find_chromium()
    return found, "" if found else "apt-get installed chromium but it is not on PATH"


@contextmanager
def chromium_context(executable: str) -> Iterator:
    """A Playwright browser context of headless Chromium with a fresh profile, sized to `VIEWPORT`."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="drivewm-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
        )
        try:
            yield context
        finally:
            context.close()


_PAGE_FACTS = """() => ({
  images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
  links: Array.from(document.querySelectorAll('[href]')).map(e => e.getAttribute('href')),
  sources: Array.from(document.querySelectorAll('[src]')).map(e => e.getAttribute('src')),
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
  width: document.documentElement.scrollWidth,
  window: window.innerWidth,
})"""


def _ids_in(path: Path) -> set[str]:
    return set(re.findall(r"""\bid=['"]([^'"]+)['"]""", path.read_text(errors="replace")))


def check_page(context, page_path: Path) -> list[str]:
    """Every problem of one page (see the module docstring); an empty list when it renders cleanly."""
    page_path = Path(page_path).resolve()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    try:
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_load_state("networkidle")
        facts = page.evaluate(_PAGE_FACTS)
    finally:
        page.close()
    for img in facts["images"]:
        if not img["ok"]:
            problems.append(f"image did not load: {img['src']}")
    for ref in facts["links"] + facts["sources"]:
        if ref.startswith("data:"):
            continue
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or parts.path.startswith("/"):
            problems.append(f"not a relative link (the folder must be self-contained): {ref}")
            continue
        target = (page_path.parent / unquote(parts.path)).resolve() if parts.path else page_path
        if not target.is_file():
            problems.append(f"dead link: {ref} ({target} does not exist)")
        elif parts.fragment and target.suffix == ".html":
            ids = set(facts["ids"]) if target == page_path else _ids_in(target)
            if parts.fragment not in ids:
                problems.append(f"dead anchor: {ref} (no id {parts.fragment!r} in {target.name})")
    if facts["width"] > facts["window"]:
        problems.append(f"page is {facts['width']} px wide, wider than its {facts['window']} px window")
    return problems


def screenshot(context, page_path: Path, out: Path, full_page: bool = False) -> Path:
    """A PNG of the page as a `VIEWPORT` window shows it (`full_page`: the whole page)."""
    page = context.new_page()
    try:
        page.goto(Path(page_path).resolve().as_uri(), wait_until="load")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=full_page)
    finally:
        page.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    shot = sub.add_parser("screenshot", help="a PNG of a page as a 1280 × 800 window shows it")
    shot.add_argument("page", type=Path)
    shot.add_argument("out", type=Path)
    check = sub.add_parser("check", help="print every problem of the pages (exit 1 if any)")
    check.add_argument("pages", type=Path, nargs="+")
    args = parser.parse_args()
    executable, why = install_chromium()
    if executable is None:
        parser.error(why)
    with chromium_context(executable) as context:
        if args.command == "screenshot":
            print(screenshot(context, args.page, args.out))
            return 0
        bad = 0
        for p in args.pages:
            for problem in check_page(context, p):
                print(f"{p}: {problem}")
                bad += 1
        return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
