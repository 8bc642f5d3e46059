"""Camera → BEV: a small shared image backbone, Simple-BEV lifting and ego-motion warping.

Simple-BEV (Harley et al. 2022): project every 3D voxel centre into each camera, bilinearly
sample that camera's feature map, average over the cameras that see the voxel, and fold the
height axis into channels. No depth estimation, so it is cheap and deterministic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.se2 import se2_relative
from occupancy import GridSpec


def conv_bn(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    """Conv + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ResBlock(nn.Module):
    """Two 3×3 convs with a residual connection (ResNet basic block, optional stride)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, cout, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.skip(x))


class ImageBackbone(nn.Module):
    """A ResNet-style encoder in plain torch, shared across cameras, with one top-down (FPN) merge:
    the deepest stage is upsampled ×2 and added to the stage before it, so the features keep the
    finer stride of that stage (objects of a few pixels stay separable) with the deep receptive field.

    `[B·V, 3, h, w]` float (normalised) → `[B·V, C, h/2^S, w/2^S]` with S ≥ 2 stages
    (`[B·V, C, h/4, w/4]` for one stage).
    """

    def __init__(self, channels: list[int], out_dim: int) -> None:
        super().__init__()
        self.stem = conv_bn(3, channels[0], stride=2)
        stages, cin = [], channels[0]
        for c in channels:
            stages.append(ResBlock(cin, c, stride=2))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.out = nn.Conv2d(cin, out_dim, 1)
        self.lateral = nn.Conv2d(channels[-2], out_dim, 1) if len(channels) > 1 else None
        self.stride = 2 ** len(channels) if len(channels) > 1 else 4

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        skip = x
        for stage in self.stages:
            skip, x = x, stage(x)
        out = self.out(x)
        if self.lateral is None:
            return out
        return self.lateral(skip) + F.interpolate(out, size=skip.shape[-2:], mode="bilinear", align_corners=False)


def project_voxels(
    centers: Tensor, intrinsics: Tensor, cam_to_ego: Tensor, image_hw: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Project ego-frame points into every camera.

    Args:
        centers: `[P, 3]` points in the ego frame [m].
        intrinsics: `[B, V, 3, 3]` at the image resolution `image_hw`.
        cam_to_ego: `[B, V, 4, 4]` (camera: z forward, x right, y down).
        image_hw: (h, w) [px].

    Returns:
        uv: `[B, V, P, 2]` normalised image coordinates in [-1, 1] (grid_sample convention,
            align_corners=False), and valid: `[B, V, P]` bool (in front of the camera and inside the image).
    """
    ego_to_cam = torch.linalg.inv(cam_to_ego)  # [B, V, 4, 4]
    pts = centers.to(ego_to_cam.dtype)
    cam = torch.einsum("bvij,pj->bvpi", ego_to_cam[..., :3, :3], pts) + ego_to_cam[..., None, :3, 3]
    z = cam[..., 2]
    pix = torch.einsum("bvij,bvpj->bvpi", intrinsics, cam)
    uv_px = pix[..., :2] / z.clamp(min=1e-3)[..., None]
    h, w = image_hw
    u = uv_px[..., 0] / w * 2.0 - 1.0
    v = uv_px[..., 1] / h * 2.0 - 1.0
    valid = (z > 0.1) & (u > -1.0) & (u < 1.0) & (v > -1.0) & (v < 1.0)
    return torch.stack([u, v], dim=-1), valid


class SimpleBEVLifter(nn.Module):
    """Voxel-centre sampling of camera features, averaged over cameras, height folded into channels.

    `feats [B, V, C, h', w']` → `[B, C·Z, X, Y]` (then a 1×1 conv compresses to `out_dim`).
    """

    def __init__(self, grid: GridSpec, feat_dim: int, out_dim: int) -> None:
        super().__init__()
        self.grid = grid
        self.register_buffer("centers", grid.voxel_centers().reshape(-1, 3), persistent=False)  # [X·Y·Z, 3]
        self.compress = conv_bn(feat_dim * grid.shape[2], out_dim, k=1)

    def forward(self, feats: Tensor, intrinsics: Tensor, cam_to_ego: Tensor, image_hw: tuple[int, int]) -> Tensor:
        b, v, c = feats.shape[:3]
        gx, gy, gz = self.grid.shape
        uv, valid = project_voxels(self.centers, intrinsics, cam_to_ego, image_hw)  # [B,V,P,2], [B,V,P]
        sampled = F.grid_sample(
            feats.flatten(0, 1), uv.flatten(0, 1)[:, :, None, :], mode="bilinear", align_corners=False
        )  # [B·V, C, P, 1]
        sampled = sampled[..., 0].view(b, v, c, -1) * valid[:, :, None, :].to(feats.dtype)
        count = valid.sum(dim=1).clamp(min=1).to(feats.dtype)  # [B, P]
        vox = sampled.sum(dim=1) / count[:, None, :]  # [B, C, P]
        vox = vox.view(b, c, gx, gy, gz).permute(0, 1, 4, 2, 3).reshape(b, c * gz, gx, gy)  # fold Z into C
        return self.compress(vox)


def warp_bev(latent: Tensor, prev_pose: Tensor, cur_pose: Tensor, grid: GridSpec) -> Tensor:
    """Warp a BEV latent from the previous ego frame into the current one.

    Args:
        latent: `[B, C, X, Y]` in the previous ego frame (index x forward, y left).
        prev_pose, cur_pose: `[B, 3]` world poses (x, y, yaw) of the previous and current ego frames.
        grid: the BEV grid (x, y extents).

    Returns:
        `[B, C, X, Y]` in the current ego frame; cells that were outside the previous grid are 0.
    """
    cells = grid.bev_centers(latent.device)  # [X, Y, 2] current frame
    rel = se2_relative(prev_pose, cur_pose)  # current frame expressed in the previous frame, [B, 3]
    c, s = torch.cos(rel[:, 2]), torch.sin(rel[:, 2])
    x = c[:, None, None] * cells[..., 0] - s[:, None, None] * cells[..., 1] + rel[:, 0, None, None]
    y = s[:, None, None] * cells[..., 0] + c[:, None, None] * cells[..., 1] + rel[:, 1, None, None]
    lo, hi = grid.lower, grid.upper
    nx = (x - lo[0]) / (hi[0] - lo[0]) * 2.0 - 1.0  # along X (tensor dim -2)
    ny = (y - lo[1]) / (hi[1] - lo[1]) * 2.0 - 1.0  # along Y (tensor dim -1)
    # grid_sample's last coordinate pair is (w, h) = (dim -1, dim -2)
    sample = torch.stack([ny, nx], dim=-1)  # [B, X, Y, 2]
    return F.grid_sample(latent, sample.to(latent.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
