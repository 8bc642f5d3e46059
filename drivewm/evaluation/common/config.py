"""Frozen, versioned evaluation protocols (like the nuScenes devkit's `configs/<benchmark>.json`).

Each evaluation (`open_loop`, `relevance`, `closed_loop`) keeps its protocols in
`drivewm/evaluation/<task>/configs/<name>.json`: every setting that changes the numbers (thresholds,
traffic, horizons, the scorer's weights), frozen under a name such as `relevance-v1`. A change of
protocol is a new file with a new name; an existing file is never edited (a test pins each file's
hash), so old numbers stay reproducible. Run options that do not change the numbers (batch size,
device, figures, workers) are not part of a protocol.

A run may override protocol fields (e.g. fewer vehicles for a quick look); `overrides()` lists them
and every report prints them beside the protocol name, so such numbers are never mistaken for the
protocol's.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any, ClassVar, TypeVar

C = TypeVar("C", bound="ProtocolConfig")


def _plain(value: Any) -> Any:
    """JSON form of a config value (tuples as lists, nested dataclasses as dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class ProtocolConfig:
    """Mixin for a frozen dataclass config with a named protocol (see the module docstring).

    Subclasses set `TASK` (the evaluation's package name) and `PROTOCOL_FIELDS` (the fields a
    protocol file freezes), have a `protocol: str` field, and may override `_decode(name, value)` to
    turn a JSON value back into the field's type (nested configs).
    """

    TASK: ClassVar[str]
    PROTOCOL_FIELDS: ClassVar[tuple[str, ...]]
    protocol: str

    @classmethod
    def protocols(cls) -> list[str]:
        """Names of the frozen protocols of this evaluation (oldest first)."""
        folder = resources.files("drivewm.evaluation").joinpath(cls.TASK, "configs")
        return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))

    @classmethod
    def protocol_values(cls, name: str) -> dict[str, Any]:
        """The frozen field values of protocol `name`; `ValueError` naming the known ones if unknown."""
        known = cls.protocols()
        if name not in known:
            raise ValueError(f"unknown {cls.TASK} protocol {name!r}; known: {', '.join(known)}")
        path = resources.files("drivewm.evaluation").joinpath(cls.TASK, "configs", f"{name}.json")
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("protocol") != name or set(raw) - {"protocol"} != set(cls.PROTOCOL_FIELDS):
            raise ValueError(f"{path} must hold 'protocol': {name!r} and exactly {sorted(cls.PROTOCOL_FIELDS)}")
        return {k: cls._decode(k, v) for k, v in raw.items() if k != "protocol"}

    @classmethod
    def from_protocol(cls: type[C], name: str, **options: Any) -> C:
        """The config of protocol `name` with run options (and any protocol overrides) from `options`."""
        return cls(protocol=name, **{**cls.protocol_values(name), **options})  # type: ignore[call-arg]

    @classmethod
    def _decode(cls, name: str, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    def overrides(self) -> dict[str, Any]:
        """Protocol fields whose value differs from the named protocol's: `{field: value}` (JSON form)."""
        frozen = type(self).protocol_values(self.protocol)
        return {k: _plain(getattr(self, k)) for k in self.PROTOCOL_FIELDS if getattr(self, k) != frozen[k]}

    def protocol_label(self) -> str:
        """`relevance-v1`, or `relevance-v1 with overrides {...}` (what every report prints)."""
        over = self.overrides()
        return self.protocol if not over else f"{self.protocol} with overrides {json.dumps(over, sort_keys=True)}"

    def protocol_json(self) -> dict[str, Any]:
        """The protocol fields of this config as written to a protocol file."""
        return {"protocol": self.protocol, **{k: _plain(getattr(self, k)) for k in self.PROTOCOL_FIELDS}}

    def to_dict(self) -> dict[str, Any]:
        """Every field in JSON form (for results.json), plus the overrides."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {**out, "protocol_overrides": self.overrides()}


__all__ = ["ProtocolConfig"]
