"""The 18-class Occ3D-nuScenes table: names, display colours and the class mappings.

Ids 0..16 are the nuScenes-lidarseg challenge classes (0 `others`, which the devkit calls `ignore`),
17 is `free`. The nuScenes category → Occ3D mapping is the devkit's lidarseg 32 → 16 mapping
(vendored in `occupancy/data/occ3d_classes.json`); categories with no class there map to 0
`others`. Display colours follow the palette used across Occ3D visualisations (SurroundOcc,
FB-OCC), with `free` drawn white.
"""

from __future__ import annotations

import json
from enum import IntEnum
from importlib import resources

import numpy as np

from agents.states import AgentClass

__all__ = [
    "AGENT_CLASS_TO_NUSCENES_CATEGORY",
    "AGENT_CLASS_TO_OCC3D",
    "GROUND_CLASSES",
    "NUM_CLASSES",
    "NUM_SEMANTIC_CLASSES",
    "NUSCENES_CATEGORY_TO_OCC3D",
    "OCC3D_CLASSES",
    "OCC3D_COLORS",
    "Occ3DClass",
    "agent_class_to_occ3d_lut",
    "class_id",
    "load_occ3d_table",
]


class Occ3DClass(IntEnum):
    """Occ3D-nuScenes class ids (DESIGN.md §3): the one place they are numbered."""

    OTHERS = 0
    BARRIER = 1
    BICYCLE = 2
    BUS = 3
    CAR = 4
    CONSTRUCTION_VEHICLE = 5
    MOTORCYCLE = 6
    PEDESTRIAN = 7
    TRAFFIC_CONE = 8
    TRAILER = 9
    TRUCK = 10
    DRIVEABLE_SURFACE = 11
    OTHER_FLAT = 12
    SIDEWALK = 13
    TERRAIN = 14
    MANMADE = 15
    VEGETATION = 16
    FREE = 17


OCC3D_CLASSES: tuple[str, ...] = tuple(c.name.lower() for c in Occ3DClass)
"""Class names by id (`'others'` … `'free'`), as in Occ3D's and the devkit's tables."""
NUM_CLASSES = len(Occ3DClass)
NUM_SEMANTIC_CLASSES = int(Occ3DClass.FREE)  # 0..16, the classes IoU is reported for
GROUND_CLASSES: tuple[Occ3DClass, ...] = (
    Occ3DClass.DRIVEABLE_SURFACE,
    Occ3DClass.OTHER_FLAT,
    Occ3DClass.SIDEWALK,
    Occ3DClass.TERRAIN,
)

# [18, 3] uint8 RGB display colours, indexed by class id.
OCC3D_COLORS: np.ndarray = np.array(
    [
        [0, 0, 0],  # 0 others: black
        [255, 120, 50],  # 1 barrier: orange
        [255, 192, 203],  # 2 bicycle: pink
        [255, 255, 0],  # 3 bus: yellow
        [0, 150, 245],  # 4 car: blue
        [0, 255, 255],  # 5 construction_vehicle: cyan
        [200, 180, 0],  # 6 motorcycle: dark yellow
        [255, 0, 0],  # 7 pedestrian: red
        [255, 240, 150],  # 8 traffic_cone: light yellow
        [135, 60, 0],  # 9 trailer: brown
        [160, 32, 240],  # 10 truck: purple
        [255, 0, 255],  # 11 driveable_surface: magenta
        [139, 137, 137],  # 12 other_flat: grey
        [75, 0, 75],  # 13 sidewalk: dark purple
        [150, 240, 80],  # 14 terrain: light green
        [230, 230, 250],  # 15 manmade: lavender
        [0, 175, 0],  # 16 vegetation: green
        [255, 255, 255],  # 17 free: white
    ],
    dtype=np.uint8,
)
OCC3D_COLORS.setflags(write=False)


def load_occ3d_table() -> dict:
    """The vendored Occ3D reference table (`occupancy/data/occ3d_classes.json`) as a dict."""
    text = resources.files("occupancy").joinpath("data/occ3d_classes.json").read_text(encoding="utf-8")
    return json.loads(text)


def _category_mapping() -> dict[str, int]:
    """nuScenes category name → Occ3D id, from the devkit's lidarseg 32 → 16 mapping."""
    table = load_occ3d_table()
    names = table["lidarseg32_index_to_name"]
    to_occ = table["lidarseg32_to_occ16"]
    mapping = {names[k]: int(to_occ[k]) for k in names}
    for name, occ in mapping.items():
        if not 0 <= occ < NUM_SEMANTIC_CLASSES:
            raise ValueError(f"occ3d_classes.json maps {name!r} to {occ}, outside 0..16")
    return mapping


NUSCENES_CATEGORY_TO_OCC3D: dict[str, int] = _category_mapping()

AGENT_CLASS_TO_NUSCENES_CATEGORY: dict[AgentClass, str] = {
    AgentClass.CAR: "vehicle.car",
    AgentClass.TRUCK: "vehicle.truck",
    AgentClass.BUS: "vehicle.bus.rigid",
    AgentClass.PEDESTRIAN: "human.pedestrian.adult",
    AgentClass.BICYCLE: "vehicle.bicycle",
    AgentClass.MOTORCYCLE: "vehicle.motorcycle",
    AgentClass.BARRIER: "movable_object.barrier",
    AgentClass.TRAFFIC_CONE: "movable_object.trafficcone",
    AgentClass.CONSTRUCTION_VEHICLE: "vehicle.construction",
    AgentClass.TRAILER: "vehicle.trailer",
}

AGENT_CLASS_TO_OCC3D: dict[AgentClass, int] = {
    c: NUSCENES_CATEGORY_TO_OCC3D[cat] for c, cat in AGENT_CLASS_TO_NUSCENES_CATEGORY.items()
}


def class_id(name: str) -> int:
    """Occ3D id of a class name (`'car'` → 4); `ValueError` listing the names if unknown."""
    try:
        return OCC3D_CLASSES.index(name)
    except ValueError:
        raise ValueError(f"unknown Occ3D class {name!r}; known: {', '.join(OCC3D_CLASSES)}") from None


def agent_class_to_occ3d_lut() -> np.ndarray:
    """`[len(AgentClass)]` int64 lookup table: `lut[agent_class_id]` → Occ3D id (for batched tensors)."""
    lut = np.full(max(AgentClass) + 1, Occ3DClass.OTHERS, dtype=np.int64)
    for c, occ in AGENT_CLASS_TO_OCC3D.items():
        lut[int(c)] = occ
    return lut
