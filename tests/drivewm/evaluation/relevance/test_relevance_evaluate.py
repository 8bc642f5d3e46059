"""Action-relevance evaluation: plan construction, score parts, occupancy counts, aggregation (vs scipy
and hand-computed values) and one tiny end-to-end run on Town01 with the real lite simulator."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from drivewm.cli import main as cli_main
from drivewm.evaluation.relevance import RelevanceConfig, evaluate_relevance


def test_bad_config_and_cli_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="checkpoint"):
        RelevanceConfig.from_protocol("relevance-v1", models=("drivewm",)).validate()
    with pytest.raises(ValueError, match="models"):
        RelevanceConfig.from_protocol("relevance-v1", models=("nope",)).validate()
    with pytest.raises(ValueError, match="plans"):
        RelevanceConfig.from_protocol("relevance-v1", plans=2).validate()
    assert RelevanceConfig.from_protocol(
        "relevance-v1", models=("drivewm", "empty"), ckpt="x", plan_conditioning=False
    ).rows() == [
        "drivewm-noplan",
        "empty",
    ]
    rc = cli_main(["eval", "relevance", "--model", "nope", "--out", str(tmp_path / "r")])
    assert rc == 2 and "models must be among" in capsys.readouterr().err
    rc = cli_main(["eval", "relevance", "--model", "empty", "--towns", "Town99", "--out", str(tmp_path / "r")])
    assert rc == 2 and "Town99" in capsys.readouterr().err


def test_tiny_end_to_end_run(tmp_path):
    cfg = RelevanceConfig.from_protocol(
        "relevance-v1",
        towns=("Town01",),
        scenes=1,
        plans=8,
        models=("cv-gt", "empty", "oracle"),
        warmup=(1.0, 3.0),
        num_vehicles=6,
        num_pedestrians=0,
        num_parked=2,
        num_props=0,
        unsafe_fraction=0.5,
        latency_repeats=1,
        latency_plans=(4,),
        figures=1,
    )
    res = evaluate_relevance(cfg, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["seed"] == 0 and saved["config"]["plans"] == 8
    assert "git_commit" in saved["metadata"] and "torch" in saved["metadata"]["package_versions"]
    # one BEV panel per model plus the truth, side by side; the reports embed it and name the protocol
    with Image.open(tmp_path / "figures" / "scene_000.png") as img:
        pixels = np.asarray(img.convert("RGB"))
    assert pixels.shape[1] > 2.5 * pixels.shape[0] and pixels.std() > 10
    overridden = {"plans", "warmup", "num_vehicles", "num_pedestrians", "num_parked", "num_props"}
    overridden |= {"unsafe_fraction", "latency_plans"}
    assert set(saved["config"]["protocol_overrides"]) == overridden
    assert saved["protocol"].startswith("relevance-v1 with overrides {")
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert "](figures/scene_000.png)" in md and "<img src='figures/scene_000.png'" in page
    assert "Protocol relevance-v1 with overrides" in md
    scene = res["scenes"][0]
    assert len(scene["kinds"]) == 8 and scene["kinds"][0] == "stop" and sum(scene["constructed_unsafe"]) == 4
    truth = scene["truth"]
    # the comfortable stop is safe, and a truly unsafe plan scores 0
    assert not truth["unsafe"][0]
    assert all(s == 0.0 for s, u in zip(truth["score"], truth["unsafe"]) if u)
    # the oracle's prediction is the true future: its plan-conditioned occupancy is exact
    orc = res["models"]["oracle"]
    assert orc["occupancy_iou"]["pooled"] == pytest.approx(1.0) or math.isnan(orc["occupancy_iou"]["pooled"])
    # the empty world sees no danger: everything accepted
    emp = res["models"]["empty"]
    assert emp["accepted_fraction"] == 1.0 and scene["models"]["empty"]["unsafety"] == [0.0] * 8
    assert set(res["latency_ms"]) == {"cv-gt", "empty", "oracle"}
    assert all(v > 0 for m in res["latency_ms"].values() for v in m.values())
    assert "| oracle |" in (tmp_path / "report.md").read_text()

    # resume: finished scenes are taken from scenes.partial.json (same config), not simulated again
    partial = {"config": res["config"], "records": json.loads(json.dumps(res["scenes"])), "latency": res["latency_ms"]}
    (tmp_path / "scenes.partial.json").write_text(json.dumps(partial))
    msgs: list[str] = []
    again = evaluate_relevance(cfg, tmp_path, progress=msgs.append, resume=True)
    assert msgs == ["resuming after 1 finished scenes"]
    assert again["scenes"][0]["truth"] == scene["truth"] and not (tmp_path / "scenes.partial.json").exists()
    assert again["models"]["oracle"]["kendall_tau"] == pytest.approx(
        res["models"]["oracle"]["kendall_tau"], nan_ok=True
    )


def test_learned_model_rows_with_and_without_plan_conditioning(active_plan_pathway):
    """The learned model (untrained, tiny config, plan pathway made active) runs through the same path
    on rendered cameras; the two rows share one model, and switching the plan pathway off for the
    ablation row does not change the model."""
    from carla_bridge.lite.backend import LiteBackend
    from carla_bridge.lite.config import LiteConfig
    from carla_bridge.maps import load_town
    from drivewm.evaluation.relevance import build_rows, evaluate_scene
    from drivewm.evaluation.relevance.scenes import prepare_scene
    from drivewm.model import DriveWorldModel, ModelConfig

    town01 = load_town("Town01")
    torch.manual_seed(0)
    model = active_plan_pathway(DriveWorldModel(ModelConfig())).eval()
    with torch.no_grad():  # an untrained drivable head gates every plan off-road: make it say "all road"
        model.drivable.weight.zero_()
        model.drivable.bias.fill_(5.0)
    h, w = model.config.image_size
    cfg = RelevanceConfig.from_protocol(
        "relevance-v1",
        towns=("Town01",),
        scenes=1,
        plans=6,
        models=("drivewm", "empty"),
        ckpt="unused",
        warmup=(0.5, 1.0),
    )
    lite = LiteConfig(num_vehicles=4, num_pedestrians=0, num_parked=0, num_props=0)
    backend = LiteBackend(town01, lite, render="cameras", render_every=10**9, image_size=(w, h))
    rows = build_rows(cfg, backend, model)
    assert [r.row for r in rows] == ["drivewm", "drivewm-noplan", "empty"]
    assert rows[0].model is model and rows[1].model.model is model  # one loaded model behind both rows
    info = prepare_scene(backend, town01, cfg, 0)
    rec, _keep = evaluate_scene(backend, rows, cfg, info, True)
    on, off = rec["models"]["drivewm"], rec["models"]["drivewm-noplan"]
    assert len(on["score"]) == len(off["score"]) == 6 and on["finite"] and off["finite"]
    assert on["unsafety"] != off["unsafety"]  # the plan pathway changes the predicted risk under each plan
    assert len(on["occ_union"]) == len(on["occ_intersection"]) == model.config.horizon
    # the ablation is asked per call: the shared model still predicts with its plan pathway on afterwards
    again, _ = evaluate_scene(backend, rows[:1], cfg, info, True)
    assert again["models"]["drivewm"]["unsafety"] == on["unsafety"]
