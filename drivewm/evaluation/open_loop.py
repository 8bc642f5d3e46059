"""Open-loop evaluation of the world model on a dataset split (DESIGN.md §7, issue 6).

Everything is computed on the same samples for the model and its baselines:

* planning: L2 at 1/2/3 s and collision rate with ground-truth vehicle/pedestrian boxes, in both
  conventions ("at t" and "average up to t"; `planner.open_loop_metrics`, ego box with its size,
  rear-axle offset and yaw; samples whose logged future collides are excluded and counted). Plans:
  the model's ego head (top-scored proposal), the ego-status MLP (odometry + route only, the known
  nuScenes shortcut), constant velocity straight ahead;
* occupancy: IoU/mIoU per horizon 0.5…3 s on the camera mask with the ego excluded
  (`occupancy.metrics`, mIoU over classes present in the ground truth), on the Occ3D label grid
  (predictions upsampled explicitly from the model grid). Baselines: copy-last of the model's own
  t = 0 estimate, copy-last of the ground truth at t = 0 (privileged), the model with plan
  conditioning off;
* agents: minADE/minFDE/MR (k = 1, 5) under the logged plan, after matching the model's detections
  to ground-truth agents present at t = 0 (Hungarian on centre distance, gated at `match_radius`;
  the matching recall is reported; unmatched ground-truth agents are not scored). Baselines: constant
  velocity on the model's own detections (same matches), constant velocity on ground-truth agents
  (`cv-gt`, privileged, all agents), the model with plan conditioning off;
* plan sensitivity on counterfactual branches: for one past and several plans, the prediction under
  each branch plan vs that branch's truth (BEV obstacle IoU on the model grid, agent minADE_1),
  compared with feeding the logged plan instead, and with plan conditioning off.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from agents.metrics import aggregate, forecast_metrics
from drivewm.data.dataset import NuScenesWorldDataset
from drivewm.data.types import Batch, Features, collate
from drivewm.model import DriveWorldModel
from drivewm.model.heads import encode_detection_targets
from drivewm.model.losses import obstacle_bev
from drivewm.model.world_model import scene_features, targets_to_agents
from occupancy import GridSpec
from occupancy.builders import ego_mask
from occupancy.metrics import OccupancyMetrics
from occupancy.resample import upsample_nearest
from planner.contracts import LightState, Prediction, SceneState
from planner.open_loop_metrics import open_loop_metrics
from planner.timebase import HORIZON_STEPS, STEP_SECONDS

HORIZON_TIMES = tuple(STEP_SECONDS * (i + 1) for i in range(HORIZON_STEPS))


@dataclass
class OpenLoopConfig:
    """Evaluation settings (part of results.json).

    Attributes:
        batch_size: samples per forward pass.
        max_samples: evaluate only the first n samples of the split (0 = all).
        label_grid: score occupancy on the Occ3D label grid (True) or on the model grid.
        match_radius: detection ↔ ground-truth gating distance [m].
        obstacle_threshold: BEV obstacle probability threshold for the branch IoU.
        num_figures: samples drawn in the report.
    """

    batch_size: int = 4
    max_samples: int = 0
    label_grid: bool = True
    match_radius: float = 2.0
    obstacle_threshold: float = 0.5
    num_figures: int = 2


def encode_previous(model: DriveWorldModel, f: Features) -> SceneState | None:
    """The previous keyframe's scene state (latent zeroed where there is none), or None without temporal fusion."""
    if not model.config.temporal:
        return None
    prev = model.encode(f.prev_observation())
    if prev.latent is None:
        return prev
    return replace(prev, latent=prev.latent * f.prev_valid[:, None, None, None].to(prev.latent.dtype))


def encode_with_history(model: DriveWorldModel, f: Features) -> SceneState:
    """Encode the previous keyframe, then the current one fusing it (as deployment does)."""
    return model.encode(f.observation(), encode_previous(model, f))


