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


def test_numba_compilation_is_waited_out_and_the_kernel_stays_usable():
    """A budget shorter than a kernel's first compilation must not interrupt numba's compiler (that
    leaves the kernel unbuildable: "no compiled object yet"); the time after compilation still counts."""
    import numba as nb
    import numpy as np

    @nb.njit  # a fresh function each run: no on-disk cache, so the call below compiles it
    def kernel(x):
        out = np.empty_like(x)
        for i in range(x.shape[0]):
            out[i] = np.sin(x[i]) ** 2 + np.cos(x[i]) ** 2
        return out

    t0 = time.perf_counter()
    with watchdog(0.02, "backend.step"):
        y = kernel(np.linspace(0.0, 3.0, 7))
    assert time.perf_counter() - t0 > 0.02 and np.allclose(y, 1.0)
    assert kernel.signatures  # compiled, and callable again below without recompiling
    with pytest.raises(WatchdogTimeout, match="backend.step"), watchdog(0.05, "backend.step"):
        kernel(np.ones(3))
        while True:
            time.sleep(0.01)
