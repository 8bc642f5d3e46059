"""`drivewm demo`: the main job end to end on the embedded default (the README's first command).

Each step is an ordinary `drivewm` command a user could run by hand; the demo runs them in order as
subprocesses, shows which step is running (each step shows its own progress bar), and records a
step as finished in `<out>/steps.json` only after it exits cleanly. Rerunning skips finished steps
whose command line is unchanged, so an interrupted demo resumes where it stopped. At the end
`<out>/index.html` is the front page: every report's headline figures against their baselines with
95 % intervals, each marked met / not met against DESIGN.md's targets, the commit, the checkpoint and
how it was trained, and a link to every report.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from drivewm.cli import UserError
from drivewm.evaluation.summary import StepRow, write_front_page
from occupancy.atomic import write_json_atomic, write_text_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO_ROOT / "configs" / "tiny.yaml"


@dataclass(frozen=True)
class Step:
    """One pipeline step: a name, the `drivewm` arguments, and the report it produces (if any)."""

    name: str
    args: tuple[str, ...]
    report: str | None = None


def pipeline(out: Path, quick: bool) -> list[Step]:
    """The demo's steps. `quick` shrinks every size (used by the tests)."""
    data, version = out / "data", "v1.0-sim-demo"
    train_config = training_config(out / "train", max_steps=20 if quick else 500)
    ckpt = out / "train" / "checkpoints" / "last.ckpt"
    scenes, seconds = ("2", "8") if quick else ("9", "16")  # round-robin: 3 per town
    steps = [
        Step(
            "generate dataset",
            (
                "data",
                "generate",
                "--towns",
                "Town01,Town02" if quick else "Town01,Town03,Town02",
                "--val-towns",
                "Town02",
                "--scenes",
                scenes,
                "--scene-seconds",
                seconds,
                "--branches",
                "4",
                "--resolution",
                "160x90" if quick else "400x225",
                "--out",
                str(data),
                "--version",
                version,
                "--seed",
                "0",
                "--workers",
                "2",
            ),
        ),
        Step("check dataset", ("data", "check", str(data), "--version", version)),
        Step(
            "train tiny model",
            (
                "fit",
                "-c",
                str(train_config),
                "--data.dataroot",
                str(data),
                "--data.version",
                version,
                "--ckpt_path",
                "last",  # resumes an interrupted training; nothing to resume on the first run
            ),
        ),
        Step(
            "open-loop report",
            (
                "eval",
                "open-loop",
                "--ckpt",
                str(ckpt),
                "--dataroot",
                str(data),
                "--version",
                version,
                "--split",
                "val",
                "--out",
                str(out / "open-loop"),
            ),
            report="open-loop/report.html",
        ),
        Step(
            "action-relevance report",
            (
                "eval",
                "relevance",
                "--model",
                "drivewm,cv-gt,empty,oracle",
                "--ckpt",
                str(ckpt),
                "--towns",
                "Town03" if quick else "Town05",  # a town the demo never trains on
                "--scenes",
                "2" if quick else "6",
                "--plans",
                "16",
                "--out",
                str(out / "relevance"),
            ),
            report="relevance/report.html",
        ),
    ]
    for agent in ("autopilot", "cv-gt", "drivewm"):
        steps.append(
            Step(
                f"closed loop: {agent}",
                (
                    "eval",
                    "closed-loop",
                    "--agent",
                    agent,
                    *(("--ckpt", str(ckpt)) if agent == "drivewm" else ()),
                    "--routes",
                    "routes_devtest.xml",
                    "--route-ids",
                    "0,1" if quick else "0,1,2,3",
                    "--max-route-length",
                    "150" if quick else "200",
                    "--seeds",
                    "1",
                    "--workers",
                    "2",
                    "--backend",
                    "lite",
                    "--out",
                    str(out / "closed-loop"),
                ),
                report="closed-loop/report.html",
            )
        )
    return steps


def training_config(train_dir: Path, max_steps: int) -> Path:
    """`configs/tiny.yaml` with every output path under `train_dir` and a shorter schedule, written to
    `train_dir/tiny.yaml` (the demo's budget is ≤ 30 min for the whole pipeline on 2 cores)."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    trainer = config["trainer"]
    trainer["default_root_dir"] = str(train_dir)
    trainer["max_steps"] = max_steps
    trainer["logger"]["init_args"]["save_dir"] = str(train_dir)
    for callback in trainer.get("callbacks", []):
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"]["dirpath"] = str(train_dir / "checkpoints")
            callback["init_args"]["every_n_train_steps"] = max(1, min(100, max_steps // 4))
    train_dir.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(train_dir / "tiny.yaml", yaml.safe_dump(config, sort_keys=False))


def _load_done(path: Path) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}


def write_index(out: Path, steps: list[Step], timings: dict[str, float]) -> Path:
    """`<out>/index.html`: the front page — every report's headline figures with their verdicts, the
    provenance, and the steps with their time and a link to each report that exists."""
    rows = [
        StepRow(
            step.name,
            f"{timings[step.name]:.0f} s" if step.name in timings else "reused",
            step.report if step.report and (out / step.report).exists() else None,
        )
        for step in steps
    ]
    return write_front_page(out, title="drivewm demo: did it work?", steps=rows)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = pipeline(out, args.quick)
    done_path = out / "steps.json"
    done = _load_done(done_path)
    timings: dict[str, float] = {}
    for i, step in enumerate(steps, 1):
        if done.get(step.name) == list(step.args):
            print(f"[{i}/{len(steps)}] {step.name}: finished earlier, reused", flush=True)
            continue
        cmd = [sys.executable, "-m", "drivewm.cli", *step.args]
        print(f"[{i}/{len(steps)}] {step.name}: drivewm {shlex.join(step.args)}", flush=True)
        t0 = time.perf_counter()
        if subprocess.run(cmd, cwd=REPO_ROOT).returncode != 0:
            raise UserError(f"step '{step.name}' failed; fix the cause and rerun — finished steps are reused")
        timings[step.name] = time.perf_counter() - t0
        done[step.name] = list(step.args)
        write_json_atomic(done_path, done, indent=1)
    index = write_index(out, steps, timings)
    print(f"demo finished: {index}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the embedded default (the README's main command)")
    p.add_argument("--out", default="runs/demo", help="output folder (reruns reuse finished steps)")
    p.add_argument("--quick", action="store_true", help="tiny sizes everywhere (minutes; used by the tests)")
    p.set_defaults(func=run)
