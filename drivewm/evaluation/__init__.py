"""Evaluations of world models and agents, laid out like the nuScenes devkit's `eval/`: one package
per task — `open_loop` (a trained model on a dataset split), `relevance` (does a world model rank
candidate plans like their simulated truth), `closed_loop` (agents driving routes) — each with the
same roles: `config` (a frozen, versioned protocol in `configs/<name>.json` plus run options),
`metrics` (pure functions), `evaluate` (the entry point), `render` (figures and reports); `common`
holds what they share (protocol loading, confidence intervals, tables and pages)."""
