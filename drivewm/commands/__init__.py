"""Command modules of the `drivewm` CLI, one per top-level command."""