def match_agents(
    det_xy: torch.Tensor, det_valid: torch.Tensor, gt_xy: torch.Tensor, gt_valid: torch.Tensor, radius: float
):
    """Hungarian matching of detections to ground-truth agents by centre distance, gated.

    Args:
        det_xy `[B, A, 2]`, det_valid `[B, A]`, gt_xy `[B, G, 2]`, gt_valid `[B, G]`.

    Returns:
        `[B, G]` int64 index of the matched detection (-1 if none).
    """
    b, g = gt_valid.shape
    out = torch.full((b, g), -1, dtype=torch.int64)
    for i in range(b):
        di = torch.nonzero(det_valid[i]).flatten()
        gi = torch.nonzero(gt_valid[i]).flatten()
        if len(di) == 0 or len(gi) == 0:
            continue
        cost = torch.cdist(gt_xy[i, gi].double(), det_xy[i, di].double()).numpy()
        rows, cols = linear_sum_assignment(np.where(cost <= radius, cost, 1e6))
        for r, c in zip(rows, cols):
            if cost[r, c] <= radius:
                out[i, gi[r]] = di[c]
    return out


def _gather_agents(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x `[B, A, ...]`, idx `[B, G]` (-1 allowed) → `[B, G, ...]` (zeros where idx = -1)."""
    safe = idx.clamp(min=0)
    out = torch.gather(x, 1, safe.view(*safe.shape, *([1] * (x.dim() - 2))).expand(*safe.shape, *x.shape[2:]))
    return out * (idx >= 0).view(*idx.shape, *([1] * (x.dim() - 2))).to(out.dtype)


def _cv(xy: torch.Tensor, vel: torch.Tensor, t_steps: int) -> torch.Tensor:
    """Constant-velocity futures `[..., 1, T, 2]` from positions/velocities `[..., 2]`."""
    t = torch.arange(1, t_steps + 1, dtype=xy.dtype) * STEP_SECONDS
    return (xy[..., None, :] + vel[..., None, :] * t[:, None])[..., None, :, :]


def plan_dependent_cells(branch_occ: torch.Tensor, branch_valid: torch.Tensor) -> torch.Tensor:
    """Cells whose truth depends on the plan: the sample's valid branches disagree there.

    Args:
        branch_occ: `[B, Kb, T, X, Y]` bool BEV obstacle truth per branch; branch_valid `[B, Kb]` bool.

    Returns:
        `[B, Kb, T, X, Y]` bool (the same cells for every branch of a sample; none with < 2 valid branches).
    """
    v = branch_valid[:, :, None, None, None]
    any_occ = (branch_occ & v).any(1)
    all_occ = (branch_occ | ~v).all(1)
    return (any_occ & ~all_occ)[:, None].expand_as(branch_occ)


def light_metrics(pred: torch.Tensor, true: torch.Tensor) -> dict:
    """Traffic-light head vs the recorded state of the light governing the ego's route.

    Args:
        pred: `[S]` int64 `LightState` (argmax); true `[S]` int64 `LightState`, -1 where unknown.

    Returns:
        accuracy, per-state recall and precision (red's are what the planner's red-light gate needs),
        the confusion matrix `[true][pred]` and the number of samples with a known state.
    """
    known = true >= 0
    p, t = pred[known], true[known]
    confusion = torch.zeros(len(LightState), len(LightState), dtype=torch.int64)
    confusion.index_put_((t, p), torch.ones_like(t), accumulate=True)
    out: dict = {"samples": int(known.sum()), "confusion_true_by_pred": confusion.tolist()}
    out["accuracy"] = float((p == t).float().mean()) if len(t) else None
    for state in LightState:
        k = int(state)
        tp = int(confusion[k, k])
        out[f"{state.name.lower()}_recall"] = tp / int(confusion[k].sum()) if int(confusion[k].sum()) else None
        out[f"{state.name.lower()}_precision"] = tp / int(confusion[:, k].sum()) if int(confusion[:, k].sum()) else None
    return out


def detection_scores(heatmap_logits: torch.Tensor, tg, grid: GridSpec) -> dict[str, torch.Tensor]:
    """Where the detection heatmap stands: its score at each ground-truth centre cell `[B, A]` (NaN for
    padding) and the strongest score away from every ground-truth agent `[B]` (target heat < 0.1)."""
    target, _, flat, inside = encode_detection_targets(
        tg.agent_box, tg.agent_cls, tg.agent_valid, tg.agent_velocity, grid
    )
    score = torch.sigmoid(heatmap_logits).amax(1).flatten(1)  # [B, X·Y]
    at_gt = torch.gather(score, 1, flat).masked_fill(~inside, float("nan"))
    away = score.masked_fill(target.amax(1).flatten(1) >= 0.1, 0.0).amax(1)
    return {"score_at_gt": at_gt, "background_peak": away}


def _top_mode_ade(trajs: torch.Tensor, probs: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """ADE of the most probable mode (minADE_1, `agents.metrics`) of every future with a valid step.

    Args:
        trajs: `[..., K, T, >=2]` predicted poses; probs `[..., K]`; truth `[..., T, >=2]`; valid `[..., T]` bool.

    Returns:
        `[M]` one value per future that has a valid step (empty if none).
    """
    if not bool(valid.any()):
        return torch.zeros(0)
    fm = forecast_metrics(trajs[..., :2], probs, truth[..., :2], valid, ks=(1,))
    return fm["minADE_1"].value[fm["minADE_1"].valid]


def _rollout_on_off(model: DriveWorldModel, scene: SceneState, plans: torch.Tensor) -> tuple[Prediction, Prediction]:
    """The rollout of `plans` `[B, N, T, 3]` with plan conditioning on, and switched off (the ablation)."""
    pred = model.rollout(scene, plans)
    model.plan_conditioning = False
    try:
        return pred, model.rollout(scene, plans)
    finally:
        model.plan_conditioning = model.config.plan_conditioning


def _bev_iou(pred: torch.Tensor, gt: torch.Tensor) -> tuple[float, float]:
    inter = float((pred & gt).sum())
    union = float((pred | gt).sum())
    return inter, union


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
def evaluate_open_loop(model: DriveWorldModel, dataset: NuScenesWorldDataset, config: OpenLoopConfig | None = None):
    """Run the evaluation. Returns (results dict, figure samples list of dicts for the report)."""
    cfg = config or OpenLoopConfig()
    model.eval()
    grid: GridSpec = model.grid
    label_grid = GridSpec.occ3d()
    t_steps = model.config.horizon
    n = len(dataset) if cfg.max_samples <= 0 else min(cfg.max_samples, len(dataset))
    if n == 0:
        raise ValueError(f"split {dataset.split!r} of {dataset.version} has no usable keyframes")
    eval_grid = label_grid if cfg.label_grid else grid
    ignore = ego_mask(eval_grid)
    occ = {
        k: OccupancyMetrics(t_steps, HORIZON_TIMES[:t_steps])
        for k in ("model", "copy_last_own", "copy_last_gt", "plan_off")
    }
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
        occ["model"].update(sem_model, gt_sem, mask=mask, ignore=ignore)
        occ["plan_off"].update(sem_off, gt_sem, mask=mask, ignore=ignore)
        occ["copy_last_own"].update(sem_now[:, None].repeat(rep), gt_sem, mask=mask, ignore=ignore)
        occ["copy_last_gt"].update(gt_now[:, None].repeat(rep), gt_sem, mask=mask, ignore=ignore)
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
                branch[name]["ade_gt_tokens"].append(_top_mode_ade(trajs, probs, tg.branch_agent_future, vb_gt))
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
                inter, union = _bev_iou(hit[bv], b_occ[bv])
                branch[name]["inter"] += inter
                branch[name]["union"] += union
                inter, union = _bev_iou(hit[bv] & dependent[bv], b_occ[bv] & dependent[bv])
                branch[name]["inter_dep"] += inter
                branch[name]["union_dep"] += union
                branch[name]["count"] += int(bv.sum())
                # agents: matched detections' top-1 mode vs branch truth
                mm = m[:, None].expand(-1, kb, -1).reshape(b * kb, -1)
                pt = _gather_agents(trajs.reshape(b * kb, *trajs.shape[2:]), mm)
                pp = _gather_agents(probs.reshape(b * kb, *probs.shape[2:]), mm)
                vb = (tg.branch_agent_valid & bv[:, :, None, None]).reshape(b * kb, -1, t_steps) & (mm >= 0)[..., None]
                gtb = tg.branch_agent_future.reshape(b * kb, -1, t_steps, 3)
                branch[name]["ade"].append(_top_mode_ade(pt, pp, gtb, vb))
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
    results = _summarize(acc, occ, branch, cfg, n, eval_grid, t_steps)
    return results, figures


def _summarize(acc: _Accumulator, occ, branch, cfg: OpenLoopConfig, n: int, eval_grid: GridSpec, t_steps: int) -> dict:
    gt_plan, boxes, bvalid = acc.cat("gt_plan"), acc.cat("boxes"), acc.cat("boxes_valid")
    planning = {
        name: open_loop_metrics(acc.cat(key), gt_plan, boxes, bvalid).to_dict()
        for name, key in (("model", "plan_model"), ("ego_status_mlp", "plan_status"), ("constant_velocity", "plan_cv"))
    }
    occupancy = {k: v.serialize() for k, v in occ.items()}
    for v in occupancy.values():
        v.pop("confusion", None)
    gt = acc.cat("agent_gt")
    k_modes = acc.cat("agent_prob").shape[-1]
    agents = {}
    for name, pk, probk, vk in (
        ("model", "agent_pred", "agent_prob", "agent_valid_matched"),
        ("plan_off", "agent_pred_off", "agent_prob_off", "agent_valid_matched"),
        ("cv_own_detections", "agent_cv", None, "agent_valid_matched"),
        ("cv_gt_privileged", "agent_cv_gt", None, "agent_valid_all"),
    ):
        pred = acc.cat(pk)
        probs = acc.cat(probk) if probk else torch.ones(pred.shape[:3])
        valid = acc.cat(vk)
        agents[name] = aggregate(forecast_metrics(pred, probs, gt, valid, ks=(1, 5))) if bool(valid.any()) else {}
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
    return {
        "num_samples": n,
        "traffic_light": light_metrics(acc.cat("light_pred"), acc.cat("light_true")),
        "eval_config": asdict(cfg),
        "occupancy_grid": eval_grid.to_dict(),
        "navigation": "command derived from the logged future (LEAKS the future)"
        if bool(acc.cat("route_is_command").any())
        else "stored route polyline",
        "planning": planning,
        "occupancy": occupancy,
        "agents": agents,
        "plan_sensitivity": sens,
        "horizon_times": list(HORIZON_TIMES[:t_steps]),
    }


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def report_tables(results: dict) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, header, rows, note) tables shared by the Markdown and HTML reports."""
    tables = []
    hz = ("1.0", "2.0", "3.0")
    rows = []
    for name, r in results["planning"].items():
        for conv, label in (("avg", "average up to t"), ("at", "at t")):
            rows.append(
                [name, label]
                + [_fmt(r["l2"][conv].get(h)) for h in hz]
                + [
                    _fmt(100 * r["collision"][conv][h] if r["collision"][conv].get(h) is not None else None, 2)
                    for h in hz
                ]
            )
    any_plan = next(iter(results["planning"].values()))
    tables.append(
        (
            "Planning (open loop)",
            ["plan", "convention", "L2 1s [m]", "L2 2s", "L2 3s", "coll. 1s [%]", "coll. 2s", "coll. 3s"],
            rows,
            f"{any_plan['num_samples']} samples; {any_plan['num_excluded']} whose logged future collides are excluded "
            f"from the collision rates. Navigation: {results['navigation']}.",
        )
    )
    lm = results.get("traffic_light")
    if lm is not None:
        tables.append(
            (
                "Traffic-light head (light governing the ego's route)",
                ["samples", "accuracy", "red recall", "red precision", "green recall", "none recall"],
                [
                    [
                        str(lm["samples"]),
                        _fmt(lm["accuracy"]),
                        _fmt(lm["red_recall"]),
                        _fmt(lm["red_precision"]),
                        _fmt(lm["green_recall"]),
                        _fmt(lm["none_recall"]),
                    ]
                ],
                f"Confusion [true red, green, none] × [predicted]: {lm['confusion_true_by_pred']}. The planner's "
                "red-light gate acts on the predicted red probability.",
            )
        )
    times = results["horizon_times"]
    rows = []
    for name, r in results["occupancy"].items():
        per = r["per_horizon"]
        label = name + (" (privileged)" if name == "copy_last_gt" else "")
        rows.append([label, "IoU"] + [_fmt(p["geometry_iou"]) for p in per])
        rows.append([label, "mIoU"] + [_fmt(p["miou"]) for p in per])
    grid = results["occupancy_grid"]
    tables.append(
        (
            "Occupancy per horizon (camera mask, ego excluded)",
            ["prediction", "metric"] + [f"{t:.1f} s" for t in times],
            rows,
            "IoU = geometry (occupied vs free); mIoU over classes present in the ground truth; "
            f"grid voxel {grid['voxel']} m.",
        )
    )
    per_class = results["occupancy"]["model"]["overall"]["per_class_iou"]
    tables.append(
        (
            "Occupancy per class (model, all horizons)",
            ["class", "IoU"],
            [[c, _fmt(v)] for c, v in per_class.items()],
            "– = class absent from the ground truth.",
        )
    )
    rows = []
    for name in ("model", "plan_off", "cv_own_detections", "cv_gt_privileged"):
        r = results["agents"].get(name, {})
        rows.append(
            [name + (" (privileged)" if "gt" in name else "")]
            + [_fmt(r.get(k)) for k in ("minADE_1", "minFDE_1", "MR_1", "minADE_5", "minFDE_5", "MR_5")]
            + [_fmt(int(r["num_agents"]) if "num_agents" in r else None)]
        )
    mt = results["agents"]["matching"]
    tables.append(
        (
            "Agents (under the logged plan)",
            ["prediction", "minADE1", "minFDE1", "MR1", "minADE5", "minFDE5", "MR5", "agents"],
            rows,
            f"Matching: {mt['method']}; recall {_fmt(mt['recall'])} ({mt['matched']}/{mt['gt_agents']}). {mt['note']}. "
            f"Detection heatmap: median score {_fmt(mt.get('score_at_gt_centres_median'))} at ground-truth centres, "
            f"median strongest peak away from any agent {_fmt(mt.get('strongest_background_peak_median'))}; velocity "
            f"error of matched detections {_fmt(mt.get('velocity_error_matched'))} m/s (every forecast built on a "
            "detection, constant velocity included, starts from it).",
        )
    )
    rows = [
        [
            name,
            _fmt(r["bev_obstacle_iou"]),
            _fmt(r.get("bev_obstacle_iou_plan_dependent")),
            _fmt(r["agent_minADE_1"]),
            _fmt(r.get("agent_minADE_1_gt_tokens")),
            str(r["num_branches"]),
            str(r["num_agent_futures"]),
            str(r.get("num_agent_futures_gt_tokens", "–")),
        ]
        for name, r in results["plan_sensitivity"].items()
    ]
    tables.append(
        (
            "Plan sensitivity on counterfactual branches",
            [
                "prediction",
                "BEV obstacle IoU",
                "IoU on plan-dependent cells",
                "agent minADE1 [m]",
                "agent minADE1, GT agent tokens [m] (privileged)",
                "branches",
                "agent futures",
                "agent futures (GT tokens)",
            ],
            rows,
            "branch_plan: rollout under each branch's plan vs that branch's truth; logged_plan: the rollout under the "
            "logged plan scored against the branch truth; plan_off: plan conditioning switched off. Plan-dependent "
            "cells: where the truths of a sample's branches disagree (a plan-agnostic prediction cannot be right "
            "for every branch there). Agent minADE1 "
            "scores the top mode of matched detections; the privileged column feeds the ground-truth agents at t0 as "
            "tokens (velocity still the model's own estimate), isolating the plan-conditioned dynamics from detection.",
        )
    )
    return tables


def write_open_loop_report(
    results: dict, figures: list[dict], grid: GridSpec, out: str | os.PathLike
) -> dict[str, Path]:
    """Write `results.json`, `report.md`, `report.html` and the figures into `out`."""
    from occupancy.atomic import write_text_atomic

    from .figures import bev_comparison, camera_overlay
    from .report import html_page, html_table, md_table, write_results

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for i, sample in enumerate(figures):
        images.append(bev_comparison(sample, grid, out / "figures" / f"bev_{i}.png"))
        images.append(camera_overlay(sample, out / "figures" / f"cameras_{i}.png"))
    paths = {"results": write_results(out / "results.json", results)}
    tables = report_tables(results)
    meta = results.get("meta", {})
    head = (
        f"checkpoint `{results['config'].get('ckpt')}`, dataset `{results['config'].get('version')}` split "
        f"`{results['config'].get('split')}`, {results['num_samples']} samples, git `{meta.get('git_commit')}`."
    )
    md = ["# Open-loop evaluation", "", head, ""]
    body = [f"<p>{html.escape(head)}</p>"]
    for title, header, rows, note in tables:
        md += [f"## {title}", "", md_table(header, rows), "", note, ""]
        body.append(f"<h2>{html.escape(title)}</h2>{html_table(header, rows)}<p class='note'>{html.escape(note)}</p>")
    if images:
        md += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in images]
        body.append("<h2>Figures</h2>" + "".join(f"<p><img src='figures/{p.name}' alt='{p.stem}'></p>" for p in images))
    paths["md"] = write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    paths["html"] = write_text_atomic(out / "report.html", html_page("Open-loop evaluation", "".join(body)))
    return paths
