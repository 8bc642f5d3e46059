"""Every report of the test run opens in headless Chromium without a broken element.

The run folder is assembled once per test run like a `drivewm demo` folder, from real runs: the shared
open-loop run (`evaluated`: the tiny model fitted through the CLI on `mini_nuscenes`), and, with its
checkpoint, `drivewm eval relevance` (drivewm, cv-gt, empty, oracle) and `drivewm eval closed-loop`
(autopilot, cv-gt, drivewm) at toy sizes, then the demo's front page. Each page is opened from its
file in a 1280 × 800 window and must show no console error, no failed request, no image that did not
load, no link that is not relative or leads nowhere, and no horizontal overflow. The folder is then
copied elsewhere and checked again (self-contained).

Chromium is the distribution's package (`/usr/bin/chromium`), installed here with apt-get when it is
missing and the tests run as root; the test is skipped, with the reason, only when that is impossible.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drivewm.cli import main
from drivewm.commands.demo import pipeline, write_index
from tests.drivewm.evaluation.browser import check_page, chromium_context, install_chromium

PAGES = ("index.html", "open-loop/report.html", "relevance/report.html", "closed-loop/report.html")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory) -> str:
    """The Chromium executable (installed once per test run where missing and possible)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp().parent
    with FileLock(str(base / "chromium_install.lock")):
        executable, why = install_chromium()
    if executable is None:
        pytest.skip(f"headless Chromium unavailable: {why}")
    return executable


def _closed_loop(agent: str, ckpt: Path, out: Path) -> None:
    args = ["eval", "closed-loop", "--agent", agent, "--routes", "routes_devtest", "--route-ids", "0", "--seeds", "2"]
    args += ["--vehicles", "2", "--pedestrians", "0", "--camera-size", "64x36", "--max-route-length", "20"]
    args += ["--frames-every", "1.0", "--out", str(out)]
    if agent == "drivewm":
        args += ["--ckpt", str(ckpt)]
    assert main(args) == 0


def _build_run(run: Path, open_loop_report: Path, ckpt: Path) -> None:
    shutil.copytree(open_loop_report, run / "open-loop")
    relevance = ["eval", "relevance", "--model", "drivewm,cv-gt,empty,oracle", "--ckpt", str(ckpt)]
    relevance += ["--towns", "Town01", "--scenes", "2", "--plans", "8", "--vehicles", "6", "--pedestrians", "0"]
    relevance += ["--figures", "1", "--latency-repeats", "1", "--out", str(run / "relevance")]
    assert main(relevance) == 0
    for agent in ("autopilot", "cv-gt", "drivewm"):
        _closed_loop(agent, ckpt, run / "closed-loop")
    write_index(run, pipeline(run, quick=True), {"open-loop report": 3.0})


@pytest.fixture(scope="session")
def report_run(evaluated, build_once, one_torch_thread) -> Path:
    """The assembled run folder (read-only), built once per test run."""
    report, _, ckpt = evaluated
    with build_once("report_run") as (run, done):
        if not done.is_file():
            shutil.rmtree(run, ignore_errors=True)
            run.mkdir(parents=True)
            with one_torch_thread():
                _build_run(run, report, ckpt)
            done.write_text("ok")
    return run


def test_the_run_holds_every_report_with_its_plots(report_run):
    pages = sorted(p.relative_to(report_run).as_posix() for p in report_run.rglob("*.html"))
    assert pages == sorted(PAGES)
    for plot in (
        "open-loop/figures/occupancy_horizon.png",
        "open-loop/figures/planning_horizon.png",
        "open-loop/figures/reliability.png",
        "relevance/figures/scores.png",
        "relevance/figures/tau.png",
        "relevance/figures/roc.png",
        "relevance/figures/reliability.png",
        "closed-loop/figures/scores.png",
        "closed-loop/figures/infractions.png",
    ):
        assert (report_run / plot).stat().st_size > 5_000, plot
    index = (report_run / "index.html").read_text()
    for figure in ("occupancy IoU at 1 s", "agent minADE", "τ on the model-dependent terms", "unsafe-plan AUROC"):
        assert figure in index
    assert "driving score" in index and "success rate" in index and "steps" in index


def test_every_report_renders_cleanly_in_chromium(report_run, chromium):
    with chromium_context(chromium) as context:
        problems = {page: check_page(context, report_run / page) for page in PAGES}
    assert problems == {page: [] for page in PAGES}


def test_the_checker_catches_broken_pages(tmp_path, chromium):
    """The checks themselves: each kind of breakage is reported (else a clean result would prove nothing)."""
    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "target.html").write_text("<p id='here'>x</p>")
    broken = (
        "<!DOCTYPE html><html><head><link rel='icon' href='data:,'></head><body>"
        "<img src='missing.png'><img src='a.png'>"
        "<a href='nowhere.html'>x</a><a href='target.html#there'>y</a><a href='target.html#here'>ok</a>"
        "<a href='https://example.org/'>z</a><a href='#top'>t</a>"
        "<div style='width:3000px'>wide</div><script>console.error('boom')</script></body></html>"
    )
    (tmp_path / "broken.html").write_text(broken)
    with chromium_context(chromium) as context:
        problems = "\n".join(check_page(context, tmp_path / "broken.html"))
    for expected in (
        "image did not load: missing.png",
        "image did not load: a.png",
        "dead link: nowhere.html",
        "dead anchor: target.html#there",
        "not a relative link (the folder must be self-contained): https://example.org/",
        "dead anchor: #top",
        "wider than its 1280 px window",
        "console error: boom",
    ):
        assert expected in problems
    assert "target.html#here" not in problems


def test_the_folder_is_self_contained(report_run, chromium, tmp_path):
    copy = tmp_path / "moved"
    shutil.copytree(report_run, copy)
    with chromium_context(chromium) as context:
        assert check_page(context, copy / "index.html") == []
        assert check_page(context, copy / "closed-loop" / "report.html") == []
