"""`drivewm data generate` / `drivewm data check` from the command line."""

from __future__ import annotations

import json
import shutil

from drivewm.cli import main


def test_generate_rejects_bad_input(tmp_path, capsys) -> None:
    out = tmp_path / "ds"
    args = ["data", "generate", "--towns", "Town01", "--scenes", "1", "--out", str(out)]
    assert main([*args, "--version", "v1.0-mini"]) == 2
    assert "real nuScenes" in capsys.readouterr().err
    assert (
        main(["data", "generate", "--towns", "Town77", "--scenes", "1", "--out", str(out), "--version", "v1.0-sim-x"])
        == 2
    )
    err = capsys.readouterr().err
    assert "Town77" in err and "Town01" in err  # the message lists the available towns
    assert main([*args, "--version", "v1.0-sim-x", "--resolution", "big"]) == 2
    assert "resolution" in capsys.readouterr().err
    assert main([*args, "--version", "v1.0-sim-x", "--val-towns", "Town02"]) == 2
    assert "val_towns" in capsys.readouterr().err
    assert not out.exists()


def test_check_reports_a_broken_dataset(sim_dataset, tmp_path, capsys) -> None:
    assert main(["data", "check", str(tmp_path / "missing"), "--version", sim_dataset.version]) == 2
    capsys.readouterr()
    broken = tmp_path / "broken"
    shutil.copytree(sim_dataset.dataroot, broken)
    table = json.loads((broken / sim_dataset.version / "sample_data.json").read_text())
    jpg = next(sd["filename"] for sd in table if sd["filename"].endswith(".jpg"))
    (broken / jpg).unlink()
    labels = next((broken / "gts").rglob("labels.npz"))
    labels.unlink()
    report = tmp_path / "report.json"
    assert main(["data", "check", str(broken), "--version", sim_dataset.version, "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert f"missing file {jpg}" in out and "missing Occ3D labels" in out and "FAILED" in out
    assert json.loads(report.read_text())["ok"] is False
