"""Open-loop evaluation of the world model on a dataset split (DESIGN.md §7).

Layout (as the nuScenes devkit's tasks): `config` (the frozen, versioned protocol `open-loop-v1`
and the run options), `metrics` (pure functions), `evaluate` (the entry points `evaluate_open_loop`
and `run_open_loop`), `render` (tables, figures, reports).

Everything is computed on the same samples for the model and its baselines:

* planning: L2 at 1/2/3 s (the protocol's horizons) and collision rate with ground-truth
  vehicle/pedestrian boxes, in both conventions ("at t" and "average up to t"; `metrics`, ego box
  with its size, rear-axle offset and yaw; samples whose logged future collides are excluded and counted). Plans:
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

from drivewm.evaluation.open_loop.config import DEFAULT_PROTOCOL, OpenLoopConfig
from drivewm.evaluation.open_loop.evaluate import evaluate_open_loop, run_open_loop
from drivewm.evaluation.open_loop.render import write_open_loop_report

__all__ = ["DEFAULT_PROTOCOL", "OpenLoopConfig", "evaluate_open_loop", "run_open_loop", "write_open_loop_report"]
