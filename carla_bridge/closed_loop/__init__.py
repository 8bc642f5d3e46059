"""Closed-loop driving: the `Agent` contract (the leaderboard's), the runner that drives any agent on
any `Backend` (built from a picklable `BackendSpec`) and the watchdog. The evaluation around it —
executors, resumable results, aggregation, reports — is `drivewm.evaluation.closed_loop`."""
