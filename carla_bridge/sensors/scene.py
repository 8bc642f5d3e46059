"""`RenderScene`: everything the camera and lidar renderers need, in the world frame.

The simulator (or a test) fills a `RenderScene` once per rendered frame; the renderers never see
simulator state. World frame: right-handed, z up, metres, yaw counter-clockwise from +x.
Class ids are Occ3D-nuScenes (DESIGN.md §3): 1..10 agents/objects, 11 driveable_surface, 12 other_flat,
13 sidewalk, 14 terrain, 15 manmade, 16 vegetation, 17 free (sky in the semantic images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from occupancy.classes import GROUND_CLASSES, Occ3DClass

# Short names of the Occ3D ids the renderers use (numbered once, in `occupancy.classes.Occ3DClass`).
OTHERS, PEDESTRIAN, MANMADE, VEGETATION, FREE = (
    Occ3DClass.OTHERS,
    Occ3DClass.PEDESTRIAN,
    Occ3DClass.MANMADE,
    Occ3DClass.VEGETATION,
    Occ3DClass.FREE,
)
DRIVEABLE, OTHER_FLAT, SIDEWALK, TERRAIN = GROUND_CLASSES

# Traffic-light states (`RenderScene.light_state`).
LIGHT_RED, LIGHT_YELLOW, LIGHT_GREEN, LIGHT_OFF = 0, 1, 2, 3

# Marking codes (`GroundPatch.markings`), those of `carla_bridge.maps` StaticScene.marking_raster plus yellow.
MARK_NONE, MARK_LANE, MARK_CROSSWALK, MARK_STOP, MARK_YELLOW = 0, 1, 2, 3, 4
MARK_WHITE = MARK_LANE


def _array(name: str, value, dtype, shape: tuple[int | None, ...], finite: bool = True) -> np.ndarray:
    """Convert to a numpy array and check its shape (None = any size) and finiteness; ValueError names `name`."""
    try:
        arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name}: cannot convert to an array ({e})") from e
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {want}, got {tuple(arr.shape)}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (NaN/inf)")
    return arr.astype(dtype, copy=False)


@dataclass
class HeightField:
    """Ground z on a BEV grid of its own (usually coarse, e.g. 2 m), placed like a `GroundPatch`.

    Attributes:
        values: `[Xh, Yh]` float32 ground z [m] (world) at the cell centres.
        resolution: cell size [m].
        pose: (x, y, yaw) of the grid frame in the world.
        lower: (x, y) of the grid's lower corner in its frame [m].
    """

    values: np.ndarray
    resolution: float
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lower: tuple[float, float] = (0.0, 0.0)

    def validate(self) -> HeightField:
        self.values = _array("HeightField.values", self.values, np.float32, (None, None))
        if min(self.values.shape) < 2:
            raise ValueError(f"HeightField.values needs at least 2 × 2 cells, got {self.values.shape}")
        if not (isinstance(self.resolution, (int, float, np.floating)) and math.isfinite(self.resolution)):
            raise ValueError(f"HeightField.resolution must be a finite number, got {self.resolution!r}")
        if self.resolution <= 0:
            raise ValueError(f"HeightField.resolution must be positive, got {self.resolution}")
        self.pose = tuple(float(v) for v in _array("HeightField.pose", self.pose, np.float64, (3,)))  # type: ignore[assignment]
        self.lower = tuple(float(v) for v in _array("HeightField.lower", self.lower, np.float64, (2,)))  # type: ignore[assignment]
        return self

    def cell_centres(self) -> np.ndarray:
        """`[Xh, Yh, 2]` world xy of the cell centres."""
        nx, ny = self.values.shape
        px = self.lower[0] + (np.arange(nx) + 0.5) * self.resolution
        py = self.lower[1] + (np.arange(ny) + 0.5) * self.resolution
        ppx, ppy = np.meshgrid(px, py, indexing="ij")
        x0, y0, yaw = self.pose
        c, s = math.cos(yaw), math.sin(yaw)
        return np.stack([x0 + c * ppx - s * ppy, y0 + s * ppx + c * ppy], -1)

    def at(self, xy: np.ndarray) -> np.ndarray:
        """Ground z `[P]` at world points `xy [P, 2]` (nearest cell, clamped to the grid)."""
        x0, y0, yaw = self.pose
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = xy[:, 0] - x0, xy[:, 1] - y0
        i = np.floor((c * dx + s * dy - self.lower[0]) / self.resolution).astype(np.int64)
        j = np.floor((-s * dx + c * dy - self.lower[1]) / self.resolution).astype(np.int64)
        nx, ny = self.values.shape
        return self.values[np.clip(i, 0, nx - 1), np.clip(j, 0, ny - 1)].astype(np.float64)


@dataclass
class GroundPatch:
    """A BEV raster of the ground around the ego, placed in the world by a pose.

    Cell (i, j) covers patch-frame x ∈ [lower[0] + i·res, lower[0] + (i+1)·res), y likewise with j, so a
    raster made by `TownMap.static.raster(center_xy, yaw, grid)` has `pose = (center_x, center_y, yaw)` and
    `lower = grid.lower[:2]`. The patch should cover the render radius (default 80 m); outside it the ground
    is terrain.

    Attributes:
        classes: `[X, Y]` uint8 Occ3D ground class per cell (11 driveable, 12 other_flat, 13 sidewalk,
            14 terrain; any other value renders as terrain).
        resolution: cell size [m].
        pose: (x, y, yaw) of the patch frame in the world.
        lower: (x, y) of the raster's lower corner in the patch frame [m].
        height: ground z [m] in the world: a scalar, `[X, Y]` per cell of this patch, or a `HeightField` with its
            own (coarser) grid — e.g. `carla_bridge.sensors.terrain.lane_height_field` on hilly towns.
        markings: optional `[X, Y]` uint8 paint codes as `StaticScene.marking_raster`: 0 none, 1 lane line,
            2 crosswalk stripe, 3 stop line (all white), 4 yellow line.
        crosswalk: optional `[X, Y]` bool extra zebra-stripe paint (white).

    Any array may be a strided view (e.g. the transpose of a town-wide raster): nothing is copied.
    """

    classes: np.ndarray
    resolution: float
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lower: tuple[float, float] = (0.0, 0.0)
    height: float | np.ndarray | HeightField = 0.0
    markings: np.ndarray | None = None
    crosswalk: np.ndarray | None = None

    @classmethod
    def from_static(cls, static, height: float | HeightField = 0.0) -> GroundPatch:
        """The town-wide rasters of a `carla_bridge.maps` `StaticScene` (`ground`/`markings` images indexed
        [row = y, column = x] from `origin` at `res`) as a patch, without copying: `GroundPatch.from_static(
        town.static, height=ego_z)`."""
        return cls(
            classes=static.ground.T,
            resolution=float(static.res),
            pose=(float(static.origin[0]), float(static.origin[1]), 0.0),
            lower=(0.0, 0.0),
            height=height,
            markings=static.markings.T,
        )

    def validate(self) -> GroundPatch:
        self.classes = _array("GroundPatch.classes", self.classes, np.uint8, (None, None))
        nx, ny = self.classes.shape
        if nx < 1 or ny < 1:
            raise ValueError(f"GroundPatch.classes must be non-empty, got {self.classes.shape}")
        if not (isinstance(self.resolution, (int, float, np.floating)) and math.isfinite(self.resolution)):
            raise ValueError(f"GroundPatch.resolution must be a finite number, got {self.resolution!r}")
        if self.resolution <= 0:
            raise ValueError(f"GroundPatch.resolution must be positive, got {self.resolution}")
        self.pose = tuple(float(v) for v in _array("GroundPatch.pose", self.pose, np.float64, (3,)))  # type: ignore[assignment]
        self.lower = tuple(float(v) for v in _array("GroundPatch.lower", self.lower, np.float64, (2,)))  # type: ignore[assignment]
        if isinstance(self.height, HeightField):
            self.height.validate()
        elif np.ndim(self.height) == 0:
            self.height = float(_array("GroundPatch.height", self.height, np.float64, ()))
        else:
            values = _array("GroundPatch.height", self.height, np.float32, (nx, ny))
            self.height = HeightField(values, float(self.resolution), self.pose, self.lower).validate()
        if self.markings is not None:
            self.markings = _array("GroundPatch.markings", self.markings, np.uint8, (nx, ny))
        if self.crosswalk is not None:
            self.crosswalk = _array("GroundPatch.crosswalk", self.crosswalk, bool, (nx, ny))
        return self

    def to_patch(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cell indices `(i[P], j[P], inside[P])` of world points `xy[P, 2]` (indices clipped into range)."""
        x0, y0, yaw = self.pose
        c, s = math.cos(yaw), math.sin(yaw)
        dx = xy[:, 0] - x0
        dy = xy[:, 1] - y0
        px = c * dx + s * dy
        py = -s * dx + c * dy
        fi = np.floor((px - self.lower[0]) / self.resolution)
        fj = np.floor((py - self.lower[1]) / self.resolution)
        nx, ny = self.classes.shape
        inside = (fi >= 0) & (fi < nx) & (fj >= 0) & (fj < ny)
        i = np.clip(fi, 0, nx - 1).astype(np.intp)
        j = np.clip(fj, 0, ny - 1).astype(np.intp)
        return i, j, inside

    def height_at(self, xy: np.ndarray) -> np.ndarray:
        """Ground z `[P]` at world points `xy[P, 2]` (nearest height cell, clamped; call `validate()` first)."""
        if isinstance(self.height, HeightField):
            return self.height.at(np.asarray(xy, np.float64))
        return np.full(len(xy), float(self.height))


