"""Fast bird's-eye-view frames of a lite world (PIL polygons; for run animations)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from agents import AgentClass
from carla_bridge.lite.lights import HeadState

COLORS = {
    "background": (245, 245, 240),
    "lane": (200, 200, 200),
    "route": (120, 170, 250),
    "ego": (220, 30, 30),
    "vehicle": (40, 90, 200),
    "pedestrian": (20, 150, 40),
    "static": (240, 140, 20),
}
LIGHT_COLORS = {HeadState.RED: (230, 30, 30), HeadState.YELLOW: (240, 200, 0), HeadState.GREEN: (30, 190, 60)}


class BevRenderer:
    """Draws ego-centred BEV frames: lanes, route, agents, lights; `size` px over `extent` metres."""

    def __init__(self, town, route_xy: np.ndarray, size: int = 400, extent: float = 100.0) -> None:
        self.size, self.extent = size, extent
        self.scale = size / extent
        self.lanes = [ln.points for ln in town.lanes]
        self.route = np.asarray(route_xy)

    def _px(self, xy: np.ndarray, ego: np.ndarray) -> list[tuple[float, float]]:
        c, s = math.cos(ego[2]), math.sin(ego[2])
        d = np.asarray(xy, dtype=np.float64) - ego[:2]
        fwd = c * d[..., 0] + s * d[..., 1]
        left = -s * d[..., 0] + c * d[..., 1]
        u = self.size / 2 - left * self.scale
        v = self.size * 0.65 - fwd * self.scale
        return list(zip(u.tolist(), v.tolist()))

    def _box(self, draw, box, ego, color) -> None:
        x, y, yaw, ln, wd = (float(b) for b in box)
        c, s = math.cos(yaw), math.sin(yaw)
        corners = np.array([[ln / 2, wd / 2], [ln / 2, -wd / 2], [-ln / 2, -wd / 2], [-ln / 2, wd / 2]])
        pts = np.stack([x + c * corners[:, 0] - s * corners[:, 1], y + s * corners[:, 0] + c * corners[:, 1]], -1)
        draw.polygon(self._px(pts, ego), fill=color, outline=(0, 0, 0))

    def frame(self, world, w: int = 0, text: str = "") -> np.ndarray:
        """`[size, size, 3]` uint8 frame of world `w`."""
        from agents.boxes import ego_boxes

        ego = world.ego_pose()[w].double().numpy()
        img = Image.new("RGB", (self.size, self.size), COLORS["background"])
        draw = ImageDraw.Draw(img)
        r = self.extent
        for pts in self.lanes:
            if np.min(np.abs(pts - ego[:2]).max(1)) < r:
                draw.line(self._px(pts, ego), fill=COLORS["lane"], width=max(1, int(3.0 * self.scale)))
        draw.line(self._px(self.route, ego), fill=COLORS["route"], width=2)
        a = world.agents_world()
        boxes = np.concatenate([a.xy[w].numpy(), a.yaw[w].numpy()[:, None], a.size[w, :, :2].numpy()], 1)
        cls = a.cls[w].numpy()
        near = (np.abs(boxes[:, :2] - ego[:2]).max(1) < r) & a.valid[w].numpy()
        n_dyn = world.state.vehicles.valid.shape[1] + world.state.pedestrians.valid.shape[1]
        for i in np.flatnonzero(near):
            if cls[i] == int(AgentClass.PEDESTRIAN):
                color = COLORS["pedestrian"]
            elif i >= n_dyn:
                color = COLORS["static"]
            else:
                color = COLORS["vehicle"]
            self._box(draw, boxes[i], ego, color)
        states = world.light_states()[w].numpy()
        for (x, y), st in zip(world.md.head_stop_xy.numpy(), states):
            if abs(x - ego[0]) < r and abs(y - ego[1]) < r:
                ((u, v),) = self._px(np.array([[x, y]]), ego)
                draw.ellipse([u - 4, v - 4, u + 4, v + 4], fill=LIGHT_COLORS.get(int(st), (90, 90, 90)))
        self._box(draw, ego_boxes(world.ego_pose()[w : w + 1])[0].double().numpy(), ego, COLORS["ego"])
        if text:
            draw.text((6, 6), text, fill=(0, 0, 0))
        return np.asarray(img)
