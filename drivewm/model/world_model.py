"""`DriveWorldModel`: the ego-plan-conditioned world model (implements `planner.WorldModel`).

Compute layout (DESIGN.md §8, the planner budget): everything that does not depend on the plan is
computed once per scene in `encode` — the camera → BEV lifting, temporal fusion, detections, and
the *scene dynamics* (a small recurrent conv net unrolled over the T future steps on the dense
`[B, C, X, Y]` latent). `rollout` then adds only cheap plan-dependent parts, batched over N:

* agents: an MLP over A × N (agent token, plan embedding, the plan's poses in the agent's frame)
  that corrects each agent's K-mode future (agents react to the ego);
* occupancy: a residual logit at coarse resolution (X/f × Y/f) from the rasterised ego footprint
  and the scene's coarse features, modulated by the plan embedding (FiLM), upsampled and added to
  the scene's obstacle logits and (as "occupied vs free") to the semantic logits.

`rollout(..., plan_conditioning=False)` (or `ModelConfig.plan_conditioning=False`, the default of
every call) zeroes the whole plan pathway: the ablation, asked for per call, never by changing the
model. The
pathway's output layers start at zero, and training switches it off for a random share of the scenes
(`plan_dropout`), so the plan-agnostic part is itself a trained predictor and the pathway learns only
what the plan adds — the ablation is a fair baseline, not a crippled one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents import AgentStates
from agents.checks import check_tensor
from agents.se2 import se2_relative
from drivewm.data.types import Batch, Targets
from occupancy.classes import NUM_CLASSES, Occ3DClass
from planner.contracts import LightBelief, LightState, Observation, Prediction, SceneState, validate_plans
from planner.timebase import STEP_SECONDS

from .bev import ImageBackbone, ResBlock, SimpleBEVLifter, conv_bn, warp_bev
from .config import ModelConfig
from .heads import (
    BOX_CHANNELS,
    NUM_AGENT_CLASSES,
    VELOCITY_CHANNELS,
    bev_cells,
    decode_detections,
    decode_trajectories,
    ego_footprint_raster,
    plan_features,
)

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass
class RolloutOutput:
    """Raw (logit) outputs of one rollout, used by the losses; `Prediction` is derived from it.

    Attributes:
        obstacle_logits: `[B, N, T, X, Y]`.
        residual: `[B, N, T, X, Y]` the plan-conditioned part of the obstacle logits (upsampled).
        agent_trajs: `[B, N, A, K, T, 3]` ego frame; agent_mode_logits `[B, N, A, K]`.
    """

    obstacle_logits: Tensor
    residual: Tensor
    agent_trajs: Tensor
    agent_mode_logits: Tensor


@dataclass(frozen=True)
class DriveSceneFeatures:
    """`DriveWorldModel`'s own per-scene tensors (`SceneState.features`), computed once in `encode`.

    Attributes:
        heatmap: `[B, Ca, X, Y]` agent-centre logits per agent class.
        box: `[B, 10, X, Y]` box regression (offset, z, log size, yaw, velocity).
        drivable_logit: `[B, X, Y]`.
        light_logits: `[B, 3]` (red, green, none) logits.
        light_distance: `[B]` regressed distance [m] to the stop line (finite even when "none").
        ego_plan_logits: `[B, Ke]` scores of the ego-head plans (`SceneState.ego_plans`).
        ego_status_plan: `[B, T, 3]` the ego-status baseline's plan.
        dyn: `[B, T, C, X, Y]` plan-agnostic scene dynamics.
        obstacle_logits: `[B, T, X, Y]` plan-agnostic obstacle logits.
        coarse: `[B, T, Xc, Yc, Cr]` coarse features of the occupancy residual.
        agent_tokens: `[B, A, D]`; agent_pose `[B, A, 3]`; agent_speed `[B, A]`.
        det_scores: `[B, A]` detection scores of `SceneState.agents`.
    """

    heatmap: Tensor
    box: Tensor
    drivable_logit: Tensor
    light_logits: Tensor
    light_distance: Tensor
    ego_plan_logits: Tensor
    ego_status_plan: Tensor
    dyn: Tensor
    obstacle_logits: Tensor
    coarse: Tensor
    agent_tokens: Tensor
    agent_pose: Tensor
    agent_speed: Tensor
    det_scores: Tensor

    def validate(self, batch_size: int) -> DriveSceneFeatures:
        """Check that every field is a tensor with the scene batch `batch_size` first."""
        for name, value in self.__dict__.items():
            check_tensor(f"DriveSceneFeatures.{name}", value, (batch_size, ...), finite=False)
        return self


def scene_features(scene: SceneState) -> DriveSceneFeatures:
    """The `DriveSceneFeatures` of a scene state `DriveWorldModel.encode` made; `ValueError` otherwise."""
    if not isinstance(scene.features, DriveSceneFeatures):
        raise ValueError(
            f"SceneState.features is {type(scene.features).__name__}, not DriveSceneFeatures: "
            "encode the scene with DriveWorldModel.encode"
        )
    return scene.features


def check_observation(obs: Observation, num_cameras: int | None = None) -> None:
    """Like `Observation.validate` but accepts float images in [0, 1] (training augmentation) and
    names the field on any problem (NaN/inf included)."""
    if not isinstance(obs.images, Tensor):
        raise ValueError(f"Observation.images must be a torch.Tensor, got {type(obs.images).__name__}")
    if obs.images.dtype != torch.uint8:
        check_tensor("Observation.images", obs.images, (None, num_cameras, 3, None, None), None)
        if not obs.images.is_floating_point():
            raise ValueError(f"Observation.images must be uint8 or float, got {obs.images.dtype}")
        obs = Observation(**{**obs.__dict__, "images": torch.zeros(obs.images.shape, dtype=torch.uint8)})
    check_tensor("Observation.images", obs.images, (None, num_cameras, 3, None, None), torch.uint8)
    obs.validate()


class DriveWorldModel(nn.Module):
    """Camera BEV world model conditioned on ego plans. See the module docstring."""

    name = "drivewm"

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = config or ModelConfig()
        self.config = cfg
        self.grid = cfg.grid
        gz = self.grid.shape[2]
        c, d, t = cfg.bev_dim, cfg.plan_dim, cfg.horizon
        self.register_buffer("img_mean", torch.tensor(IMAGE_MEAN).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(IMAGE_STD).view(1, 1, 3, 1, 1), persistent=False)
        # scene encoder
        self.backbone = ImageBackbone(cfg.backbone_channels, cfg.feat_dim)
        self.lifter = SimpleBEVLifter(self.grid, cfg.feat_dim, c)
        self.status_dim = (cfg.history + 1) * 3 + 1
        self.route_dim = cfg.route_points * 2 + 1
        self.status_film = nn.Sequential(
            nn.Linear(self.status_dim + self.route_dim, 64), nn.ReLU(), nn.Linear(64, 2 * c)
        )
        self.bev_in = conv_bn(c + 1, c)  # + route raster
        self.temporal_fuse = conv_bn(2 * c, c)
        self.bev_encoder = nn.Sequential(*[ResBlock(c, c) for _ in range(cfg.bev_blocks)])
        # t0 heads
        self.det_trunk = conv_bn(c, c)
        self.heatmap = nn.Conv2d(c, NUM_AGENT_CLASSES, 1)
        nn.init.constant_(self.heatmap.bias, -2.19)
        self.box = nn.Conv2d(c, BOX_CHANNELS, 1)
        self.drivable = nn.Conv2d(c, 1, 1)
        self.light = nn.Sequential(nn.Linear(cfg.feat_dim * 2 + 2 * c, 64), nn.ReLU(), nn.Linear(64, 4))
        self.ego_head = nn.Sequential(
            nn.Linear(2 * c + self.status_dim + self.route_dim, 128),
            nn.ReLU(),
            nn.Linear(128, cfg.ego_modes * (t * 3 + 1)),
        )
        # ego-status baseline (sees only odometry and the route; trained jointly, never feeds the model)
        self.ego_status_head = nn.Sequential(
            nn.Linear(self.status_dim + self.route_dim, 64), nn.ReLU(), nn.Linear(64, t * 3)
        )
        # plan-agnostic scene dynamics, once per scene
        self.step_embed = nn.Parameter(torch.zeros(t, c))
        self.dynamics = ResBlock(c, c)
        self.occ_head = nn.Conv2d(c, NUM_CLASSES * gz, 1)
        self.obstacle_head = nn.Conv2d(c, 1, 1)
        self.coarse_proj = nn.Conv2d(c, cfg.residual_dim, 1)
        # agents
        self.agent_in = nn.Sequential(nn.Linear(c + 8 + NUM_AGENT_CLASSES, d), nn.ReLU(), nn.Linear(d, d))
        self.agent_base = nn.Linear(d, cfg.num_modes * (t * 3 + 1))
        # plan pathway (the only part that sees the plans)
        self.plan_enc = nn.Sequential(nn.Linear(t * 4, d), nn.ReLU(), nn.Linear(d, d))
        self.inter_agent = nn.Linear(d, d)
        self.inter_plan = nn.Linear(d, d)
        self.inter_geom = nn.Linear(t * 4, d)
        self.inter_out = nn.Sequential(nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, cfg.num_modes * (t * 3 + 1)))
        self.res_foot = nn.Linear(2, cfg.residual_dim)
        self.res_film = nn.Linear(d + 4, 2 * cfg.residual_dim)
        self.res_out = nn.Linear(cfg.residual_dim, 1)
        # trajectory heads start near their constant-velocity prior, modes spread (so winner-takes-all trains them all)
        _init_mode_head(self.agent_base, cfg.num_modes, t)
        _init_mode_head(self.ego_head[-1], cfg.ego_modes, t)
        # the ego-status baseline and the plan pathway start as exact no-ops
        for head in (self.ego_status_head[-1], self.inter_out[-1], self.res_out):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        coarse = self.grid.coarsen(cfg.coarse_factor, 1)
        self.register_buffer("coarse_cells", coarse.bev_centers(), persistent=False)
        self.coarse_cell = coarse.voxel[0]

    # ------------------------------------------------------------------ encode
    def _status(self, obs: Observation) -> Tensor:
        """`[B, status_dim + route_dim]`: ego history, speed and the resampled route."""
        hist = obs.ego_history / torch.tensor([10.0, 10.0, 1.0], device=obs.ego_history.device)
        r = self.config.route_points
        route, valid = obs.route, obs.route_valid
        if route.shape[1] == 0:
            pts = torch.zeros(route.shape[0], r, 2, device=route.device)
            frac = torch.zeros(route.shape[0], 1, device=route.device)
        else:
            idx = torch.linspace(0, route.shape[1] - 1, r, device=route.device).round().long()
            pts = route[:, idx] * valid[:, idx, None] / 30.0
            frac = valid.float().mean(1, keepdim=True)
        return torch.cat([hist.flatten(1), obs.speed[:, None] / 10.0, pts.flatten(1), frac], dim=1)

    def _route_raster(self, obs: Observation) -> Tensor:
        """`[B, 1, X, Y]` cells crossed by the route polyline (points densified to half a cell)."""
        b = obs.route.shape[0]
        gx, gy = self.grid.bev_shape
        raster = torch.zeros(b, gx * gy, device=obs.route.device)
        if obs.route.shape[1] >= 2:
            p0, p1 = obs.route[:, :-1], obs.route[:, 1:]
            seg_ok = obs.route_valid[:, :-1] & obs.route_valid[:, 1:]
            s = torch.linspace(0, 1, 8, device=obs.route.device)
            pts = p0[:, :, None] + (p1 - p0)[:, :, None] * s[:, None]  # [B, R-1, 8, 2]
            ok = seg_ok[:, :, None].expand(-1, -1, 8) & self.grid.contains(pts)
            ij = self.grid.world_to_voxel(pts)
            flat = (ij[..., 0] * gy + ij[..., 1]).clamp(0, gx * gy - 1)
            raster.scatter_reduce_(1, flat.flatten(1), ok.flatten(1).float(), "amax")
        return raster.view(b, 1, gx, gy)

    def encode_latent(self, obs: Observation, prev: SceneState | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Cameras → fused BEV latent.

        Returns:
            latent `[B, C, X, Y]`, camera features `[B, V, C', h', w']`, ego status vector `[B, S]`.
        """
        cfg = self.config
        check_observation(obs)
        h, w = obs.images.shape[-2:]
        if (h, w) != tuple(cfg.image_size):
            raise ValueError(f"Observation.images has size {(h, w)}, the model expects {tuple(cfg.image_size)}")
        b, v = obs.images.shape[:2]
        img = obs.images.float() / 255.0 if obs.images.dtype == torch.uint8 else obs.images
        img = (img - self.img_mean) / self.img_std
        feats = self.backbone(img.flatten(0, 1))
        feats = feats.view(b, v, *feats.shape[1:])  # [B, V, C, h', w']
        bev = self.lifter(feats, obs.intrinsics, obs.cam_to_ego, (h, w))
        bev = self.bev_in(torch.cat([bev, self._route_raster(obs)], dim=1))
        status = self._status(obs)
        gamma, beta = self.status_film(status).chunk(2, dim=1)
        bev = bev * (1 + gamma[..., None, None]) + beta[..., None, None]
        prev_latent = torch.zeros_like(bev)
        if cfg.temporal and prev is not None and prev.latent is not None:
            if prev.latent.shape != bev.shape:
                raise ValueError(f"SceneState.latent has shape {list(prev.latent.shape)}, expected {list(bev.shape)}")
            prev_latent = warp_bev(prev.latent, prev.ego_pose, obs.ego_pose, self.grid)
        latent = self.bev_encoder(self.temporal_fuse(torch.cat([bev, prev_latent], dim=1)))
        return latent, feats, status

    def encode(self, obs: Observation, prev: SceneState | None = None, agents: AgentStates | None = None) -> SceneState:
        """Encode one observation (fusing `prev`, warped by ego motion) into a `SceneState`.

        Args:
            obs: batched observation (images uint8 `[B, V, 3, h, w]`, or float in [0, 1]).
            prev: previous scene state of the same scenes (its `latent` and `ego_pose` are used).
            agents: optional `[B, A]` agent states to build the agent tokens from (training uses the
                ground-truth boxes, teacher forcing); default the model's own detections. Their
                velocity is replaced by the model's own estimate at their cells, as detections carry
                at run time: the trajectory heads never learn to lean on a velocity they will not get.

        Returns:
            `SceneState` with `latent [B, C, X, Y]`, the light head's belief, the ego head's plans
            `ego_plans [B, Ke, T, 3]` and `features` (`DriveSceneFeatures`).
        """
        cfg = self.config
        latent, feats, status = self.encode_latent(obs, prev)
        b = latent.shape[0]
        trunk = self.det_trunk(latent)
        heat, box = self.heatmap(trunk), self.box(trunk)
        detections, scores = decode_detections(heat, box, self.grid, cfg.max_agents, cfg.det_threshold)
        agents = detections if agents is None else self._with_estimated_velocity(agents, box)
        pooled = torch.cat([latent.mean(dim=(2, 3)), latent.amax(dim=(2, 3))], dim=1)  # [B, 2C]
        cam_pooled = feats.mean(dim=(3, 4))  # [B, V, C]
        light = self.light(torch.cat([cam_pooled[:, 0], cam_pooled.mean(1), pooled], dim=1))
        ego_out = self.ego_head(torch.cat([pooled, status], dim=1)).view(b, cfg.ego_modes, -1)
        zero_pose = torch.zeros(b, 3, device=latent.device)
        ego_plans = decode_trajectories(ego_out[..., :-1], zero_pose, obs.speed, cfg.horizon, STEP_SECONDS)
        ego_status = decode_trajectories(
            self.ego_status_head(status)[:, None], zero_pose, obs.speed, cfg.horizon, STEP_SECONDS
        )[:, 0]

        # plan-agnostic scene dynamics: once per scene, T steps on the dense latent
        dyn, x = [], latent
        for t in range(cfg.horizon):
            x = self.dynamics(x + self.step_embed[t][None, :, None, None])
            dyn.append(x)
        dyn_t = torch.stack(dyn, dim=1)  # [B, T, C, X, Y]
        flat = dyn_t.flatten(0, 1)
        obstacle = self.obstacle_head(flat).view(b, cfg.horizon, *self.grid.bev_shape)
        coarse = self.coarse_proj(F.avg_pool2d(flat, cfg.coarse_factor))  # [B·T, Cr, Xc, Yc]
        coarse = coarse.view(b, cfg.horizon, *coarse.shape[1:]).permute(0, 1, 3, 4, 2)

        tokens, pose = self._agent_tokens(latent, agents)
        features = DriveSceneFeatures(
            heatmap=heat,
            box=box,
            drivable_logit=self.drivable(latent)[:, 0],
            light_logits=light[:, :3],
            light_distance=F.softplus(light[:, 3]) * 10.0,
            ego_plan_logits=ego_out[..., -1],
            ego_status_plan=ego_status,
            dyn=dyn_t,
            obstacle_logits=obstacle,
            coarse=coarse,
            agent_tokens=tokens,
            agent_pose=pose,
            agent_speed=agents.speed,
            det_scores=scores,
        )
        return SceneState.from_observation(
            obs, agents, latent, light=_light_belief(features), ego_plans=ego_plans, features=features
        )

    def _with_estimated_velocity(self, agents: AgentStates, box: Tensor) -> AgentStates:
        """`agents` with velocity `[B, A, 2]` (and speed) read from the box head `[B, 10, X, Y]` at
        their centre cells (no gradient: the box loss trains it)."""
        _, flat = bev_cells(self.grid, agents.xy)  # [B, A]
        vel_map = box.detach().flatten(2)[:, VELOCITY_CHANNELS]  # [B, 2, X·Y]
        vel = torch.gather(vel_map, 2, flat[:, None].expand(-1, 2, -1)).transpose(1, 2)
        vel = vel * agents.valid[..., None]
        speed = (vel * torch.stack([torch.cos(agents.yaw), torch.sin(agents.yaw)], -1)).sum(-1)
        return replace(agents, velocity=vel, speed=speed)

    def _agent_tokens(self, latent: Tensor, agents: AgentStates) -> tuple[Tensor, Tensor]:
        """Agent tokens `[B, A, D]` (BEV feature at the centre + box attributes) and poses `[B, A, 3]`."""
        lo, hi = self.grid.lower, self.grid.upper
        xy = agents.xy
        nx = (xy[..., 0] - lo[0]) / (hi[0] - lo[0]) * 2 - 1
        ny = (xy[..., 1] - lo[1]) / (hi[1] - lo[1]) * 2 - 1
        feat = F.grid_sample(latent, torch.stack([ny, nx], -1)[:, :, None], align_corners=False)[..., 0]
        attrs = torch.cat(
            [
                xy / 40.0,
                torch.cos(agents.yaw)[..., None],
                torch.sin(agents.yaw)[..., None],
                torch.log(agents.size.clamp(min=0.05)),
                agents.speed[..., None] / 10.0,
                F.one_hot(agents.cls.clamp(0, NUM_AGENT_CLASSES - 1), NUM_AGENT_CLASSES).float(),
            ],
            dim=-1,
        )
        tokens = self.agent_in(torch.cat([feat.transpose(1, 2), attrs], dim=-1)) * agents.valid[..., None]
        pose = torch.cat([xy, agents.yaw[..., None]], dim=-1)
        return tokens, pose

    # ------------------------------------------------------------------ rollout
    def rollout_raw(
        self,
        scene: SceneState,
        plans: Tensor,
        plan_gate: Tensor | None = None,
        plan_conditioning: bool | None = None,
    ) -> RolloutOutput:
        """The plan-dependent part, batched over N; see the module docstring.

        Args:
            scene: from `encode`.
            plans: `[B, N, T, 3]` rear-axle (x, y, yaw) in the current ego frame.
            plan_gate: optional `[B]` float in [0, 1] scaling the plan pathway per scene (training's
                plan dropout: 0 trains the plan-agnostic part alone, i.e. the ablation).
            plan_conditioning: False switches the plan pathway off for this call (the ablation);
                None takes `ModelConfig.plan_conditioning`.
        """
        cfg = self.config
        b = scene.batch_size
        validate_plans(plans, b)
        if plans.shape[2] != cfg.horizon:
            raise ValueError(f"plans has {plans.shape[2]} steps, the model predicts T = {cfg.horizon}")
        n, t = plans.shape[1], cfg.horizon
        ex = scene_features(scene)
        tokens, pose, speed = ex.agent_tokens, ex.agent_pose, ex.agent_speed
        a, k = tokens.shape[1], cfg.num_modes
        base = self.agent_base(tokens)[:, None]  # [B, 1, A, K·(3T+1)]
        gx, gy = self.grid.bev_shape
        conditioned = self.config.plan_conditioning if plan_conditioning is None else plan_conditioning
        if conditioned:
            pf = plan_features(plans)  # [B, N, T, 4]
            emb = self.plan_enc(pf.flatten(2))  # [B, N, D]
            # agents x plans: the plan's poses seen from each agent
            rel = se2_relative(pose[:, None, :, None, :], plans[:, :, None])  # [B, N, A, T, 3]
            geom = self.inter_geom(plan_features(rel).flatten(3))  # [B, N, A, D]
            h = self.inter_agent(tokens)[:, None] + self.inter_plan(emb)[:, :, None] + geom
            correction = self.inter_out(h)  # [B, N, A, K·(3T+1)]
            if plan_gate is not None:
                correction = correction * plan_gate.to(plans.dtype)[:, None, None, None]
            agent_out = base + correction
            # occupancy: coarse residual from the ego footprint, FiLM by the plan embedding
            foot = ego_footprint_raster(plans, self.coarse_cells, self.coarse_cell)  # [B, N, T, Xc, Yc, 2]
            film = self.res_film(torch.cat([emb[:, :, None].expand(-1, -1, t, -1), pf], dim=-1))  # [B, N, T, 2Cr]
            gamma, beta = film[..., None, None, :].chunk(2, dim=-1)
            hid = torch.relu((ex.coarse[:, None] + self.res_foot(foot)) * (1 + gamma) + beta)
            res = self.res_out(hid)[..., 0]  # [B, N, T, Xc, Yc]
            xc, yc = res.shape[-2:]
            residual = F.interpolate(res.reshape(-1, 1, xc, yc), size=(gx, gy), mode="bilinear", align_corners=False)
            residual = residual.view(b, n, t, gx, gy)
            if plan_gate is not None:
                residual = residual * plan_gate.to(plans.dtype)[:, None, None, None, None]
        else:
            agent_out = base.expand(b, n, a, -1)
            residual = torch.zeros(b, n, t, gx, gy, device=plans.device, dtype=plans.dtype)
        agent_out = agent_out.view(b, n, a, k, t * 3 + 1)
        trajs = decode_trajectories(agent_out[..., :-1], pose[:, None], speed[:, None], t, STEP_SECONDS)
        obstacle = ex.obstacle_logits[:, None] + residual
        return RolloutOutput(obstacle, residual, trajs, agent_out[..., -1])

    def semantics_logits(self, scene: SceneState, residual: Tensor) -> Tensor:
        """Occ3D class logits `[B, T, C=18, X, Y, Z]` under a plan whose obstacle residual is
        `[B, T, X, Y]`: the residual raises "occupied" against "free" in every voxel of the column."""
        b, t = residual.shape[:2]
        gx, gy, gz = self.grid.shape
        logits = self.occ_head(scene_features(scene).dyn.flatten(0, 1)).view(b, t, NUM_CLASSES, gz, gx, gy)
        logits = logits.permute(0, 1, 2, 4, 5, 3)  # [B, T, C, X, Y, Z]
        free = logits[:, :, Occ3DClass.FREE] - residual[..., None]
        return torch.cat(
            [logits[:, :, : Occ3DClass.FREE], free[:, :, None], logits[:, :, Occ3DClass.FREE + 1 :]], dim=2
        )

    def semantics_now_logits(self, scene: SceneState) -> Tensor:
        """The model's estimate of the current occupancy, `[B, C=18, X, Y, Z]` logits (t = 0; the
        "copy-last of its own t = 0 estimate" baseline repeats it over the horizon)."""
        b = scene.batch_size
        gx, gy, gz = self.grid.shape
        logits = self.occ_head(scene.latent).view(b, NUM_CLASSES, gz, gx, gy)
        return logits.permute(0, 1, 3, 4, 2)

    def rollout(self, scene: SceneState, plans: Tensor, plan_conditioning: bool | None = None) -> Prediction:
        """`planner.WorldModel.rollout`: one batched pass over the N plans `[B, N, T, 3]`;
        `plan_conditioning=False` gives the plan-agnostic prediction (the ablation) for this call."""
        out = self.rollout_raw(scene, plans, plan_conditioning=plan_conditioning)
        ex = scene_features(scene)
        light = scene.light if scene.light is not None else _light_belief(ex)

        def decode_semantics(plan_index: Tensor) -> Tensor:
            """`[B]` plan index → `[B, T, X, Y, Z]` uint8 Occ3D labels under that plan."""
            check_tensor("plan_index", plan_index, (scene.batch_size,), torch.int64)
            res = out.residual[torch.arange(scene.batch_size, device=plan_index.device), plan_index]
            return self.semantics_logits(scene, res).argmax(dim=2).to(torch.uint8)

        return Prediction(
            grid=self.grid,
            obstacle_prob=torch.sigmoid(out.obstacle_logits),
            drivable_prob=torch.sigmoid(ex.drivable_logit),
            light_probs=light.probs,
            light_distance=light.distance,
            agent_trajs=out.agent_trajs,
            agent_mode_probs=torch.softmax(out.agent_mode_logits, dim=-1),
            agent_valid=scene.agents.valid,
            agent_size=scene.agents.size,
            agent_cls=scene.agents.cls,
            decode_semantics=decode_semantics,
            semantics_grid=self.grid,
        )

    # ------------------------------------------------------------------ training
    def forward_batch(self, batch: Batch, teacher_forcing: bool = True) -> tuple[SceneState, Tensor, RolloutOutput]:
        """Encode a dataset batch (previous keyframe first, truncated: no gradient through it) and
        roll out the logged plan (n = 0) and the counterfactual branch plans (n = 1..Kb) together.
        In training, the plan pathway of a random `config.plan_dropout` share of the scenes is
        switched off, so the plan-agnostic part is itself a trained predictor (the ablation) and the
        plan pathway learns only what the plan adds.

        Returns:
            (scene, plans `[B, 1+Kb, T, 3]`, rollout output).
        """
        f, tg = batch.features, batch.targets
        prev = None
        if self.config.temporal:
            with torch.no_grad():
                prev_latent = self.encode_latent(f.prev_observation())[0]
            prev_latent = prev_latent * f.prev_valid[:, None, None, None].to(prev_latent.dtype)
            prev = SceneState(
                agents=AgentStates.empty((f.speed.shape[0],), device=f.speed.device),
                speed=f.prev_speed,
                ego_pose=f.prev_ego_pose,
                route=f.prev_route,
                route_valid=f.prev_route_valid,
                timestamp=f.timestamp - STEP_SECONDS,
                latent=prev_latent,
            )
        scene = self.encode(f.observation(), prev, agents=targets_to_agents(tg) if teacher_forcing else None)
        plans = torch.cat([tg.ego_future[:, None], tg.branch_plans], dim=1)
        gate = None
        if self.training and self.config.plan_dropout > 0:
            gate = (torch.rand(plans.shape[0], device=plans.device) >= self.config.plan_dropout).float()
        return scene, plans, self.rollout_raw(scene, plans, plan_gate=gate)

    def compute_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Named losses (see `drivewm.model.losses`) and their weighted sum under "loss"."""
        from .losses import (
            LOSS_WEIGHTS,
            detection_losses,
            drivable_bev,
            masked_mean,
            obstacle_bev,
            occupancy_losses,
            wta_losses,
        )

        tg = batch.targets
        scene, _, out = self.forward_batch(batch)
        ex = scene_features(scene)
        out_l: dict[str, Tensor] = {}
        # occupancy under the logged plan
        mask = tg.occ_mask & tg.occ_valid[:, :, None, None, None]
        sem = self.semantics_logits(scene, out.residual[:, 0])
        out_l["occ_ce"], out_l["occ_geo"] = occupancy_losses(sem, tg.occ, mask)
        occ_bev, known = obstacle_bev(tg.occ, self.grid, tg.occ_mask)
        known = known & tg.occ_valid[:, :, None, None]
        bce = F.binary_cross_entropy_with_logits(
            out.obstacle_logits[:, 0],
            occ_bev.float(),
            pos_weight=torch.tensor(3.0, device=occ_bev.device),
            reduction="none",
        )
        out_l["obstacle"] = masked_mean(bce, known)
        now_ce, _ = occupancy_losses(
            self.semantics_now_logits(scene)[:, None], tg.occ_now[:, None], tg.occ_now_mask[:, None]
        )
        out_l["occ_now"] = now_ce
        # drivable area on every cell, the unseen ones under and around the ego included: it is a map
        # estimate the planner gates on exactly there (the occupancy terms keep the camera mask)
        drv, _ = drivable_bev(tg.occ_now)
        out_l["drivable"] = F.binary_cross_entropy_with_logits(ex.drivable_logit, drv.float())
        out_l["heatmap"], out_l["box"] = detection_losses(ex.heatmap, ex.box, tg, self.grid)
        out_l["traj"], out_l["mode"] = wta_losses(
            out.agent_trajs[:, 0],
            out.agent_mode_logits[:, 0],
            tg.agent_future,
            tg.agent_future_valid & tg.agent_valid[..., None],
        )
        out_l["ego"], out_l["ego_mode"] = wta_losses(
            scene.ego_plans, ex.ego_plan_logits, tg.ego_future, tg.ego_future_valid
        )
        out_l["ego_status"] = masked_mean(
            F.smooth_l1_loss(ex.ego_status_plan[..., :2], tg.ego_future[..., :2], reduction="none").sum(-1),
            tg.ego_future_valid,
        )
        # counterfactual consistency: branch k's rollout against branch k's future
        kb = tg.branch_plans.shape[1]
        zero = out.obstacle_logits.sum() * 0.0
        if kb > 0 and bool(tg.branch_valid.any()):
            b_occ, _ = obstacle_bev(tg.branch_occ, self.grid)  # [B, Kb, T, X, Y]
            bce = F.binary_cross_entropy_with_logits(
                out.obstacle_logits[:, 1:],
                b_occ.float(),
                pos_weight=torch.tensor(3.0, device=b_occ.device),
                reduction="none",
            )
            out_l["cf_obstacle"] = masked_mean(bce, tg.branch_valid[:, :, None, None, None].expand_as(bce))
            bvalid = tg.branch_agent_valid & tg.agent_valid[:, None, :, None] & tg.branch_valid[:, :, None, None]
            out_l["cf_traj"], _ = wta_losses(
                out.agent_trajs[:, 1:], out.agent_mode_logits[:, 1:], tg.branch_agent_future, bvalid
            )
        else:
            out_l["cf_obstacle"] = zero
            out_l["cf_traj"] = zero
        known_light = tg.light_state >= 0
        if bool(known_light.any()):
            out_l["light"] = masked_mean(
                F.cross_entropy(ex.light_logits, tg.light_state.clamp(min=0), reduction="none"), known_light
            )
        else:
            out_l["light"] = zero
        known_d = tg.light_distance >= 0
        out_l["light_distance"] = (
            masked_mean((ex.light_distance - tg.light_distance).abs(), known_d) if bool(known_d.any()) else zero
        )
        out_l["loss"] = sum(LOSS_WEIGHTS[k] * v for k, v in out_l.items())
        return out_l

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _light_belief(features: DriveSceneFeatures) -> LightBelief:
    """The light head's belief: softmax of its logits; the distance is inf where "none" is likeliest."""
    probs = torch.softmax(features.light_logits, dim=-1)
    none = probs.argmax(-1) == LightState.NONE
    distance = torch.where(none, torch.full_like(features.light_distance, float("inf")), features.light_distance)
    return LightBelief(probs, distance.float())


