"""The live backend: a real CARLA server through `carla.Client`, behind the same `Backend` protocol
as the embedded lite simulator. No CARLA server exists on our development machines: the parts that
need one are written against the CARLA 0.9.x Python API and were not run here (see README)."""
