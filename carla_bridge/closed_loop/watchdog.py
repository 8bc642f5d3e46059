"""A watchdog around agent and simulator calls: a call that exceeds its budget raises
`WatchdogTimeout` in the calling (main) thread instead of hanging the evaluation forever.

Uses `signal.setitimer` (SIGALRM), so it works in the main thread of a process — the runner runs
each route in the main thread of its worker process. Elsewhere it degrades to no timeout and says so.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WatchdogTimeout(RuntimeError):
    """Raised when a watched call runs past its budget."""


@contextmanager
def watchdog(seconds: float | None, what: str) -> Iterator[None]:
    """Raise `WatchdogTimeout(what)` if the block runs longer than `seconds` (None or ≤ 0: no limit)."""
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _fire(signum, frame):
        raise WatchdogTimeout(f"{what} exceeded its {seconds:g} s budget")

    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
