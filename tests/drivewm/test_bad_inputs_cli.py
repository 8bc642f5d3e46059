"""Issue 17: every bad input to every command ends in ONE clear line naming the file or flag and a
non-zero exit — no traceback (without `--debug`), nothing written outside the output folder, no
temporary file left behind.

The table `CASES` runs the real CLI (`drivewm.cli.main`, in this process) on real bad files: a
truncated / NaN-weight / malicious (command-running) checkpoint, a folder where a file belongs, a
file where an output folder belongs, corrupt XML, out-of-range numbers, an unresolvable host. Cases
that could take the process down run as a subprocess (`SUBPROCESS`): a web server and a silent
service on the CARLA port (the C++ client would abort the process with exit 134 on the former), a
file-size limit (RLIMIT_FSIZE) hit while writing. Every case snapshots the sandbox before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from drivewm.cli import main
from tests.carla_bridge.carla_stand_ins import local_service
from tests.drivewm.bad_input_files import (
    run_cli,
    snapshot,
    temporaries,
    write_checkpoint,
    write_malicious,
    write_truncated,
)

REPO = Path(__file__).resolve().parents[2]
FAST_CL = ("--vehicles", "2", "--pedestrians", "0", "--camera-size", "32x18", "--max-route-length", "20")


@dataclass(frozen=True)
class Case:
    """One bad input: the command line (with `{placeholders}`), the text the error line must contain
    (the file or flag it is about, formatted too), and how to run it."""

    id: str
    argv: tuple[str, ...]
    names: str
    subprocess: bool = False
    fsize_limit: int | None = None  # RLIMIT_FSIZE [bytes] for the subprocess


CL = ("eval", "closed-loop", "--routes", "routes_devtest", "--route-ids", "0", "--out", "{out}", *FAST_CL)
CL_AUTOPILOT = (*CL, "--agent", "autopilot")
CL_DRIVEWM = (*CL, "--agent", "drivewm")
CARLA = ("eval", "closed-loop", "--agent", "cv-gt", "--routes", "routes_devtest", "--out", "{out}")
CARLA += ("--backend", "carla", "--carla-timeout", "1")
OL = ("eval", "open-loop", "--dataroot", "{dataroot}", "--version", "{version}", "--out", "{out}")
REL = ("eval", "relevance", "--towns", "Town01", "--scenes", "1", "--out", "{out}")
GEN = ("data", "generate", "--towns", "Town01", "--scenes", "1", "--version", "v1.0-sim-bad", "--out", "{out}")
FIT = ("fit", "-c", str(REPO / "configs" / "tiny.yaml"), "--data.dataroot={dataroot}", "--data.version={version}")
SIM = ("sim", "run", "--routes", "routes_devtest", "--route-ids", "0", "--out", "{out}")

CASES = [
    # --- sim run
    Case("sim-out-is-a-file", (*SIM[:-1], "{file}"), "--out"),
    # --- data generate
    Case("generate-scenes-0", (*GEN[:5], "0", *GEN[6:]), "--scenes"),
    Case("generate-scene-seconds-nan", (*GEN, "--scene-seconds", "nan"), "--scene-seconds"),
    Case("generate-workers-0", (*GEN, "--workers", "0"), "--workers"),
    Case("generate-out-is-a-file", (*GEN[:-1], "{file}"), "--out"),
    Case("generate-out-below-a-file", (*GEN[:-1], "{file}/ds"), "--out"),
    Case("generate-no-towns", ("data", "generate", "--towns", ",", *GEN[4:]), "--towns"),
    Case("generate-vehicles-negative", (*GEN, "--vehicles", "-5"), "--vehicles"),
    # --- data check
    Case("check-missing-folder", ("data", "check", "{missing}", "--version", "{version}"), "{missing}"),
    Case("check-dataroot-is-a-file", ("data", "check", "{file}", "--version", "{version}"), "{file}"),
    Case(
        "check-json-is-a-folder", ("data", "check", "{dataroot}", "--version", "{version}", "--json", "{dir}"), "--json"
    ),
    Case("check-wrong-version", ("data", "check", "{dataroot}", "--version", "v1.0-sim-nope"), "v1.0-sim-nope"),
    # --- fit
    Case("fit-ckpt-path-truncated", ("fit", "--ckpt_path", "{truncated}"), "{truncated}"),
    Case("fit-ckpt-path-folder", ("fit", "--ckpt_path={ckptdir}"), "{ckptdir}"),
    Case("fit-ckpt-path-malicious", ("fit", "--ckpt_path", "{malicious}"), "{malicious}"),
    Case("fit-batch-size-0", (*FIT, "--data.batch_size=0"), "data.batch_size"),
    Case("fit-batch-size-not-a-number", (*FIT, "--data.batch_size=abc"), "data.batch_size"),
    Case("fit-unknown-option", (*FIT, "--trainer.max_stepz=3"), "--trainer.max_stepz"),
    # --- eval open-loop
    Case("open-loop-out-is-a-file", (*OL[:-1], "{file}", "--ckpt", "{good}"), "--out"),
    Case("open-loop-batch-size-0", (*OL, "--ckpt", "{good}", "--batch-size", "0"), "--batch-size"),
    Case("open-loop-max-samples-negative", (*OL, "--ckpt", "{good}", "--max-samples", "-1"), "--max-samples"),
    Case("open-loop-ckpt-folder", (*OL, "--ckpt", "{ckptdir}"), "--ckpt"),
    Case("open-loop-ckpt-missing", (*OL, "--ckpt", "{missing}"), "{missing}"),
    Case("closed-loop-ckpt-missing", (*CL_DRIVEWM, "--ckpt", "{missing}"), "--ckpt {missing}"),
    Case("relevance-ckpt-missing", (*REL, "--model", "drivewm", "--ckpt", "{missing}"), "{missing}"),
    Case("open-loop-ckpt-truncated", (*OL, "--ckpt", "{truncated}"), "{truncated}"),
    Case("open-loop-ckpt-nan", (*OL, "--ckpt", "{nan}"), "{nan}"),
    Case("open-loop-ckpt-malicious", (*OL, "--ckpt", "{malicious}"), "{malicious}"),
    Case("open-loop-dataroot-missing", (*OL[:3], "{missing}", *OL[4:], "--ckpt", "{good}"), "--dataroot"),
    # --- eval relevance
    Case("relevance-out-is-a-file", (*REL[:-1], "{file}", "--model", "empty"), "--out"),
    Case("relevance-scenes-0", (*REL[:5], "0", *REL[6:], "--model", "empty"), "--scenes"),
    Case("relevance-unsafe-fraction-2", (*REL, "--model", "empty", "--unsafe-fraction", "2"), "--unsafe-fraction"),
    Case("relevance-ckpt-truncated", (*REL, "--model", "drivewm", "--ckpt", "{truncated}"), "{truncated}"),
    Case("relevance-ckpt-nan", (*REL, "--model", "drivewm", "--ckpt", "{nan}"), "{nan}"),
    # --- eval closed-loop: numbers and paths
    Case("closed-loop-out-is-a-file", (*CL_AUTOPILOT[:7], "{file}", *CL_AUTOPILOT[8:]), "--out"),
    Case("closed-loop-timeout-negative", (*CL_AUTOPILOT, "--timeout", "-3"), "--timeout"),
    Case("closed-loop-carla-timeout-negative", (*CL_AUTOPILOT, "--carla-timeout", "-1"), "--carla-timeout"),
    Case("closed-loop-port-99999", (*CL_AUTOPILOT, "--port", "99999"), "--port"),
    Case("closed-loop-workers-0", (*CL_AUTOPILOT, "--workers", "0"), "--workers"),
    Case("closed-loop-seeds-0", (*CL_AUTOPILOT, "--seeds", "0"), "--seeds"),
    Case("closed-loop-camera-size-2x2", (*CL_AUTOPILOT, "--camera-size", "2x2"), "--camera-size"),
    Case("closed-loop-replan-hz-50", (*CL_AUTOPILOT, "--replan-hz", "50"), "--replan-hz"),
    Case("closed-loop-max-route-length-0", (*CL_AUTOPILOT, "--max-route-length", "0"), "--max-route-length"),
    Case("closed-loop-frames-every-negative", (*CL_AUTOPILOT, "--frames-every", "-1"), "--frames-every"),
    Case("closed-loop-device-unknown", (*CL_AUTOPILOT, "--device", "banana"), "--device"),
    Case("open-loop-device-absent", (*OL, "--ckpt", "{good}", "--device", "cuda:99"), "--device"),
    Case("closed-loop-routes-missing", (*CL_AUTOPILOT, "--routes", "{missing}"), "{missing}"),
    Case("closed-loop-routes-corrupt-xml", (*CL_AUTOPILOT, "--routes", "{badxml}"), "{badxml}"),
    # --- eval closed-loop: the agent cannot be built — stops before any route is scored
    Case("closed-loop-ckpt-folder", (*CL_DRIVEWM, "--ckpt", "{ckptdir}"), "--ckpt"),
    Case("closed-loop-ckpt-truncated", (*CL_DRIVEWM, "--ckpt", "{truncated}"), "{truncated}"),
    Case("closed-loop-ckpt-malicious", (*CL_DRIVEWM, "--ckpt", "{malicious}"), "{malicious}"),
    Case("closed-loop-ckpt-nan-weights", (*CL_DRIVEWM, "--ckpt", "{nan}"), "{nan}"),
    # --- eval closed-loop on a CARLA server that is not there, or not CARLA
    Case("carla-host-unresolvable", (*CARLA, "--host", "no.such.host.invalid"), "no.such.host.invalid"),
    Case("carla-port-closed", (*CARLA, "--port", "{closed_port}"), "127.0.0.1:{closed_port}"),
    Case("carla-port-silent", (*CARLA, "--port", "{silent_port}"), "127.0.0.1:{silent_port}"),
    Case("carla-port-speaks-http", (*CARLA, "--port", "{http_port}"), "127.0.0.1:{http_port}", subprocess=True),
    # --- a full disk / file-size limit while writing
    Case(
        "check-json-file-size-limit",
        ("data", "check", "{dataroot}", "--version", "{version}", "--json", "{out}/report.json"),
        "{out}/report.json",
        subprocess=True,
        fsize_limit=64,
    ),
]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, sim_dataset):
    """Every bad file of the table, and the stand-in services, for the module's lifetime."""
    root = tmp_path_factory.mktemp("bad_inputs")
    (root / "a_file.txt").write_text("not a folder\n")
    (root / "a_folder").mkdir()
    ckpts = root / "ckpts"
    good = write_checkpoint(ckpts / "good.ckpt")
    write_checkpoint(ckpts / "nan.ckpt", nan_weights=True)
    write_truncated(good, ckpts / "truncated.ckpt")
    marker = root / "PWNED"
    write_malicious(ckpts / "malicious.ckpt", marker)
    (ckpts / "folder.ckpt").mkdir()
    (root / "bad_routes.xml").write_text("<routes><route id='0' town='Town01'><waypoint x='1'")
    (root / "outputs").mkdir()
    closed = _free_port()
    with local_service("http") as http_port, local_service("silent") as silent_port:
        yield {
            "root": root,
            "marker": marker,
            "file": str(root / "a_file.txt"),
            "dir": str(root / "a_folder"),
            "missing": str(root / "does_not_exist"),
            "good": str(good),
            "truncated": str(ckpts / "truncated.ckpt"),
            "nan": str(ckpts / "nan.ckpt"),
            "malicious": str(ckpts / "malicious.ckpt"),
            "ckptdir": str(ckpts / "folder.ckpt"),
            "badxml": str(root / "bad_routes.xml"),
            "dataroot": str(sim_dataset.dataroot),
            "version": sim_dataset.version,
            "http_port": str(http_port),
            "silent_port": str(silent_port),
            "closed_port": str(closed),
        }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_in_process(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse refuses at parse time
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_ends_in_one_clear_line(case: Case, sandbox, capsys, monkeypatch):
    root: Path = sandbox["root"]
    out = root / "outputs" / case.id
    values = {**sandbox, "out": str(out)}
    argv = [a.format(**values) for a in case.argv]
    names = case.names.format(**values)
    monkeypatch.chdir(root)  # anything written relative to the working directory lands in the sandbox
    before = snapshot(root, skip=out)
    if case.subprocess:
        proc = run_cli(argv, root, case.fsize_limit, timeout=300)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    else:
        code, stdout, stderr = _run_in_process(argv, capsys)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, f"exit {code} for {argv}: {stderr[-2000:]}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr[-3000:]}"
    assert lines[0].startswith("drivewm") and ": error: " in lines[0], lines[0]
    assert names in lines[0], f"{names!r} not named in: {lines[0]}"
    assert "Traceback" not in stdout + stderr
    assert snapshot(root, skip=out) == before, "a file was written or changed outside the output folder"
    assert not temporaries(root), f"temporary files left: {temporaries(root)}"
    assert not sandbox["marker"].exists(), "a malicious checkpoint ran its command"
    if case.id.startswith("closed-loop-ckpt"):  # nothing was scored
        assert not (out / "checkpoint.json").exists()


def test_debug_shows_the_traceback(sandbox, capsys):
    argv = ["eval", "closed-loop", "--agent", "drivewm", "--ckpt", sandbox["truncated"], "--routes", "routes_devtest"]
    argv += ["--out", str(sandbox["root"] / "outputs" / "debug"), "--debug"]
    with pytest.raises(ValueError, match="truncated.ckpt"):
        main(argv)
