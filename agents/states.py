"""`AgentStates`: batched states of the moving (and static) things around the ego.

All per-agent fields share the leading shape `[..., A]` (any batch dims, then agents). Invalid
slots are marked by `valid == False`, never by NaN sentinels; their values are finite padding.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import IntEnum

import torch
from torch import Tensor


class AgentClass(IntEnum):
    """Object classes of the simulator and datasets (mapped to nuScenes categories and Occ3D
    classes at I/O, in `occupancy.classes` and the recorder)."""

    CAR = 0
    TRUCK = 1
    BUS = 2
    PEDESTRIAN = 3
    BICYCLE = 4
    MOTORCYCLE = 5
    BARRIER = 6
    TRAFFIC_CONE = 7
    CONSTRUCTION_VEHICLE = 8
    TRAILER = 9

    @classmethod
    def is_vehicle(cls, c: Tensor) -> Tensor:
        """Boolean mask `[...]` of vehicle classes for an int tensor of class ids."""
        vehicles = torch.tensor(
            [cls.CAR, cls.TRUCK, cls.BUS, cls.BICYCLE, cls.MOTORCYCLE, cls.CONSTRUCTION_VEHICLE, cls.TRAILER],
            device=c.device,
        )
        return torch.isin(c, vehicles)


# field name -> (trailing shape, dtype kind); "f" float32, "i" int64, "b" bool
_FIELDS: dict[str, tuple[tuple[int, ...], str]] = {
    "xy": ((2,), "f"),
    "z": ((), "f"),
    "yaw": ((), "f"),
    "speed": ((), "f"),
    "velocity": ((2,), "f"),
    "size": ((3,), "f"),
    "cls": ((), "i"),
    "track_id": ((), "i"),
    "valid": ((), "b"),
}
_DTYPES = {"f": torch.float32, "i": torch.int64, "b": torch.bool}


@dataclass(frozen=True)
class AgentStates:
    """Agent states at one instant, batched. Shapes `[..., A]` plus a trailing field dim.

    Attributes:
        xy: `[..., A, 2]` box-centre position [m] in the frame the container is expressed in.
        z: `[..., A]` box-centre height [m].
        yaw: `[..., A]` heading [rad], wrapped to (-π, π].
        speed: `[..., A]` signed speed along the heading [m/s].
        velocity: `[..., A, 2]` velocity vector [m/s] in the same frame as `xy`.
        size: `[..., A, 3]` (length, width, height) [m].
        cls: `[..., A]` int64 `AgentClass` ids.
        track_id: `[..., A]` int64 identity, stable over time (-1 for padding).
        valid: `[..., A]` bool; False slots are padding.
    """

    xy: Tensor
    z: Tensor
    yaw: Tensor
    speed: Tensor
    velocity: Tensor
    size: Tensor
    cls: Tensor
    track_id: Tensor
    valid: Tensor

    @classmethod
    def create(klass, **kw: Tensor) -> AgentStates:
        """Build with dtype coercion (`z`, `speed`, `velocity`, `track_id`, `valid` may be omitted),
        then `validate()`."""
        xy = torch.as_tensor(kw["xy"], dtype=torch.float32)
        lead = xy.shape[:-1]
        yaw = torch.as_tensor(kw["yaw"], dtype=torch.float32)
        speed = kw.get("speed")
        velocity = kw.get("velocity")
        if speed is None and velocity is None:
            speed = torch.zeros(lead)
        if velocity is None:
            s = torch.as_tensor(speed, dtype=torch.float32)
            velocity = torch.stack([s * torch.cos(yaw), s * torch.sin(yaw)], dim=-1)
        if speed is None:
            v = torch.as_tensor(velocity, dtype=torch.float32)
            speed = (v * torch.stack([torch.cos(yaw), torch.sin(yaw)], -1)).sum(-1)
        values = {
            "xy": xy,
            "z": kw.get("z", torch.zeros(lead)),
            "yaw": yaw,
            "speed": speed,
            "velocity": velocity,
            "size": kw["size"],
            "cls": kw["cls"],
            "track_id": kw.get("track_id", torch.arange(lead[-1]).expand(lead) if lead else torch.zeros(())),
            "valid": kw.get("valid", torch.ones(lead, dtype=torch.bool)),
        }
        out = klass(**{k: torch.as_tensor(values[k], dtype=_DTYPES[_FIELDS[k][1]]) for k in _FIELDS})
        return out.validate()

    @classmethod
    def empty(cls, batch_shape: tuple[int, ...] = (), device: torch.device | str = "cpu") -> AgentStates:
        """A container with zero agents: shapes `[*batch_shape, 0, ...]`."""
        lead = (*batch_shape, 0)
        return cls(
            **{
                k: torch.zeros((*lead, *tail), dtype=_DTYPES[kind], device=device)
                for k, (tail, kind) in _FIELDS.items()
            }
        )

    @property
    def batch_shape(self) -> torch.Size:
        """Leading shape `[..., A]`."""
        return self.valid.shape

    @property
    def num_agents(self) -> int:
        return int(self.valid.shape[-1])

    def validate(self) -> AgentStates:
        """Check shapes, dtypes and finiteness; raise `ValueError` naming the field."""
        lead = self.valid.shape
        if self.valid.dtype != torch.bool:
            raise ValueError(f"AgentStates.valid must be bool, got {self.valid.dtype}")
        for name, (tail, kind) in _FIELDS.items():
            t = getattr(self, name)
            if not isinstance(t, Tensor):
                raise ValueError(f"AgentStates.{name} must be a torch.Tensor, got {type(t).__name__}")
            if tuple(t.shape) != (*lead, *tail):
                raise ValueError(
                    f"AgentStates.{name} has shape {tuple(t.shape)}, expected {(*lead, *tail)} "
                    f"(leading [..., A] = {tuple(lead)})"
                )
            if t.dtype != _DTYPES[kind]:
                raise ValueError(f"AgentStates.{name} must be {_DTYPES[kind]}, got {t.dtype}")
            if kind == "f" and not bool(torch.isfinite(t).all()):
                raise ValueError(f"AgentStates.{name} contains NaN or inf")
        if bool((self.size[self.valid] <= 0).any()):
            raise ValueError("AgentStates.size must be positive for valid agents")
        if bool(((self.cls < 0) | (self.cls >= len(AgentClass)))[self.valid].any()):
            raise ValueError(f"AgentStates.cls holds an unknown class id (known: 0..{len(AgentClass) - 1})")
        return self

    def to(self, device: torch.device | str) -> AgentStates:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def index(self, idx: Tensor | slice | int) -> AgentStates:
        """Select agents along the agent dim (the last of the leading dims)."""
        out = {}
        for name, (tail, _) in _FIELDS.items():
            t = getattr(self, name)
            out[name] = t[(..., idx) + (slice(None),) * len(tail)] if tail else t[..., idx]
        return AgentStates(**out)

    def masked(self) -> AgentStates:
        """For an un-batched container `[A]`: only the valid agents."""
        if self.valid.dim() != 1:
            raise ValueError("AgentStates.masked() needs an un-batched container [A]")
        return self.index(self.valid)