@dataclass(frozen=True)
class Appearance:
    """Lighting and per-scene appearance.

    Attributes:
        sun_direction: world-frame vector pointing **towards** the sun (normalised on use).
        sun_intensity: diffuse sun strength (0..1).
        ambient: ambient light (0..1).
        sky_zenith / sky_horizon: sky RGB in [0, 1] straight up / at the horizon.
        haze_distance: distance [m] over which colours fade towards the horizon colour (1 - exp(-d/haze)).
        seed: per-scene seed for textures and colour jitter of the ground and buildings.
    """

    sun_direction: tuple[float, float, float] = (0.4, 0.3, 0.85)
    sun_intensity: float = 0.6
    ambient: float = 0.5
    sky_zenith: tuple[float, float, float] = (0.33, 0.52, 0.85)
    sky_horizon: tuple[float, float, float] = (0.78, 0.84, 0.92)
    haze_distance: float = 400.0
    seed: int = 0

    @classmethod
    def random(cls, rng: np.random.Generator) -> Appearance:
        """Randomised per-scene lighting (sun azimuth/elevation, sky tint, ambient) and texture seed."""
        az = rng.uniform(-math.pi, math.pi)
        el = rng.uniform(math.radians(20), math.radians(75))
        sun = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
        tint = rng.uniform(-0.06, 0.06, 3)
        zen = np.clip(np.array([0.33, 0.52, 0.85]) + tint, 0, 1)
        hor = np.clip(np.array([0.78, 0.84, 0.92]) + tint * 0.5, 0, 1)
        return cls(
            sun_direction=sun,
            sun_intensity=float(rng.uniform(0.45, 0.75)),
            ambient=float(rng.uniform(0.38, 0.55)),
            sky_zenith=tuple(float(v) for v in zen),  # type: ignore[arg-type]
            sky_horizon=tuple(float(v) for v in hor),  # type: ignore[arg-type]
            haze_distance=float(rng.uniform(250, 600)),
            seed=int(rng.integers(0, 2**31 - 1)),
        )

    def validate(self) -> Appearance:
        sun = _array("Appearance.sun_direction", self.sun_direction, np.float64, (3,))
        if np.linalg.norm(sun) < 1e-9:
            raise ValueError("Appearance.sun_direction must be non-zero")
        for name in ("sky_zenith", "sky_horizon"):
            _array(f"Appearance.{name}", getattr(self, name), np.float64, (3,))
        for name in ("sun_intensity", "ambient", "haze_distance"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float, np.floating)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"Appearance.{name} must be a finite non-negative number, got {v!r}")
        return self


