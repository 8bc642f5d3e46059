"""The open-loop evaluation of a trained world model on a dataset split (see the package docstring).

results, figures = evaluate_open_loop(model, dataset, OpenLoopConfig.from_protocol("open-loop-v1"))
paths = run_open_loop(cfg, ckpt, dataroot, version, split, out)   # load, evaluate, write the report
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from agents.metrics import MaskedMetric, aggregate, forecast_metrics
from drivewm.data.dataset import NuScenesWorldDataset
from drivewm.data.types import Batch, Features, collate
from drivewm.evaluation.open_loop.config import DEFAULT_PROTOCOL, OpenLoopConfig
from drivewm.evaluation.open_loop.metrics import (
    bev_counts,
    detection_scores,
    light_metrics,
    match_agents,
    open_loop_metrics,
    plan_dependent_cells,
    top_mode_ade,
)
from drivewm.model import DriveWorldModel
from drivewm.model.losses import obstacle_bev
from drivewm.model.world_model import scene_features, targets_to_agents
from occupancy import GridSpec
from occupancy.atomic import check_output_dir
from occupancy.builders import ego_mask
from occupancy.metrics import OccupancyMetrics
from occupancy.resample import upsample_nearest
from planner import LightState, Prediction, SceneState
from planner.timebase import HORIZON_STEPS, STEP_SECONDS

HORIZON_TIMES = tuple(STEP_SECONDS * (i + 1) for i in range(HORIZON_STEPS))


def encode_previous(model: DriveWorldModel, f: Features) -> SceneState | None:
    """The previous keyframe's scene state (latent zeroed where there is none), or None without temporal fusion."""
    if not model.config.temporal:
        return None
    prev = model.encode(f.prev_observation())
    if prev.latent is None:
        return prev
    return replace(prev, latent=prev.latent * f.prev_valid[:, None, None, None].to(prev.latent.dtype))


