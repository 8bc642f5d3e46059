"""Resumable results checkpoint: one JSON file of route records, appended after every route.

Several worker processes (or Ray tasks reporting back) may append to the same file: every write
takes an exclusive lock, re-reads the file, merges by key (agent, route id, seed) and replaces the
file atomically (temp file + rename), so no record is lost or duplicated and a crash mid-write
leaves the previous complete file in place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from filelock import FileLock

from occupancy.atomic import write_json_atomic

RecordKey = tuple[str, str, int]

SCHEMA_VERSION = 1


def record_key(record: dict[str, Any]) -> RecordKey:
    """(agent, route id, seed) — the identity of one closed-loop run."""
    try:
        return (str(record["agent"]), str(record["route_id"]), int(record["seed"]))
    except KeyError as err:
        raise ValueError(f"route record lacks the key field {err.args[0]!r}") from None


class ResultsCheckpoint:
    """The checkpoint file `path` (created on first append)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path) + ".lock")

    def load(self) -> list[dict[str, Any]]:
        """All records, in insertion order; [] when the file does not exist yet."""
        if not self.path.exists():
            return []
        try:
            content = json.loads(self.path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(
                f"results checkpoint {self.path} is not valid JSON ({err}); move it away to start over"
            ) from None
        if not isinstance(content, dict) or not isinstance(content.get("records"), list):
            raise ValueError(f"results checkpoint {self.path} has no 'records' list")
        return content["records"]

    def finished_keys(self) -> set[RecordKey]:
        return {record_key(r) for r in self.load()}

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Merge `records` into the file (a record with an existing key replaces the old one)."""
        new = list(records)
        keys = [record_key(r) for r in new]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            merged = {record_key(r): r for r in self.load()}
            for k, r in zip(keys, new):
                merged[k] = r
            payload = {"schema_version": SCHEMA_VERSION, "records": list(merged.values())}
            write_json_atomic(self.path, payload, indent=1)
