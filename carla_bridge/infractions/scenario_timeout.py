"""ScenarioTimeoutTest with its ScenarioTimeout behaviour (scenario_runner `atomic_criteria.py`,
`atomic_behaviors.py`): a scenario that blocks the route (obstacles, accidents) gives up after its
duration; then the criterion gives one `scenario_timeouts` event when the scenario ends. While the
timeout runs, the agent-blocked test is off (`AC_SwitchActorBlockedTest`), and it is switched back
on (its clock restarted) when the scenario ends.

Scenarios call `scenario_timed_out` every step they run.
"""

from __future__ import annotations

import numpy as np


def scenario_timed_out(elapsed: np.ndarray, duration: float) -> np.ndarray:
    """`[W]` bool: the scenario's timeout behaviour finished (`elapsed [W]` since it started > `duration` [s])."""
    if not duration > 0:
        raise ValueError(f"scenario timeout duration must be positive, got {duration}")
    return np.asarray(elapsed, dtype=np.float64) > duration
