"""End to end through the CLI on the `mini_nuscenes` fixture: `drivewm fit` (LightningCLI, tiny
model, a few steps) then `drivewm eval open-loop`; numbers with closed-form values are checked
against them (constant-velocity ego plan, cv-gt agents, copy-last of the ground truth)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
import torch

from drivewm.cli import main
from drivewm.data import DataConfig, NuScenesWorldDataset, collate
from drivewm.evaluation.open_loop import OpenLoopConfig, evaluate_open_loop
from drivewm.evaluation.open_loop.evaluate import encode_previous
from drivewm.evaluation.open_loop.metrics import (
    detection_scores,
)
from drivewm.model.checkpoint import load_world_model
from drivewm.model.world_model import scene_features
from occupancy import GridSpec
from occupancy.builders import ego_mask

REPO = Path(__file__).parents[4]


def test_report_files_and_provenance(evaluated):
    out, res, _ = evaluated
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert (out / "figures" / "bev_0.png").stat().st_size > 10_000
    assert (out / "figures" / "cameras_0.png").stat().st_size > 10_000
    # the suite runs in a git checkout: the results name its HEAD
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    assert res["meta"]["git_commit"].removesuffix("-dirty") == head.stdout.strip()
    assert res["protocol"] == 'open-loop-v1 with overrides {"label_grid": false}'  # --model-grid
    assert "torch" in res["meta"]["package_versions"] and res["config"]["model"]["bev_dim"] == 16
    md = (out / "report.md").read_text()
    for text in ("average up to t", "at t", "copy_last_own", "copy_last_gt (privileged)", "plan_off", "recall"):
        assert text in md
    assert res["navigation"] == "stored route polyline"


def test_planning_baselines_match_closed_form(evaluated):
    _, res, _ = evaluated
    cv = res["planning"]["constant_velocity"]
    # the ego drives straight at 5 m/s; odometry speed is 0 only at the scene start (sample 0)
    assert cv["num_samples"] == 3 and cv["num_excluded"] == 0
    for t in (1.0, 2.0, 3.0):
        assert math.isclose(cv["l2"]["at"][str(t)], 5.0 * t / 3, rel_tol=1e-4)
        steps = [0.5 * k for k in range(1, int(2 * t) + 1)]
        assert math.isclose(cv["l2"]["avg"][str(t)], sum(5.0 * s for s in steps) / len(steps) / 3, rel_tol=1e-4)
        assert cv["collision"]["at"][str(t)] == 0.0
    assert set(res["planning"]) == {"model", "ego_status_mlp", "constant_velocity"}


def test_agent_and_occupancy_numbers(evaluated, mini_nuscenes):
    _, res, _ = evaluated
    cvgt = res["agents"]["cv_gt_privileged"]
    assert cvgt["num_agents"] == 9 and cvgt["minADE_1"] < 1e-4 and cvgt["MR_5"] == 0.0  # all motion is CV
    mt = res["agents"]["matching"]
    assert mt["gt_agents"] == 9
    assert mt["recall"] == pytest.approx(mt["matched"] / mt["gt_agents"])
    # copy-last of the ground truth, geometry IoU at 0.5 s on the model grid, recomputed with plain torch
    cfg = DataConfig(image_size=[32, 64], grid_voxel=[3.2, 3.2, 1.6], max_agents=6)
    ds = NuScenesWorldDataset(mini_nuscenes.dataroot, mini_nuscenes.version, "train", cfg, cache_dir="")
    ignore = ego_mask(cfg.grid)
    inter = union = 0
    for i in range(len(ds)):
        tg = ds[i].targets
        keep = tg.occ_mask[0] & ~ignore
        p, g = tg.occ_now != 17, tg.occ[0] != 17
        inter += int((p & g & keep).sum())
        union += int(((p | g) & keep).sum())
    got = res["occupancy"]["copy_last_gt"]["per_horizon"][0]["geometry_iou"]
    assert math.isclose(got, inter / union, rel_tol=1e-6)
    sens = res["plan_sensitivity"]
    assert sens["branch_plan"]["num_branches"] == 2
    # with ground-truth agent tokens every branch agent future is scored (no detection needed)
    for name in ("branch_plan", "logged_plan", "plan_off"):
        assert sens[name]["num_agent_futures_gt_tokens"] > 0
        assert math.isfinite(sens[name]["agent_minADE_1_gt_tokens"])


def test_eval_errors_are_one_line(evaluated, mini_nuscenes, tmp_path, capsys):
    _, _, ckpt = evaluated
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(ckpt.read_bytes()[:1000])
    base = ["eval", "open-loop", "--dataroot", str(mini_nuscenes.dataroot), "--version", mini_nuscenes.version]
    assert main([*base, "--ckpt", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert (
        main(
            [
                *base[:2],
                "--ckpt",
                str(ckpt),
                "--dataroot",
                str(tmp_path),
                "--version",
                "v1.0-sim-x",
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "no nuScenes tables" in capsys.readouterr().err


def test_label_grid_scoring(evaluated, mini_nuscenes):
    _, _, ckpt = evaluated
    model = load_world_model(ckpt)
    ds = NuScenesWorldDataset(
        mini_nuscenes.dataroot, mini_nuscenes.version, "train", DataConfig.from_model(model.config), cache_dir=""
    )
    cfg = OpenLoopConfig.from_protocol(
        "open-loop-v1", max_samples=1, num_figures=0, max_branches=ds.config.max_branches
    )
    res, figs = evaluate_open_loop(model, ds, cfg)
    assert res["occupancy_grid"] == GridSpec.occ3d().to_dict() and figs == []
    assert res["occupancy"]["copy_last_gt"]["per_horizon"][0]["geometry_iou"] > 0.9
    # the heatmap figures of the one sample, recomputed from the model's own encoding
    batch = collate([ds[0]])
    with torch.no_grad():
        scene = model.encode(batch.features.observation(), encode_previous(model, batch.features))
    own = detection_scores(scene_features(scene).heatmap, batch.targets, model.grid)
    mt = res["agents"]["matching"]
    assert mt["strongest_background_peak_median"] == pytest.approx(float(own["background_peak"][0]))
    assert mt["score_at_gt_centres_median"] == pytest.approx(float(own["score_at_gt"].nanquantile(0.5)))
    with pytest.raises(ValueError, match="max_branches"):
        evaluate_open_loop(
            model, ds, OpenLoopConfig.from_protocol("open-loop-v1", max_branches=ds.config.max_branches + 1)
        )
