"""drivewm: the learned world model and the product.

Owns the nuScenes dataset (through the official devkit) and its feature cache, the Lightning
data and training modules, the ego-plan-conditioned world model (`encode`/`rollout`, implementing
`planner.WorldModel`), the learned driving agent and its leaderboard adapter, the factory of agents
and world models by name, reports, and the `drivewm` command line. Top of the layering: it may
import every other package, none imports it.
"""

__version__ = "0.1.0"