def _gather_agents(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x `[B, A, ...]`, idx `[B, G]` (-1 allowed) → `[B, G, ...]` (zeros where idx = -1)."""
    safe = idx.clamp(min=0)
    out = torch.gather(x, 1, safe.view(*safe.shape, *([1] * (x.dim() - 2))).expand(*safe.shape, *x.shape[2:]))
    return out * (idx >= 0).view(*idx.shape, *([1] * (x.dim() - 2))).to(out.dtype)


def _cv(xy: torch.Tensor, vel: torch.Tensor, t_steps: int) -> torch.Tensor:
    """Constant-velocity futures `[..., 1, T, 2]` from positions/velocities `[..., 2]`."""
    t = torch.arange(1, t_steps + 1, dtype=xy.dtype) * STEP_SECONDS
    return (xy[..., None, :] + vel[..., None, :] * t[:, None])[..., None, :, :]


def _rollout_on_off(model: DriveWorldModel, scene: SceneState, plans: torch.Tensor) -> tuple[Prediction, Prediction]:
    """The rollout of `plans` `[B, N, T, 3]` with plan conditioning on, and switched off (the ablation)."""
    return model.rollout(scene, plans), model.rollout(scene, plans, plan_conditioning=False)


class _Accumulator:
    """Collects per-sample tensors across batches (metrics are computed once at the end)."""

    def __init__(self) -> None:
        self.items: dict[str, list[torch.Tensor]] = {}

    def add(self, **kw: torch.Tensor) -> None:
        for k, v in kw.items():
            self.items.setdefault(k, []).append(v.detach().cpu())

    def cat(self, key: str) -> torch.Tensor:
        return torch.cat(self.items[key])


@torch.no_grad()
def evaluate_open_loop(
    model: DriveWorldModel, dataset: NuScenesWorldDataset, config: OpenLoopConfig | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the evaluation (default: the `open-loop-v1` protocol). Returns (results dict, figure
    samples: a list of dicts for the report)."""
    cfg = (config or OpenLoopConfig.from_protocol(DEFAULT_PROTOCOL)).validate()
    if dataset.config.max_branches != cfg.max_branches:
        raise ValueError(
            f"the dataset holds {dataset.config.max_branches} branches per sample, the protocol "
            f"{cfg.protocol_label()} scores {cfg.max_branches}: build the dataset with max_branches={cfg.max_branches}"
        )
    model.eval()
    grid: GridSpec = model.grid
    label_grid = GridSpec.occ3d()
    t_steps = model.config.horizon
    n = len(dataset) if cfg.max_samples <= 0 else min(cfg.max_samples, len(dataset))
    if n == 0:
        raise ValueError(f"split {dataset.split!r} of {dataset.version} has no usable keyframes")
    eval_grid = label_grid if cfg.label_grid else grid
    ignore = ego_mask(eval_grid)
    occ: dict[str, dict[str, OccupancyMetrics]] = {}  # scene → prediction → counts (summed at the end)
    sample_scenes: list[str] = []
    acc = _Accumulator()
    branch = {
        k: {"inter": 0.0, "union": 0.0, "inter_dep": 0.0, "union_dep": 0.0, "ade": [], "ade_gt_tokens": [], "count": 0}
        for k in ("branch_plan", "logged_plan", "plan_off")
    }
    figures: list[dict] = []
    for start in range(0, n, cfg.batch_size):
        idxs = list(range(start, min(n, start + cfg.batch_size)))
        batch: Batch = collate([dataset[i] for i in idxs])
        f, tg = batch.features, batch.targets
        b = len(idxs)
        scenes = [dataset.scene_name(i) for i in idxs]
        sample_scenes += scenes
        prev = encode_previous(model, f)
        scene = model.encode(f.observation(), prev)
        kb = tg.branch_plans.shape[1]
        plans = torch.cat([tg.ego_future[:, None], tg.branch_plans], dim=1)  # [B, 1+Kb, T, 3]
        pred, pred_off = _rollout_on_off(model, scene, plans)
        zero = torch.zeros(b, dtype=torch.int64)
        # --- occupancy
        sem_model = pred.decode_semantics(zero)  # [B, T, X, Y, Z] model grid
        sem_off = pred_off.decode_semantics(zero)
        sem_now = model.semantics_now_logits(scene).argmax(1).to(torch.uint8)  # [B, X, Y, Z]
        if cfg.label_grid:
            full = [dataset.full_labels(i) for i in idxs]
            gt_sem = torch.stack([x[0] for x in full])
            gt_mask = torch.stack([x[1] for x in full])
            gt_now = torch.stack([x[2] for x in full])

            def up(x: torch.Tensor) -> torch.Tensor:
                return upsample_nearest(x, grid, label_grid)

            sem_model, sem_off, sem_now = up(sem_model), up(sem_off), up(sem_now)
        else:
            gt_sem, gt_mask, gt_now = tg.occ, tg.occ_mask, tg.occ_now
        valid_t = tg.occ_valid[:, :, None, None, None]
        mask = gt_mask & valid_t
        rep = (1, t_steps, 1, 1, 1)
        predicted = {
            "model": sem_model,
            "copy_last_own": sem_now[:, None].repeat(rep),
            "copy_last_gt": gt_now[:, None].repeat(rep),
            "plan_off": sem_off,
        }
        for scene_name in dict.fromkeys(scenes):
            sel = torch.tensor([s == scene_name for s in scenes])
            per = occ.setdefault(scene_name, {k: OccupancyMetrics(t_steps, HORIZON_TIMES[:t_steps]) for k in predicted})
            for k, sem in predicted.items():
                per[k].update(sem[sel], gt_sem[sel], mask=mask[sel], ignore=ignore)
        # --- planning
        ex = scene_features(scene)
        best = ex.ego_plan_logits.argmax(-1)
        plan_model = scene.ego_plans[torch.arange(b), best]
        t = torch.arange(1, t_steps + 1, dtype=torch.float32) * STEP_SECONDS
        plan_cv = torch.stack([f.speed[:, None] * t, torch.zeros(b, t_steps), torch.zeros(b, t_steps)], -1)
        acc.add(
            gt_plan=tg.ego_future,
            plan_model=plan_model,
            plan_status=ex.ego_status_plan,
            plan_cv=plan_cv,
            boxes=tg.future_boxes,
            boxes_valid=tg.future_boxes_valid,
            route_is_command=f.route_is_command,
        )
        # --- agents (logged plan, n = 0)
        det = scene.agents
        gt_xy = tg.agent_box[..., :2]
        gt_valid = tg.agent_valid & tg.agent_future_valid.any(-1)
        m = match_agents(det.xy, det.valid, gt_xy, gt_valid, cfg.match_radius)
        matched = m >= 0
        acc.add(
            agent_pred=_gather_agents(pred.agent_trajs[:, 0, ..., :2], m),
            agent_prob=_gather_agents(pred.agent_mode_probs[:, 0], m),
            agent_pred_off=_gather_agents(pred_off.agent_trajs[:, 0, ..., :2], m),
            agent_prob_off=_gather_agents(pred_off.agent_mode_probs[:, 0], m),
            agent_cv=_cv(_gather_agents(det.xy, m), _gather_agents(det.velocity, m), t_steps),
            agent_cv_gt=_cv(gt_xy, tg.agent_velocity, t_steps),
            agent_gt=tg.agent_future[..., :2],
            agent_valid_matched=tg.agent_future_valid & matched[..., None],
            agent_valid_all=tg.agent_future_valid & gt_valid[..., None],
            agent_matched=matched,
            agent_gt_present=gt_valid,
            det_count=det.valid.sum(-1),
            light_pred=ex.light_logits.argmax(-1),
            light_red_prob=ex.light_logits.softmax(-1)[:, LightState.RED],
            light_true=tg.light_state,
            det_velocity_error=torch.linalg.norm(_gather_agents(det.velocity, m) - tg.agent_velocity, dim=-1),
            **detection_scores(ex.heatmap, tg, grid),
        )
        # --- plan sensitivity on branches
        if kb > 0 and bool(tg.branch_valid.any()):
            b_occ, _ = obstacle_bev(tg.branch_occ, grid)  # [B, Kb, T, X, Y]
            dependent = plan_dependent_cells(b_occ, tg.branch_valid)
            # the same plans with the ground-truth agents as tokens (privileged input): isolates the
            # plan-conditioned agent dynamics from detection quality; slots are the ground truth's own
            gt_tok, gt_tok_off = _rollout_on_off(
                model, model.encode(f.observation(), prev, targets_to_agents(tg)), plans
            )
            bv = tg.branch_valid
            vb_gt = tg.branch_agent_valid & tg.agent_valid[:, None, :, None] & bv[:, :, None, None]
            for name, trajs, probs in (
                ("branch_plan", gt_tok.agent_trajs[:, 1:], gt_tok.agent_mode_probs[:, 1:]),
                (
                    "logged_plan",
                    gt_tok.agent_trajs[:, :1].expand(-1, kb, -1, -1, -1, -1),
                    gt_tok.agent_mode_probs[:, :1].expand(-1, kb, -1, -1),
                ),
                ("plan_off", gt_tok_off.agent_trajs[:, 1:], gt_tok_off.agent_mode_probs[:, 1:]),
            ):
                branch[name]["ade_gt_tokens"].append(top_mode_ade(trajs, probs, tg.branch_agent_future, vb_gt))
            for name, prob, trajs, probs in (
                ("branch_plan", pred.obstacle_prob[:, 1:], pred.agent_trajs[:, 1:], pred.agent_mode_probs[:, 1:]),
                (
                    "logged_plan",
                    pred.obstacle_prob[:, :1].expand(-1, kb, -1, -1, -1),
                    pred.agent_trajs[:, :1].expand(-1, kb, -1, -1, -1, -1),
                    pred.agent_mode_probs[:, :1].expand(-1, kb, -1, -1),
                ),
                (
                    "plan_off",
                    pred_off.obstacle_prob[:, 1:],
                    pred_off.agent_trajs[:, 1:],
                    pred_off.agent_mode_probs[:, 1:],
                ),
            ):
                hit = prob > cfg.obstacle_threshold
                inter, union = bev_counts(hit[bv], b_occ[bv])
                branch[name]["inter"] += inter
                branch[name]["union"] += union
                inter, union = bev_counts(hit[bv] & dependent[bv], b_occ[bv] & dependent[bv])
                branch[name]["inter_dep"] += inter
                branch[name]["union_dep"] += union
                branch[name]["count"] += int(bv.sum())
                # agents: matched detections' top-1 mode vs branch truth
                mm = m[:, None].expand(-1, kb, -1).reshape(b * kb, -1)
                pt = _gather_agents(trajs.reshape(b * kb, *trajs.shape[2:]), mm)
                pp = _gather_agents(probs.reshape(b * kb, *probs.shape[2:]), mm)
                vb = (tg.branch_agent_valid & bv[:, :, None, None]).reshape(b * kb, -1, t_steps) & (mm >= 0)[..., None]
                gtb = tg.branch_agent_future.reshape(b * kb, -1, t_steps, 3)
                branch[name]["ade"].append(top_mode_ade(pt, pp, gtb, vb))
        if len(figures) < cfg.num_figures:
            for j in range(min(b, cfg.num_figures - len(figures))):
                figures.append(
                    dict(
                        token=batch.tokens[j],
                        images=f.images[j],
                        intrinsics=f.intrinsics[j],
                        cam_to_ego=f.cam_to_ego[j],
                        plan=tg.ego_future[j],
                        plan_model=plan_model[j],
                        obstacle=pred.obstacle_prob[j, 0],
                        gt_sem=tg.occ[j],
                        det_boxes=torch.cat([det.xy[j], det.yaw[j, :, None], det.size[j, :, :2]], -1)[det.valid[j]],
                        det_trajs=pred.agent_trajs[j, 0][det.valid[j]],
                        det_probs=pred.agent_mode_probs[j, 0][det.valid[j]],
                        gt_boxes=tg.agent_box[j][tg.agent_valid[j]][:, [0, 1, 3, 4, 5]],
                        gt_trajs=tg.agent_future[j][tg.agent_valid[j]],
                        gt_trajs_valid=tg.agent_future_valid[j][tg.agent_valid[j]],
                    )
                )
    results = _summarize(acc, occ, sample_scenes, branch, cfg, n, eval_grid, t_steps)
    return results, figures


def _per_scene_agents(metrics: dict[str, MaskedMetric], sample_scenes: list[str]) -> dict[str, dict[str, float]]:
    """`aggregate` of forecast metrics `[S, A]` over the samples of each scene."""
    out = {}
    for scene in dict.fromkeys(sample_scenes):
        rows = torch.tensor([s == scene for s in sample_scenes])
        out[scene] = aggregate({k: MaskedMetric(m.value[rows], m.valid[rows]) for k, m in metrics.items()})
    return out


def _summarize(
    acc: _Accumulator,
    occ: dict[str, dict[str, OccupancyMetrics]],
    sample_scenes: list[str],
    branch,
    cfg: OpenLoopConfig,
    n: int,
    eval_grid: GridSpec,
    t_steps: int,
) -> dict:
    gt_plan, boxes, bvalid = acc.cat("gt_plan"), acc.cat("boxes"), acc.cat("boxes_valid")
    planning = {
        name: open_loop_metrics(acc.cat(key), gt_plan, boxes, bvalid, horizons=cfg.planning_horizons).to_dict()
        for name, key in (("model", "plan_model"), ("ego_status_mlp", "plan_status"), ("constant_velocity", "plan_cv"))
    }
    names = list(next(iter(occ.values())))
    total = {k: OccupancyMetrics(t_steps, HORIZON_TIMES[:t_steps]) for k in names}
    for per in occ.values():
        for k, m in per.items():
            total[k].merge(m)
    occupancy = {k: v.serialize() for k, v in total.items()}
    for v in occupancy.values():
        v.pop("confusion", None)
    occupancy_per_scene = {  # prediction → scene → per-horizon geometry IoU and mIoU
        k: {
            scene: {key: [p[key] for p in per[k].compute()["per_horizon"]] for key in ("geometry_iou", "miou")}
            for scene, per in occ.items()
        }
        for k in names
    }
    gt = acc.cat("agent_gt")
    k_modes = acc.cat("agent_prob").shape[-1]
    agents = {}
    agents_per_scene: dict[str, dict[str, dict[str, float]]] = {}  # prediction → scene → metrics
    for name, pk, probk, vk in (
        ("model", "agent_pred", "agent_prob", "agent_valid_matched"),
        ("plan_off", "agent_pred_off", "agent_prob_off", "agent_valid_matched"),
        ("cv_own_detections", "agent_cv", None, "agent_valid_matched"),
        ("cv_gt_privileged", "agent_cv_gt", None, "agent_valid_all"),
    ):
        pred = acc.cat(pk)
        probs = acc.cat(probk) if probk else torch.ones(pred.shape[:3])
        valid = acc.cat(vk)
        if bool(valid.any()):
            fm = forecast_metrics(pred, probs, gt, valid, ks=(1, 5))
            agents[name] = aggregate(fm)
            agents_per_scene[name] = _per_scene_agents(fm, sample_scenes)
        else:
            agents[name] = {}
    present = acc.cat("agent_gt_present")
    matched = acc.cat("agent_matched") & present
    agents["matching"] = {
        "method": f"Hungarian on centre distance at t0, gated at {cfg.match_radius} m; "
        "unmatched GT agents are not scored",
        "gt_agents": int(present.sum()),
        "matched": int(matched.sum()),
        "recall": float(matched.sum() / present.sum()) if bool(present.any()) else float("nan"),
        "detections": int(acc.cat("det_count").sum()),
        "velocity_error_matched": float(acc.cat("det_velocity_error")[matched].mean()) if bool(matched.any()) else None,
        "score_at_gt_centres_median": float(acc.cat("score_at_gt").nanquantile(0.5)),
        "strongest_background_peak_median": float(acc.cat("background_peak").median()),
        "modes": k_modes,
        "note": f"the model predicts K = {k_modes} modes; k = 5 uses all of them when K < 5",
    }
    sens = {}
    for name, d in branch.items():
        ade = torch.cat(d["ade"]) if d["ade"] else torch.zeros(0)
        sens[name] = {
            "bev_obstacle_iou": d["inter"] / d["union"] if d["union"] > 0 else float("nan"),
            "bev_obstacle_iou_plan_dependent": d["inter_dep"] / d["union_dep"] if d["union_dep"] > 0 else float("nan"),
            "agent_minADE_1": float(ade.mean()) if len(ade) else float("nan"),
            "num_branches": d["count"],
            "num_agent_futures": len(ade),
        }
        ade_gt = torch.cat(d["ade_gt_tokens"]) if d["ade_gt_tokens"] else torch.zeros(0)
        sens[name]["agent_minADE_1_gt_tokens"] = float(ade_gt.mean()) if len(ade_gt) else float("nan")
        sens[name]["num_agent_futures_gt_tokens"] = len(ade_gt)
    light_true = acc.cat("light_true")
    known = light_true >= 0
    return {
        "num_samples": n,
        "traffic_light": light_metrics(acc.cat("light_pred"), light_true),
        "probabilities": {
            "red light": {
                "prob": [round(float(p), 5) for p in acc.cat("light_red_prob")[known]],
                "label": [bool(v) for v in (light_true[known] == LightState.RED)],
            }
        },
        "protocol": cfg.protocol_label(),
        "eval_config": cfg.to_dict(),
        "occupancy_grid": eval_grid.to_dict(),
        "navigation": "command derived from the logged future (LEAKS the future)"
        if bool(acc.cat("route_is_command").any())
        else "stored route polyline",
        "planning": planning,
        "occupancy": occupancy,
        "occupancy_per_scene": occupancy_per_scene,
        "agents": agents,
        "agents_per_scene": agents_per_scene,
        "plan_sensitivity": sens,
        "horizon_times": list(HORIZON_TIMES[:t_steps]),
    }


def run_open_loop(
    cfg: OpenLoopConfig,
    ckpt: str | os.PathLike,
    dataroot: str | os.PathLike,
    version: str,
    split: str,
    out: str | os.PathLike,
    device: str = "cpu",
    cache_dir: str | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """The entry point: load the checkpoint and the split, evaluate, write `results.json`, `report.md`,
    `report.html` and figures into `out`. Returns (results, the paths written)."""
    from carla_bridge.run_metadata import run_metadata
    from drivewm.data.config import DataConfig
    from drivewm.evaluation.open_loop.render import write_open_loop_report
    from drivewm.model.checkpoint import load_world_model

    cfg.validate()
    check_output_dir(out)  # before minutes of work: an output folder, not a file
    model = load_world_model(ckpt, device)
    data_cfg = DataConfig.from_model(model.config, max_branches=cfg.max_branches)
    ds = NuScenesWorldDataset(dataroot, version, split, data_cfg, cache_dir=cache_dir)
    results, figures = evaluate_open_loop(model, ds, cfg)
    results["config"] = {
        "ckpt": str(Path(ckpt).resolve()),
        "dataroot": str(Path(dataroot).resolve()),
        "version": version,
        "split": split,
        "model": model.config.to_dict(),
        "data": data_cfg.to_dict(),
    }
    results["meta"] = run_metadata()
    return results, write_open_loop_report(results, figures, model.grid, out)


__all__ = ["HORIZON_TIMES", "encode_previous", "evaluate_open_loop", "run_open_loop"]
