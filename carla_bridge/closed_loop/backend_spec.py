"""`BackendSpec`: a picklable recipe for a backend (`spec(town) -> Backend`), so the same run can be
shipped to worker processes or Ray tasks; the closed-loop runner builds its backend from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BackendSpec:
    """A picklable backend factory: `spec(town) -> Backend`.

    Attributes:
        kind: "lite" (the embedded simulator) or "carla" (a live server).
        host, port, timeout_s: the CARLA server (kind "carla").
        num_vehicles, num_pedestrians, num_parked, num_props: lite background traffic.
        camera_size: (width, height) of rendered cameras [px].
        render: render cameras at all (False: observations carry no images — privileged agents).
    """

    kind: str = "lite"
    host: str = "127.0.0.1"
    port: int = 2000
    timeout_s: float = 10.0
    num_vehicles: int = 30
    num_pedestrians: int = 20
    num_parked: int = 10
    num_props: int = 6
    camera_size: tuple[int, int] = (400, 225)
    render: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("lite", "carla"):
            raise ValueError(f"backend must be 'lite' or 'carla', got {self.kind!r}")

    def __call__(self, town: str) -> Any:
        if self.kind == "lite":
            from carla_bridge.lite.backend import LiteBackend
            from carla_bridge.lite.config import LiteConfig

            cfg = LiteConfig(
                num_vehicles=self.num_vehicles,
                num_pedestrians=self.num_pedestrians,
                num_parked=self.num_parked,
                num_props=self.num_props,
            )
            return LiteBackend(
                town, cfg, render="cameras" if self.render else "none", image_size=tuple(self.camera_size)
            )
        from carla_bridge.live.backend import CarlaBackend, CarlaConfig

        w, h = self.camera_size
        return CarlaBackend(
            CarlaConfig(
                host=self.host,
                port=self.port,
                timeout_s=self.timeout_s,
                width=w,
                height=h,
                vehicles=self.num_vehicles,
                walkers=self.num_pedestrians,
            )
        )


__all__ = ["BackendSpec"]