def _empty(n: int, *tail: int, dtype=np.float64) -> np.ndarray:
    return np.zeros((n, *tail), dtype=dtype)


@dataclass
class RenderScene:
    """World-frame scene of one rendered frame (M dynamic boxes, S static boxes, R trees, L light heads).

    Attributes:
        ground: the ground raster patch (`GroundPatch`).
        ego_pose: (x, y, z, yaw) of the ego rear axle on the ground, world frame. The ego is not rendered.
        boxes: `[M, 7]` dynamic boxes (x, y, z_centre, yaw, length, width, height).
        occ_class: `[M]` Occ3D class ids 0..10 (4 car, 7 pedestrian, 10 truck, ...). Shapes inside the box:
            car = body + glass cabin + roof, bus = body + window band + roof, truck / construction vehicle =
            cargo box + cab (all with wheels and head/tail lamps within 40 m), pedestrian = legs + torso + head,
            bicycle / motorcycle = frame + rider; barrier, cone, trailer, others = the plain box.
        color: `[M, 3]` uint8 body colour per box.
        instance_id: `[M]` int32 instance id (≥ 0) written to the instance images and lidar points.
        static_boxes: `[S, 7]` buildings, poles, walls, barriers ... (same layout as `boxes`).
        static_class: `[S]` Occ3D ids (15 manmade, 16 vegetation, 1 barrier, 8 traffic_cone, ...).
        static_color: optional `[S, 3]` uint8; default: a seeded façade palette.
        trees: `[R, 7]` overall tree extents (trunk + crown), rendered as a trunk box and two crown boxes
            (class 16 vegetation).
        lights: `[L, 5]` traffic-light heads (pole_x, pole_y, ground_z, yaw, head_height): the pole stands at
            (pole_x, pole_y); the head's centre is `head_height` above the ground, its lamps face direction
            `yaw` (towards the approaching traffic: lane heading + π). Class 15 manmade.
        light_state: `[L]` int (0 red, 1 yellow, 2 green, 3 off); the lamp of that state is lit (emissive).
        appearance: lighting / sky / texture parameters.
    """

    ground: GroundPatch
    ego_pose: np.ndarray | tuple[float, float, float, float]
    boxes: np.ndarray = field(default_factory=lambda: _empty(0, 7))
    occ_class: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.uint8))
    color: np.ndarray = field(default_factory=lambda: _empty(0, 3, dtype=np.uint8))
    instance_id: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.int32))
    static_boxes: np.ndarray = field(default_factory=lambda: _empty(0, 7))
    static_class: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.uint8))
    static_color: np.ndarray | None = None
    trees: np.ndarray = field(default_factory=lambda: _empty(0, 7))
    lights: np.ndarray = field(default_factory=lambda: _empty(0, 5))
    light_state: np.ndarray = field(default_factory=lambda: _empty(0, dtype=np.int64))
    appearance: Appearance = field(default_factory=Appearance)

    def validate(self) -> RenderScene:
        """Check shapes, dtypes, finiteness and ranges; converts fields to numpy. ValueError names the field."""
        if not isinstance(self.ground, GroundPatch):
            raise ValueError(f"RenderScene.ground must be a GroundPatch, got {type(self.ground).__name__}")
        self.ground.validate()
        self.ego_pose = _array("RenderScene.ego_pose", self.ego_pose, np.float64, (4,))
        self.boxes = _array("RenderScene.boxes", self.boxes, np.float64, (None, 7))
        m = len(self.boxes)
        self.occ_class = _array("RenderScene.occ_class", self.occ_class, np.uint8, (m,))
        if m and self.occ_class.max() > 10:
            raise ValueError(f"RenderScene.occ_class must be Occ3D object ids 0..10, got max {self.occ_class.max()}")
        self.color = _array("RenderScene.color", self.color, np.uint8, (m, 3))
        self.instance_id = _array("RenderScene.instance_id", self.instance_id, np.int32, (m,))
        if m and self.instance_id.min() < 0:
            raise ValueError("RenderScene.instance_id must be ≥ 0 (-1 means 'no instance' in the outputs)")
        self.static_boxes = _array("RenderScene.static_boxes", self.static_boxes, np.float64, (None, 7))
        s = len(self.static_boxes)
        self.static_class = _array("RenderScene.static_class", self.static_class, np.uint8, (s,))
        if s and self.static_class.max() > 16:
            raise ValueError(f"RenderScene.static_class must be Occ3D ids 0..16, got max {self.static_class.max()}")
        if self.static_color is not None:
            self.static_color = _array("RenderScene.static_color", self.static_color, np.uint8, (s, 3))
        self.trees = _array("RenderScene.trees", self.trees, np.float64, (None, 7))
        self.lights = _array("RenderScene.lights", self.lights, np.float64, (None, 5))
        n_l = len(self.lights)
        self.light_state = _array("RenderScene.light_state", self.light_state, np.int64, (n_l,))
        if n_l and (self.light_state.min() < 0 or self.light_state.max() > 3):
            raise ValueError("RenderScene.light_state must be 0 red, 1 yellow, 2 green or 3 off")
        for name in ("boxes", "static_boxes", "trees"):
            arr = getattr(self, name)
            if len(arr) and (arr[:, 4:7] <= 0).any():
                raise ValueError(f"RenderScene.{name} sizes (length, width, height) must be positive")
        if not isinstance(self.appearance, Appearance):
            raise ValueError(f"RenderScene.appearance must be an Appearance, got {type(self.appearance).__name__}")
        self.appearance.validate()
        return self
