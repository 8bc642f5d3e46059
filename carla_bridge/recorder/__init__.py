"""The nuScenes-format recorder: genuine nuScenes tables + map expansion + Occ3D labels + counterfactual
branches from the lite simulator (`drivewm data generate` / `drivewm data check`; format in docs/FORMATS.md).

Modules: `config` (generator config, scene seeds), `tables` (the 13 tables, tokens), `devkit_maps` (the ONE
adapter registering our towns with the devkit's map API), `map_expansion` (map JSON + basemap), `frames`
(one keyframe: sensors, labels, annotations), `branches` (counterfactual plans and their labels), `scene`
(one scene with the simulator), `dataset` (atomic, resumable generation), `check` (verification).
Import the submodules directly (`from carla_bridge.recorder.dataset import generate`); this package
module stays light (the devkit is imported only by the modules that need it).
"""

from carla_bridge.recorder.config import BRANCH_KINDS, GeneratorConfig, SceneSpec

__all__ = ["BRANCH_KINDS", "GeneratorConfig", "SceneSpec"]