def _init_mode_head(head: nn.Linear, k: int, t: int) -> None:
    """Output layer `[K·(3T+1)]` of a multi-modal trajectory head: tiny weights, biases that give
    mode m a constant per-step deviation from the prior (slower/faster × left/right), logits 0."""
    nn.init.normal_(head.weight, std=1e-3)
    bias = torch.zeros(k, t * 3 + 1)
    if k > 1:
        u = torch.linspace(-1.0, 1.0, k)
        bias[:, 0 : 3 * t : 3] = 0.5 * u[:, None]  # along-track [m/step]
        bias[:, 1 : 3 * t : 3] = 0.3 * u.flip(0)[:, None] * (torch.arange(k) % 2 * 2 - 1)[:, None]  # lateral
    with torch.no_grad():
        head.bias.copy_(bias.flatten())


def targets_to_agents(tg: Targets) -> AgentStates:
    """Ground-truth agents at t0 `[B, A]` from `Targets` (for teacher-forced agent tokens)."""
    box = tg.agent_box
    yaw = box[..., 3]
    speed = (tg.agent_velocity * torch.stack([torch.cos(yaw), torch.sin(yaw)], -1)).sum(-1)
    return AgentStates(
        xy=box[..., :2],
        z=box[..., 2],
        yaw=yaw,
        speed=speed,
        velocity=tg.agent_velocity,
        size=torch.where(tg.agent_valid[..., None], box[..., 4:7], torch.ones_like(box[..., 4:7])),
        cls=tg.agent_cls,
        track_id=torch.arange(box.shape[1], device=box.device).expand(box.shape[:2]).clone(),
        valid=tg.agent_valid,
    )


__all__ = [
    "DriveSceneFeatures",
    "DriveWorldModel",
    "RolloutOutput",
    "check_observation",
    "scene_features",
    "targets_to_agents",
]
