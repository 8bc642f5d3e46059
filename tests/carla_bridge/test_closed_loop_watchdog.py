"""The watchdog around agent and simulator calls."""

import time

import pytest

from carla_bridge.closed_loop.watchdog import WatchdogTimeout, watchdog


def test_watchdog_interrupts_a_stuck_call():
    t0 = time.perf_counter()
    with pytest.raises(WatchdogTimeout, match="agent.run_step"), watchdog(0.2, "agent.run_step"):
        while True:
            time.sleep(0.01)
    assert time.perf_counter() - t0 < 2.0
    with watchdog(1.0, "fast"):
        pass
