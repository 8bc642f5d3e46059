"""A watchdog around agent and simulator calls: a call that exceeds its budget raises
`WatchdogTimeout` in the calling (main) thread instead of hanging the evaluation forever.

Uses `signal.setitimer` (SIGALRM), so it works in the main thread of a process — the runner runs
each route in the main thread of its worker process. Elsewhere it degrades to no timeout and says so.

Just-in-time compilation (numba, holding its global compiler lock) is not the watched call's own
time, and an exception raised in the middle of numba's compiler leaves the kernel unbuildable for
the rest of the process: while numba compiles, the watchdog waits and looks again.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WatchdogTimeout(RuntimeError):
    """Raised when a watched call runs past its budget."""


_RECHECK_SECONDS = 0.25


def _compiling() -> bool:
    """True while this thread holds numba's compiler lock (numba never imported: False)."""
    lock = sys.modules.get("numba.core.compiler_lock")
    return lock is not None and lock.global_compiler_lock.is_locked()


@contextmanager
def watchdog(seconds: float | None, what: str) -> Iterator[None]:
    """Raise `WatchdogTimeout(what)` if the block runs longer than `seconds` (None or ≤ 0: no limit)."""
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _fire(signum, frame):
        if _compiling():
            signal.setitimer(signal.ITIMER_REAL, _RECHECK_SECONDS)
            return
        raise WatchdogTimeout(f"{what} exceeded its {seconds:g} s budget")

    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
