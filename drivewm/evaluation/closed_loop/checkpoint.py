"""Resumable results checkpoint: one JSON file of route records, appended after every route.

A record is keyed by everything that defines its run (`record_key`): the agent, the run identity
`run_id` (a digest of the agent's recipe with its checkpoint's *content* hash, the protocol and every
setting that changes a result — traffic, cameras, replan rate, route length, rule set, timeouts),
the route id and a digest of the route's content, and the seed. So `--resume` reuses a record only
for exactly the run asked for (a changed checkpoint, route, length or rule set is a new key), and a
rerun replaces exactly its own records.

Each agent's latest *request* — the keys its last invocation asked for — is stored beside the
records: `load()` returns, per agent, only the records of that request (older records stay in the
file, reusable by a later `--resume` that asks for them again, but never mix into a report), and
`load_all()` returns everything.

Several worker processes (or Ray tasks reporting back) may append to the same file: every write
takes an exclusive lock, re-reads the file, merges by key and replaces the file atomically (temp
file + rename), so no record is lost or duplicated and a crash mid-write leaves the previous complete
file in place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from filelock import FileLock

from occupancy.atomic import write_json_atomic

RecordKey = tuple[str, str, str, str, int]
"""(agent, run_id, route_id, route_digest, seed)."""

SCHEMA_VERSION = 2


def record_key(record: dict[str, Any]) -> RecordKey:
    """(agent, run id, route id, route digest, seed) — the identity of one closed-loop run. Records
    written before run ids existed have "" for the run id and route digest (never matched by a request)."""
    try:
        return (
            str(record["agent"]),
            str(record.get("run_id") or ""),
            str(record["route_id"]),
            str(record.get("route_digest") or ""),
            int(record["seed"]),
        )
    except KeyError as err:
        raise ValueError(f"route record lacks the key field {err.args[0]!r}") from None


class ResultsCheckpoint:
    """The checkpoint file `path` (created on first write)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path) + ".lock")

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"records": [], "requests": {}}
        try:
            content = json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(
                f"results checkpoint {self.path} is not valid JSON ({err}); move it away to start over"
            ) from None
        if not isinstance(content, dict) or not isinstance(content.get("records"), list):
            raise ValueError(f"results checkpoint {self.path} has no 'records' list; move it away to start over")
        requests = content.get("requests") or {}
        if not isinstance(requests, dict):
            raise ValueError(f"results checkpoint {self.path}: 'requests' is not a mapping; move it away")
        return {"records": content["records"], "requests": requests}

    def load_all(self) -> list[dict[str, Any]]:
        """Every record in the file, in insertion order; [] when the file does not exist yet."""
        return self._read()["records"]

    def load(self) -> list[dict[str, Any]]:
        """The records of each agent's latest request (all records of an agent without one)."""
        content = self._read()
        requested = {agent: {tuple(k) for k in keys} for agent, keys in content["requests"].items()}
        out = []
        for r in content["records"]:
            agent = str(r.get("agent"))
            if agent not in requested or record_key(r)[1:] in requested[agent]:
                out.append(r)
        return out

    def finished_keys(self) -> set[RecordKey]:
        """Keys of every record in the file (what `--resume` may reuse)."""
        return {record_key(r) for r in self.load_all()}

    def set_request(self, agent: str, keys: Iterable[tuple[str, str, str, int]]) -> None:
        """Record that `agent`'s current request is exactly `keys` (run id, route id, route digest, seed)."""
        wanted = [[str(a), str(b), str(c), int(d)] for a, b, c, d in keys]
        self._update(lambda content: content["requests"].__setitem__(str(agent), wanted))

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Merge `records` into the file (a record with an existing key replaces the old one)."""
        new = list(records)
        keys = [record_key(r) for r in new]

        def merge(content: dict[str, Any]) -> None:
            merged = {record_key(r): r for r in content["records"]}
            for k, r in zip(keys, new):
                merged[k] = r
            content["records"] = list(merged.values())

        self._update(merge)

    def _update(self, change: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            content = self._read()
            change(content)
            payload = {"schema_version": SCHEMA_VERSION, "requests": content["requests"], "records": content["records"]}
            write_json_atomic(self.path, payload, indent=1)
