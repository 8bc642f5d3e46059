"""Closed-loop evaluation: the `Agent` contract (the leaderboard's), the runner that drives any agent
on any `Backend`, the watchdog, the resumable results checkpoint, and parallel execution."""
