"""End to end through the CLI on the `mini_nuscenes` fixture: `drivewm fit` (LightningCLI, tiny
model, a few steps) then `drivewm eval open-loop`; numbers with closed-form values are checked
against them (constant-velocity ego plan, cv-gt agents, copy-last of the ground truth)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from drivewm.cli import main
from drivewm.data import DataConfig, NuScenesWorldDataset
from drivewm.evaluation.open_loop import (
    OpenLoopConfig,
    detection_scores,
    evaluate_open_loop,
    match_agents,
    plan_dependent_cells,
)
from drivewm.model.checkpoint import load_world_model
from occupancy import GridSpec
from occupancy.builders import ego_mask

CONFIG = Path(__file__).parents[2] / "configs" / "tiny.yaml"
TINY_OVERRIDES = [
    "--model.config.image_size=[32, 64]",
    "--model.config.backbone_channels=[8, 16]",
    "--model.config.feat_dim=8",
    "--model.config.bev_dim=16",
    "--model.config.plan_dim=16",
    "--model.config.max_agents=6",
    "--model.config.grid_voxel=[3.2, 3.2, 1.6]",
    "--model.config.coarse_factor=5",
]


@pytest.fixture(scope="session")
def evaluated(mini_nuscenes, build_once, one_torch_thread):
    """CLI fit + CLI eval once per test run (shared by the xdist workers)."""
    with build_once("open_loop_run") as (run, done):
        if not done.is_file():
            with one_torch_thread():
                _fit_and_evaluate(mini_nuscenes, run)
            done.write_text("ok")
    out = run / "report"
    return out, json.loads((out / "results.json").read_text()), run / "ckpt" / "last.ckpt"


def _fit_and_evaluate(mini_nuscenes, run: Path) -> None:
    args = [
        "fit",
        "-c",
        str(CONFIG),
        *TINY_OVERRIDES,
        f"--data.dataroot={mini_nuscenes.dataroot}",
        f"--data.version={mini_nuscenes.version}",
        f"--data.cache_dir={run / 'cache'}",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--trainer.max_steps=2",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={run}",
        f"--trainer.logger.init_args.save_dir={run}",
        f"--trainer.callbacks.init_args.dirpath={run / 'ckpt'}",
    ]
    assert main(args) == 0
    ckpt = run / "ckpt" / "last.ckpt"
    assert ckpt.is_file()
    out = run / "report"
    code = main(
        [
            "eval",
            "open-loop",
            "--ckpt",
            str(ckpt),
            "--dataroot",
            str(mini_nuscenes.dataroot),
            "--version",
            mini_nuscenes.version,
            "--split",
            "train",  # the split holding the branch file
            "--out",
            str(out),
            "--cache-dir",
            str(run / "cache"),
            "--figures",
            "1",
            "--model-grid",  # the label-grid path is exercised by test_label_grid_scoring (cheaper there)
        ]
    )
    assert code == 0


def test_report_files_and_provenance(evaluated):
    out, res, _ = evaluated
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert (out / "figures" / "bev_0.png").stat().st_size > 10_000
    assert (out / "figures" / "cameras_0.png").stat().st_size > 10_000
    assert res["meta"]["git_commit"] is None or len(res["meta"]["git_commit"]) >= 40
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
    assert 0.0 <= mt["score_at_gt_centres_median"] <= 1.0 and 0.0 <= mt["strongest_background_peak_median"] <= 1.0
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
    res, figs = evaluate_open_loop(model, ds, OpenLoopConfig(max_samples=1, num_figures=0, label_grid=True))
    assert res["occupancy_grid"] == GridSpec.occ3d().to_dict() and figs == []
    assert res["occupancy"]["copy_last_gt"]["per_horizon"][0]["geometry_iou"] > 0.9


def test_match_agents_gates_and_assigns_one_to_one():
    det = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [10.5, 0.0], [50.0, 0.0]]])
    dv = torch.tensor([[True, True, True, True]])
    gt = torch.tensor([[[10.2, 0.0], [0.5, 0.0], [30.0, 0.0]]])
    gv = torch.tensor([[True, True, True]])
    m = match_agents(det, dv, gt, gv, radius=2.0)
    assert m.tolist() == [[1, 0, -1]]


def test_plan_dependent_cells_are_where_valid_branches_disagree():
    occ = torch.zeros(1, 3, 1, 2, 2, dtype=torch.bool)
    occ[0, :, 0, 0, 0] = True  # all branches agree: occupied
    occ[0, 0, 0, 0, 1] = True  # only branch 0 occupies (0, 1)
    occ[0, 2, 0, 1, 1] = True  # only the invalid branch 2 occupies (1, 1)
    valid = torch.tensor([[True, True, False]])
    dep = plan_dependent_cells(occ, valid)
    expected = torch.tensor([[False, True], [False, False]])
    for k in range(3):
        assert torch.equal(dep[0, k, 0], expected)
    assert not plan_dependent_cells(occ, torch.tensor([[True, False, False]])).any()  # one branch: nothing depends


def test_detection_scores_read_the_heatmap_at_centres_and_away_from_agents():
    from types import SimpleNamespace

    grid = GridSpec((-8.0, -8.0, -1.0), (8.0, 8.0, 3.0), (1.6, 1.6, 0.8))  # 10 x 10 BEV
    box = torch.zeros(1, 2, 7)
    box[0, 0] = torch.tensor([0.8, 0.8, 0.0, 0.0, 4.0, 2.0, 1.5])  # centre cell (5, 5)
    tg = SimpleNamespace(
        agent_box=box,
        agent_cls=torch.zeros(1, 2, dtype=torch.int64),
        agent_valid=torch.tensor([[True, False]]),
        agent_velocity=torch.zeros(1, 2, 2),
    )
    logits = torch.full((1, 3, 10, 10), -10.0)
    logits[0, 1, 5, 5] = 0.0  # 0.5 at the agent (class channel 1: the max over classes counts)
    logits[0, 0, 5, 6] = 5.0  # next to the agent: inside its Gaussian, not background
    logits[0, 2, 0, 9] = math.log(0.2 / 0.8)  # 0.2 far away
    out = detection_scores(logits, tg, grid)
    assert math.isclose(float(out["score_at_gt"][0, 0]), 0.5, rel_tol=1e-6)
    assert math.isnan(float(out["score_at_gt"][0, 1]))  # padding slot
    assert math.isclose(float(out["background_peak"][0]), 0.2, rel_tol=1e-5)


def test_light_metrics_count_a_hand_made_confusion():
    from drivewm.evaluation.open_loop import light_metrics

    # true: red, red, green, none, unknown; predicted: red, green, green, red, red
    out = light_metrics(torch.tensor([0, 1, 1, 0, 0]), torch.tensor([0, 0, 1, 2, -1]))
    assert out["samples"] == 4
    assert out["confusion_true_by_pred"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert math.isclose(out["accuracy"], 0.5)
    assert math.isclose(out["red_recall"], 0.5) and math.isclose(out["red_precision"], 0.5)
    assert out["green_recall"] == 1.0 and out["none_recall"] == 0.0 and out["none_precision"] is None
